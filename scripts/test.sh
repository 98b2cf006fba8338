#!/usr/bin/env bash
# The test command: runs the whole workspace's tests against real services.
#
#   bash scripts/test.sh [extra args for cargo nextest run / cargo test]
#
# It builds (or reuses) the Python venv for the MLflow client tests, installs headless Chromium
# and chromedriver (Debian's chromium, chromium-driver) for the UI browser test when missing,
# starts a throwaway PostgreSQL cluster, a SeaweedFS S3 server and a Ray head on free loopback
# ports, exports where
# they are, runs the tests, and stops everything on exit, success or failure. Exported for the
# tests:
#   CARGO_TARGET_DIR          kept outside the clone (default ~/.cache/cairn-target) for reuse
#   CAIRN_TEST_DATABASE_URL   postgres://postgres@127.0.0.1:PORT/postgres (tests create their DBs)
#   CAIRN_TEST_S3_ENDPOINT    http://127.0.0.1:PORT, with CAIRN_TEST_S3_BUCKET=cairn-test,
#                             AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
#   CAIRN_TEST_RAY_ADDRESS    http://127.0.0.1:PORT, the Jobs API of a single-node Ray head
#   CAIRN_TEST_PYTHON         the venv's python, with mlflow (crates/cairn/tests/mlflow/requirements.txt)
#   CAIRN_TEST_REQUIRE_SERVICES=1 when CI is set: a missing service fails instead of skipping
# To start the same services by hand, source scripts/lib/services.sh (see its header).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh

cleanup() {
    set +e
    cairn_services_stop
}
trap cleanup EXIT
# On a signal, exit through the EXIT trap so the services are stopped exactly once.
trap 'exit 130' INT
trap 'exit 143' TERM

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}

cairn_venv_ensure crates/cairn/tests/mlflow/requirements.txt
export CAIRN_TEST_PYTHON=$CAIRN_VENV/bin/python

# Headless Chromium and chromedriver for the UI browser test (crates/cairn/tests/it/ui_browser.rs).
if [[ ! -x /usr/bin/chromedriver ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        apt_log="${TMPDIR:-/tmp}/cairn-apt-chromium.log"
        cairn_log "installing chromium and chromium-driver with apt-get (about 2 minutes; log: $apt_log)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
            >"$apt_log" 2>&1 || cairn_err "installing chromium failed (see $apt_log); the UI browser test cannot run"
    else
        cairn_log "chromedriver is missing and apt-get is not usable here; the UI browser test will skip"
    fi
fi

cairn_pg_start
cairn_s3_start
cairn_ray_start

if [[ -n ${CI:-} ]]; then
    export CAIRN_TEST_REQUIRE_SERVICES=1
fi

if cargo nextest --version >/dev/null 2>&1; then
    cairn_log "running cargo nextest run --workspace --no-fail-fast -j 2 $*"
    cargo nextest run --workspace --no-fail-fast -j 2 "$@"
else
    cairn_log "running cargo test --workspace $* (cargo-nextest not installed)"
    cargo test --workspace "$@"
fi

#!/usr/bin/env bash
# The test command: runs the whole workspace's tests against real services.
#
#   bash scripts/test.sh [extra args for cargo nextest run / cargo test]
#
# It builds (or reuses) the Python venv for the MLflow client tests, starts a throwaway
# PostgreSQL cluster, a SeaweedFS S3 server and a Ray head on free loopback ports, exports where
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

#!/usr/bin/env bash
# The load check of issue 10 ("Load"): builds the release `cairn` and `cairn-bench`, then runs
# `cairn-bench --only load` — one `cairn serve` with authentication on (SQLite and local
# artifacts unless given other flags) under a sustained mixed workload from a closed-loop load
# generator on loopback — and writes its markdown report to a file.
#
#   bash scripts/load.sh [OUTPUT] [extra cairn-bench flags]
#
# OUTPUT defaults to load-<UTC timestamp>.md in the current directory; progress goes to
# OUTPUT.log. Defaults (see bench/README.md, "Load scenario"): --load-duration 600 (seconds,
# measured), --load-warm-up 60, --load-concurrency 8, --load-mix
# log=30,history=10,search=5,upload=5,download=10,infer=30,native=5. For example a short
# smoke run: bash scripts/load.sh smoke.md --load-duration 60 --load-warm-up 10
# The exit status is non-zero when a request failed or memory or file descriptors grew (the
# report says which), or when the harness failed.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
output=${1:-load-$(date -u +%Y%m%dT%H%M%SZ).md}
shift || true
case $output in /*) ;; *) output=$PWD/$output ;; esac
cd "$repo_root"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}
cargo build --release -p cairn -p cairn-bench

# tract captures a backtrace for every tree leaf it reaches when backtraces are on (see
# bench/README.md, Caveats), which would slow the inference requests for no reason.
echo "cairn-bench --only load $* (report: $output, progress: $output.log)" >&2
env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE \
    "$CARGO_TARGET_DIR/release/cairn-bench" --only load --cairn-bin "$CARGO_TARGET_DIR/release/cairn" "$@" \
    > "$output" 2> >(tee "$output.log" >&2)

#!/usr/bin/env bash
# bench/activate: a sync's diff of an N-member audience with PCT% changed, against the time
# DuckDB takes to just scan the model and the snapshot, and against a full resend; then the
# send rate under a destination rate limit.
#
# usage: bench/activate/run.sh [MEMBERS=1000000] [PCT=1]   (BUILD=build dir, default ./build)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD:-$root/build}"
ninja -C "$build" activate_bench >/dev/null
work="$(mktemp -d "${TMPDIR:-/tmp}/clicklake-bench-activate-XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$build/bench/activate/activate_bench" "$work/lake" "${1:-1000000}" "${2:-1}"

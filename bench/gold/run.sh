#!/usr/bin/env bash
# bench/gold: full Gold rebuild over N Silver events vs an incremental refresh after
# a BATCH-event micro-batch; the purchase funnel from Gold vs from bronze.events JSON.
#
# usage: bench/gold/run.sh [EVENTS=10000000] [BATCH=100000]   (BUILD=build dir, default ./build)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD:-$root/build}"
ninja -C "$build" gold_bench >/dev/null
work="$(mktemp -d "${TMPDIR:-/tmp}/clicklake-bench-gold-XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$build/bench/gold/gold_bench" "$work/lake" "${1:-10000000}" "${2:-100000}"

#!/usr/bin/env bash
# bench/delta: snapshot load (checkpoint vs JSON replay), commit latency, optimize vs DuckDB COPY.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD:-$root/build}"
ninja -C "$build" delta_bench >/dev/null
"$build/bench/delta/delta_bench" "$@"

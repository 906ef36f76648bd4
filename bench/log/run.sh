#!/usr/bin/env bash
# bench/log: LocalLog group-commit appends and reads vs. sequential write + one fdatasync.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD:-$root/build}"
ninja -C "$build" log_bench >/dev/null
"$build/bench/log/log_bench" "$@"

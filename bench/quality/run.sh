#!/usr/bin/env bash
# bench/quality: mean micro-batch time with the quality checks + readiness on vs off (see README.md).
# usage: bench/quality/run.sh [EVENTS] [BATCH] [ROUNDS]    (or: bench/run quality)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD:-$root/build}"
nice ninja -C "$build" -j2 quality_bench >/dev/null
exec "$build/bench/quality/quality_bench" "$@"

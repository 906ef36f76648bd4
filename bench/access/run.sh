#!/usr/bin/env bash
# bench/access: a masked and filtered query as marketing vs the same query as admin (10M-row silver.events).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD:-$root/build}"
ninja -C "$build" access_bench >/dev/null
"$build/bench/access/access_bench" "$@"

#!/usr/bin/env bash
# bench/enrich: user-agent parsing (cache hits, misses, a realistic mix; with and without the
# RE2::Set prefilter as the in-run baseline), URL/referrer parsing, geo lookups, a whole event.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD:-$root/build}"
ninja -C "$build" enrich_bench >/dev/null
"$build/bench/enrich/enrich_bench" --benchmark_min_time=1 "$@"

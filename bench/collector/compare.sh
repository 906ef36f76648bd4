#!/usr/bin/env bash
# Collector-only A/B: several collector_bench_server binaries or flag sets, run
# in turn (ROUNDS times) with the same wrk load as run.sh (no nginx), printing
# req/s, p50/p99 and the log's group commits and mean commit time from /metrics.
#
#   bench/collector/compare.sh "label:/path/to/collector_bench_server [flags...]" ...
#   env: CONNECTIONS="32 256" DURATION=5s ROUNDS=2 PAYLOADS=64
#
# e.g. the build against an older one, and the log without preallocation:
#   bench/collector/compare.sh "old:/tmp/old/collector_bench_server" \
#     "new:build/bench/collector/collector_bench_server" \
#     "new-noprealloc:build/bench/collector/collector_bench_server --preallocate 0"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CONNECTIONS=${CONNECTIONS:-32 256}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-2}
PAYLOADS=${PAYLOADS:-64}
WORK=$(mktemp -d /tmp/clicklake-bench-compare.XXXXXX)
SERVER_PID=""
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

source "$ROOT/bench/collector/wrk_load.sh"
write_wrk_load "$WORK" "$PAYLOADS" "$ROOT"
cat >> "$WORK/post.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("req/s=%.0f p50=%.2fms p99=%.2fms non2xx=%d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
LUA

log_metrics() {  # fsyncs and commit-seconds sum
  curl -s "http://127.0.0.1:$1/metrics" |
    awk '/^clicklake_log_fsyncs_total/ {f = $2} /^clicklake_log_group_commit_seconds_sum/ {s = $2} END {print f + 0, s + 0}'
}

for ((r = 1; r <= ROUNDS; r++)); do
  for spec in "$@"; do
    label=${spec%%:*}
    read -r -a cmd <<< "${spec#*:}"
    mkdir -p "$WORK/run"
    coproc SRV { exec "${cmd[@]}" --dir "$WORK/run" 2>"$WORK/server.log"; }
    SERVER_PID=$SRV_PID
    port=""
    while read -r word rest <&"${SRV[0]}"; do
      if [[ $word == PORT ]]; then port=$rest; break; fi
    done
    [[ -n $port ]] || { echo "$label: the server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }
    for c in $CONNECTIONS; do
      read -r f0 s0 < <(log_metrics "$port")
      res=$(wrk -t1 -c"$c" -d"$DURATION" -s "$WORK/post.lua" "http://127.0.0.1:$port/v1/batch" | tail -1)
      read -r f1 s1 < <(log_metrics "$port")
      echo "$label c=$c $res $(awk -v f="$((f1 - f0))" -v s0="$s0" -v s1="$s1" \
        'BEGIN { if (f > 0) printf "commits=%d commit_ms=%.3f", f, (s1 - s0) / f * 1000 }')"
    done
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
    rm -rf "$WORK/run"
  done
done

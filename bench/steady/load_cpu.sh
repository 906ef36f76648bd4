#!/usr/bin/env bash
# CPU the load side takes: `clicklake collect` (the collector alone, no
# processor) receiving `clicklake simulate` at RATE events/s for SECS seconds,
# with bench/steady's traffic shape. Prints each process's CPU seconds and the
# cores they use, i.e. what is left of the machine for the processor.
#
#   RATE=10000 SECS=60 bench/steady/load_cpu.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cl="${BUILD:-$root/build}/src/cli/clicklake"
RATE="${RATE:-10000}"
SECS="${SECS:-60}"
work="$(mktemp -d "${TMPDIR:-/tmp}/clicklake-load-cpu-XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$cl" collect --lake "$work/lake" --port "$port" --write-key k --set collector.host=127.0.0.1 >"$work/collect.log" 2>&1 &
collector=$!
pids+=("$collector")
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
"$cl" simulate --url "http://127.0.0.1:$port" --write-key k --users 20000 --rate "$RATE" --duration "$SECS" --seed 7 \
  --duplicate-rate 0.02 --late-rate 0.01 --out-of-order-rate 0.02 --concurrency 64 --batch-size 100 \
  >"$work/simulate.log" 2>&1 &
sim=$!
pids+=("$sim")
t0="$(date +%s.%N)"
sleep "$(( SECS > 3 ? SECS - 2 : 1 ))"
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
c="$(cpu "$collector")"
s="$(cpu "$sim")"
wall="$(echo "$(date +%s.%N) - $t0" | bc)"
wait "$sim" || true
tail -1 "$work/simulate.log"
printf 'load_cpu: rate %s events/s for %.0f s: collector %.1f CPU s (%.2f cores), simulate %.1f CPU s (%.2f cores)\n' \
  "$RATE" "$wall" "$c" "$(echo "$c / $wall" | bc -l)" "$s" "$(echo "$s / $wall" | bc -l)"

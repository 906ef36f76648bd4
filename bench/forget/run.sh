#!/usr/bin/env bash
# bench/forget: `clicklake forget` of one user in a lake of N simulated events,
# with deletion vectors and with copy-on-write tables (lake.deletion_vectors=false):
# wall time, files rewritten and purged, against the number of data files in the
# lake (the goal: only files holding that user's rows are touched). See README.md.
#
# usage: bench/forget/run.sh [EVENTS=1000000]   (BUILD=build dir, default ./build)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD:-$root/build}"
events="${1:-1000000}"
ninja -C "$build" clicklake process_bench_prepare >/dev/null
work="$(mktemp -d "${TMPDIR:-/tmp}/clicklake-bench-forget-XXXXXX")"
trap 'rm -rf "$work"' EXIT
cl="$build/src/cli/clicklake"
common=(--set "privacy.key_file=$work/pii.key" --log-level "${LOG_LEVEL:-warn}")

secs() { echo "$2 - $1" | bc -l | xargs printf '%.1f'; }

for dv in true false; do
  lake="$work/lake-$dv"
  "$build/bench/process/process_bench_prepare" "$lake" "$events" "$work/events-$dv.ndjson" >/dev/null
  rm -f "$work/events-$dv.ndjson"
  t0=$(date +%s.%N)
  "$cl" process --lake "$lake" --once "${common[@]}" --set "lake.deletion_vectors=$dv" \
    --set silver.quarantine_min_batch=100000000 --set processor.compaction=false
  t1=$(date +%s.%N)
  # A user of median activity who has both identified and anonymous rows.
  user=$("$cl" sql --lake "$lake" --format csv \
    "SELECT user_key FROM silver.events WHERE user_key NOT LIKE 'anon:%' GROUP BY 1
     HAVING count(DISTINCT anonymous_id) > 0 ORDER BY count(*), user_key LIMIT 1 OFFSET
     (SELECT count(DISTINCT user_key) / 4 FROM silver.events WHERE user_key NOT LIKE 'anon:%')" | tail -1 | tr -d '\r')
  rows=$("$cl" sql --lake "$lake" --format csv "SELECT count(*) FROM silver.events WHERE user_key = '$user'" | tail -1 | tr -d '\r')
  files=$(find "$lake" -name '*.parquet' -not -path '*_delta_log*' | wc -l)
  t2=$(date +%s.%N)
  "$cl" forget --lake "$lake" --user "$user" "${common[@]}" --set "lake.deletion_vectors=$dv" > "$work/receipt-$dv.json"
  t3=$(date +%s.%N)
  rewritten=$(grep -o '"files_rewritten":[0-9]*' "$work/receipt-$dv.json" | grep -o '[0-9]*$' | awk '{s+=$1} END {print s+0}')
  purged=$(grep -o '"files_purged":[0-9]*' "$work/receipt-$dv.json" | head -1 | grep -o '[0-9]*$')
  removed=$(grep -o '"rows_removed":[0-9]*' "$work/receipt-$dv.json" | grep -o '[0-9]*$' | awk '{s+=$1} END {print s+0}')
  left=$("$cl" sql --lake "$lake" --format csv "SELECT count(*) FROM silver.events WHERE user_key = '$user'" | tail -1 | tr -d '\r')
  echo "deletion_vectors=$dv: $events events processed in $(secs "$t0" "$t1") s, $files data files;" \
       "forget $user ($rows silver rows, $removed rows removed in all tables, $left left):" \
       "$(secs "$t2" "$t3") s, $rewritten files rewritten, $purged files purged"
done

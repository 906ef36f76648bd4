#!/usr/bin/env bash
# bench/forget: `clicklake forget` of one user in a lake of N simulated events,
# with deletion vectors and with copy-on-write tables (lake.deletion_vectors=false):
# wall time, files rewritten and purged, against the number of data files in the
# lake (the goal: only files holding that user's rows are touched). See README.md.
#
# usage: bench/forget/run.sh [EVENTS=1000000]   (BUILD=build dir, default ./build)
#   LAKES=DIR     keep the processed lakes in DIR/<events>-dv-<true|false> (with their
#                 PII key) and reuse them in later runs: each forget runs on a copy
#                 (cp -a), so the same lake can be forgotten in again and again
#   PREPARE_ONLY=1  prepare and process the lakes, forget nothing
#   NO_BUILD=1    do not build first (the binaries are there)
#   RECEIPTS=DIR  keep each forget's receipt and log (LOG_LEVEL=info: each step's time) there
#   MODES="true false"  the lake.deletion_vectors values to run (default both)
#   FORGET_BIN=path   the clicklake binary that runs the forget (default: BUILD's), to
#                     compare two builds on the same prepared lakes
#   PROCESS_SET="k=v ..."  extra settings for the processing (e.g. processor.memory_limit=6GB)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD:-$root/build}"
events="${1:-1000000}"
[[ -n "${NO_BUILD:-}" ]] || ninja -C "$build" clicklake process_bench_prepare >/dev/null
work="$(mktemp -d "${TMPDIR:-/tmp}/clicklake-bench-forget-XXXXXX")"
trap 'rm -rf "$work"' EXIT
lakes="${LAKES:-$work}"
mkdir -p "$lakes"
cl="$build/src/cli/clicklake"
common=(--set "privacy.key_file=$lakes/pii.key" --log-level "${LOG_LEVEL:-warn}")

secs() { echo "$2 - $1" | bc -l | xargs printf '%.1f'; }

for dv in ${MODES:-true false}; do
  kept="$lakes/$events-dv-$dv"
  if [[ ! -f "$kept.done" ]]; then
    rm -rf "$kept"
    "$build/bench/process/process_bench_prepare" "$kept" "$events" "$work/events-$dv.ndjson" >/dev/null
    rm -f "$work/events-$dv.ndjson" "$kept/envelopes.ndjson" "$work/envelopes.ndjson"
    t0=$(date +%s.%N)
    extra=()
    for kv in ${PROCESS_SET:-}; do extra+=(--set "$kv"); done
    "$cl" process --lake "$kept" --once "${common[@]}" --set "lake.deletion_vectors=$dv" \
      --set silver.quarantine_min_batch=100000000 --set processor.compaction=false "${extra[@]}"
    t1=$(date +%s.%N)
    secs "$t0" "$t1" > "$kept.done"
  fi
  echo "deletion_vectors=$dv: $events events processed in $(cat "$kept.done") s"
  [[ -n "${PREPARE_ONLY:-}" ]] && continue
  lake="$work/forget-$dv"
  rm -rf "$lake"
  # Hard links for the data files (the forget only deletes them or writes new
  # ones), real copies of what it appends to or rewrites in place.
  cp -al "$kept" "$lake"
  while IFS= read -r d; do
    rm -rf "$lake/$d" && cp -a "$kept/$d" "$lake/$d"
  done < <(cd "$kept" && find . \( -name _delta_log -o -path ./_clicklake/state -o -path ./restricted/_privacy -o -path ./_clicklake/privacy \) -prune -print)
  # A user of median activity who has both identified and anonymous rows.
  user=$("$cl" sql --lake "$lake" --format csv \
    "SELECT user_key FROM silver.events WHERE user_key NOT LIKE 'anon:%' GROUP BY 1
     HAVING count(DISTINCT anonymous_id) > 0 ORDER BY count(*), user_key LIMIT 1 OFFSET
     (SELECT count(DISTINCT user_key) / 4 FROM silver.events WHERE user_key NOT LIKE 'anon:%')" | tail -1 | tr -d '\r')
  rows=$("$cl" sql --lake "$lake" --format csv "SELECT count(*) FROM silver.events WHERE user_key = '$user'" | tail -1 | tr -d '\r')
  files=$(find "$lake" -name '*.parquet' -not -path '*_delta_log*' -not -path '*/_clicklake/*' | wc -l)
  t2=$(date +%s.%N)
  "${FORGET_BIN:-$cl}" forget --lake "$lake" --user "$user" "${common[@]}" --set "lake.deletion_vectors=$dv" \
    > "$work/receipt-$dv.json" 2> "$work/forget-$dv.log"
  [[ -n "${RECEIPTS:-}" ]] && cp "$work/forget-$dv.log" "$RECEIPTS/forget-$events-$dv.log"
  t3=$(date +%s.%N)
  # (a field an older build's receipt lacks sums to 0)
  sum() { { grep -o "\"$1\":[0-9]*" "$work/receipt-$dv.json" || true; } | awk -F: '{s+=$2} END {print s+0}'; }
  rewritten=$(sum files_rewritten)
  read_files=$(sum files_read)
  purged=$(grep -o '"files_purged":[0-9]*' "$work/receipt-$dv.json" | head -1 | grep -o '[0-9]*$')
  removed=$(sum rows_removed)
  left=$("$cl" sql --lake "$lake" --format csv "SELECT count(*) FROM silver.events WHERE user_key = '$user'" | tail -1 | tr -d '\r')
  echo "deletion_vectors=$dv: $files data files;" \
       "forget $user ($rows silver rows, $removed rows removed in all tables, $left left):" \
       "$(secs "$t2" "$t3") s, $rewritten files rewritten, $read_files files read by the purge, $purged files purged"
  [[ -n "${RECEIPTS:-}" ]] && cp "$work/receipt-$dv.json" "$RECEIPTS/receipt-$events-$dv.json"
  rm -rf "$lake"
done

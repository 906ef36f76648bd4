#!/usr/bin/env bash
# bench/process: events/s of `clicklake process --once` over a prepared log of N
# simulated events vs. a DuckDB SQL script (same libduckdb) over the same events:
# read_json → dedup by messageId → sessionize with window functions → partitioned
# Parquet (pipeline.sql, the sessions-only baseline of the earlier measurements), and
# a second script doing the same job as Bronze + Silver (bronze_silver.sql: raw
# copy, quarantine, dedup, identity stitching by the latest link, sessions over the
# stitched key → partitioned Parquet). All run in this one invocation, on the same
# machine. See README.md.
#
# usage: bench/process/run.sh [EVENTS=2000000]   (BUILD=build dir, default ./build)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD:-$root/build}"
events="${1:-2000000}"
ninja -C "$build" clicklake process_bench_prepare process_bench_sql process_bench_floor >/dev/null
work="$(mktemp -d "${TMPDIR:-/tmp}/clicklake-bench-process-XXXXXX")"
trap 'rm -rf "$work"' EXIT
lake="$work/lake"

echo "preparing $events simulated events ..."
n="$("$build/bench/process/process_bench_prepare" "$lake" "$events" "$work/events.ndjson" "$work/envelopes.ndjson")"
echo "prepared $n events (log + $(du -h "$work/events.ndjson" | cut -f1) of NDJSON + $(du -h "$work/envelopes.ndjson" | cut -f1) of envelopes)"

# clicklake process --once: Bronze + Silver (parse, contracts, dedup in RocksDB,
# enrichment, PII, identity + sessions) + quarantine + system.batches.
t0=$(date +%s.%N)
/usr/bin/time -o "$work/rss" -f "%M" "$build/src/cli/clicklake" process --lake "$lake" --once --log-level "${LOG_LEVEL:-warn}" \
  --set "privacy.key_file=$work/pii.key" --set silver.quarantine_min_batch=100000000 ${CLICKLAKE_FLAGS:-}
t1=$(date +%s.%N)
cl_secs=$(echo "$t1 - $t0" | bc -l)
silver=$("$build/src/cli/clicklake" sql --lake "$lake" --format csv "SELECT count(*) FROM silver.events" | tail -1)
stages=$("$build/src/cli/clicklake" sql --lake "$lake" --format csv \
  "SELECT count(*) || ' batches; read ' || round(sum(read_ms)/1000, 1) || ' s, bronze ' || round(sum(write_ms)/1000, 1) ||
          ' s, silver ' || round(sum(silver_ms)/1000, 1) || ' s, commit ' || round(sum(commit_ms)/1000, 1) || ' s, gold ' ||
          round(sum(coalesce(gold_ms, 0))/1000, 1) || ' s'
   FROM system.batches" | tail -1)
# Silver rows the processor wrote, its rewrites included: the numOutputRows of
# silver.events' batch commits (a batch rewrites the files holding rows that
# later events change: re-keyed anonymous ids, sessions extended).
silver_written=$("$build/src/cli/clicklake" table history silver.events --lake "$lake" |
  grep -o '"numOutputRows":"[0-9]*"' | grep -o '[0-9]*' | awk '{s += $1} END {print s + 0}')
gold_secs=$("$build/src/cli/clicklake" sql --lake "$lake" --format csv \
  "SELECT coalesce(sum(gold_ms), 0) / 1000 FROM system.batches" | tail -1 | tr -d '\r')

sed -e "s|@EVENTS@|$work/events.ndjson|" -e "s|@OUT@|$work/duckdb_out|" "$root/bench/process/pipeline.sql" > "$work/script.sql"
# (An assignment, not `read < <(…)`: a failing step stops the run under set -e.)
sql_out="$("$build/bench/process/process_bench_sql" "$work/script.sql")"
read -r sql_secs sql_rows <<<"$sql_out"
# The same job as Bronze + Silver, over the envelopes (payload + what the log holds).
mkdir -p "$work/same_out"
sed -e "s|@ENVELOPES@|$work/envelopes.ndjson|" -e "s|@OUT@|$work/same_out|" "$root/bench/process/bronze_silver.sql" > "$work/same.sql"
same_out="$("$build/bench/process/process_bench_sql" "$work/same.sql" 0 silver_events)"
read -r same_secs same_rows <<<"$same_out"
rm -rf "$work/same_out" "$work/duckdb_out"

# The floor: one COPY each of the live bronze.events and silver.events rows,
# already in memory, to zstd Parquet — what any design writing these tables
# with this libduckdb pays at least, before parsing anything.
mkdir -p "$work/floor"
floor_out="$("$build/bench/process/process_bench_floor" "$lake" "$work/floor")"
read -r floor_bronze floor_silver floor_brows floor_srows lz4_bronze lz4_silver <<<"$floor_out"

cl_eps=$(echo "$n / $cl_secs" | bc -l)
sql_eps=$(echo "$n / $sql_secs" | bc -l)
printf 'clicklake process --once : %8.2f s  %10.0f events/s  (%s silver rows, peak RSS %s MB)\n' "$cl_secs" "$cl_eps" "$silver" "$(( $(cat "$work/rss") / 1024 ))"
echo "  clicklake stages: $stages"
nogold_secs=$(echo "$cl_secs - $gold_secs" | bc -l)
printf '  without the Gold refresh: %8.2f s  %10.0f events/s\n' "$nogold_secs" "$(echo "$n / $nogold_secs" | bc -l)"
printf 'duckdb script            : %8.2f s  %10.0f events/s  (%s session rows)\n' "$sql_secs" "$sql_eps" "$sql_rows"
printf 'ratio clicklake/duckdb   : %8.2fx  (without Gold: %.2fx)   [sessions-only script, as before]\n' "$(echo "$cl_eps / $sql_eps" | bc -l)" \
  "$(echo "$n / $nogold_secs / $sql_eps" | bc -l)"
same_eps=$(echo "$n / $same_secs" | bc -l)
printf 'duckdb bronze+silver job : %8.2f s  %10.0f events/s  (%s silver rows)\n' "$same_secs" "$same_eps" "$same_rows"
printf 'ratio clicklake/same job : %8.2fx  (without Gold: %.2fx)   [target >= 1.0x, DESIGN.md §8]\n' \
  "$(echo "$cl_eps / $same_eps" | bc -l)" "$(echo "$n / $nogold_secs / $same_eps" | bc -l)"
floor_secs=$(echo "$floor_bronze + $floor_silver" | bc -l)
printf 'floor: writing the tables: %8.2f s  (bronze %.2f s for %s rows, silver %.2f s for %s rows, from memory)\n' \
  "$floor_secs" "$floor_bronze" "$floor_brows" "$floor_silver" "$floor_srows"
printf '  best ratio any design writing them could reach: %.2fx\n' "$(echo "$sql_secs / $floor_secs" | bc -l)"
printf '  silver rows written by the processor, rewrites included: %s (%.1fx the table); the floor at that\n' \
  "$silver_written" "$(echo "$silver_written / $floor_srows" | bc -l)"
rewrite_floor=$(echo "$floor_bronze + $floor_silver * $silver_written / $floor_srows" | bc -l)
printf '  volume: %.2f s, so %.2fx at best with these rewrites (changed rows written again)\n' \
  "$rewrite_floor" "$(echo "$sql_secs / $rewrite_floor" | bc -l)"
lz4_secs=$(echo "$lz4_bronze + $lz4_silver" | bc -l)
printf '  with LZ4 instead of zstd: %.2f s (bronze %.2f s, silver %.2f s): %.2fx at best\n' \
  "$lz4_secs" "$lz4_bronze" "$lz4_silver" "$(echo "$sql_secs / $lz4_secs" | bc -l)"

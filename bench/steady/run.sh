#!/usr/bin/env bash
# bench/steady: `clicklake up` (collector + processor) fed by `clicklake simulate`
# at a constant rate for minutes, on loopback, on this one machine; then a
# per-batch report from system.batches and silver.events' commit history, with
# the targets of DESIGN.md §8 as PASS/FAIL. Exits 1 when a target fails.
#
# usage: bench/steady/run.sh                       (or: bench/run steady)
#   RATE=10000 TRIGGER=30s MINUTES=10              the defaults (the §8 target)
#   RATES="5000 10000 15000 20000"                 search: one run per rate, ascending,
#                                                  until one fails; prints the highest passing
#   USERS=20000 DUP=0.02 LATE=0.01 OOO=0.02        the traffic
#   CONCURRENCY=64 BATCH=100 SIM_FLAGS="..."       the load generator
#   SECS=N                                         seconds instead of MINUTES
#   BUILD=build  KEEP_WORK=1  UP_FLAGS="--set ..."  DRAIN_TIMEOUT=900 (s)
#   COMPARE_SIGNALS=1                              the same load twice: trust signals (quality checks,
#                                                  readiness, lineage, alerts) off, then on; prints the
#                                                  ratio of mean batch seconds on/off, PASS <= 1.10
#                                                  (MAX_SIGNALS_RATIO); exits 1 above it
#   SIGNALS=off                                    one run with the trust signals switched off
# See README.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD:-$root/build}"
[[ "$build" = /* ]] || build="$root/$build"
RATE="${RATE:-10000}"
TRIGGER="${TRIGGER:-30s}"
MINUTES="${MINUTES:-10}"
USERS="${USERS:-20000}"
DUP="${DUP:-0.02}"
LATE="${LATE:-0.01}"
OOO="${OOO:-0.02}"
CONCURRENCY="${CONCURRENCY:-64}"
BATCH="${BATCH:-100}"
DRAIN_TIMEOUT="${DRAIN_TIMEOUT:-900}"
MAX_SIGNALS_RATIO="${MAX_SIGNALS_RATIO:-1.10}"
# Issue 16's switches: no quality checks or readiness writes, no OpenLineage events, no alert rules.
SIGNALS_OFF_FLAGS="--set quality.enabled=false --set lineage.enabled=false --set alerts.enabled=false"
[[ "${SIGNALS:-on}" != off || -n "${COMPARE_SIGNALS:-}" ]] || UP_FLAGS="${UP_FLAGS:-} $SIGNALS_OFF_FLAGS"
cl="$build/src/cli/clicklake"
ninja -C "$build" clicklake >/dev/null

trigger_s() {  # 30s, 2m, 500ms → seconds
  local t="$1"
  case "$t" in
    *ms) echo "scale=3; ${t%ms} / 1000" | bc ;;
    *s) echo "${t%s}" ;;
    *m) echo "$(( ${t%m} * 60 ))" ;;
    *) echo "$t" ;;
  esac
}
TRIGGER_S="$(trigger_s "$TRIGGER")"

pids=()
works=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ -z "${KEEP_WORK:-}" ]]; then
    for w in "${works[@]}"; do rm -rf "$w"; done
  else
    for w in "${works[@]}"; do echo "steady: kept $w"; done
  fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
ts() { date -u +%H:%M:%S; }

# The last "batch N committed" line of the processor, shortened.
last_batch_line() {
  grep -o 'batch [0-9]* committed: [0-9]* events.*' "$1" 2>/dev/null | tail -1 |
    sed -E 's/ \([0-9]+ undecodable\).*silver.events \+([0-9]+).*read ([0-9.]+) ms, bronze ([0-9.]+) ms, silver ([0-9.]+) ms, commit ([0-9.]+) ms, gold ([0-9.]+) ms/, silver +\1; commit \5 ms, gold \6 ms/' || true
}

# One run at one rate; prints the report, returns 1 when a target fails.
run_one() {
  local rate="$1"
  local work lake port key up_pid sim_pid t_start t_sim_end t_stop secs
  work="$(mktemp -d "${TMPDIR:-/tmp}/clicklake-bench-steady-XXXXXX")"
  works+=("$work")
  lake="$work/lake"
  port="$(free_port)"
  key="steady-bench-key"
  secs="${SECS:-$(( MINUTES * 60 ))}"
  echo "steady: rate $rate events/s, trigger $TRIGGER, $MINUTES min, $USERS users, duplicates $DUP, late $LATE," \
       "out-of-order $OOO; $CONCURRENCY connections x $BATCH events; lake $lake"

  # Collector + processor, loopback only (the collector binds 127.0.0.1 via collector.host).
  "$cl" up --lake "$lake" --port "$port" --trigger "$TRIGGER" --write-key "$key" --log-level info \
    --set collector.host=127.0.0.1 --set "privacy.key_file=$work/pii.key" ${UP_FLAGS:-} >"$work/up.log" 2>&1 &
  up_pid=$!
  pids+=("$up_pid")
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then break; fi
    if ! kill -0 "$up_pid" 2>/dev/null; then echo "steady: clicklake up exited:"; tail -20 "$work/up.log"; return 2; fi
    sleep 0.1
  done

  t_start="$(now)"
  "$cl" simulate --url "http://127.0.0.1:$port" --write-key "$key" --users "$USERS" --rate "$rate" \
    --duration "$secs" --seed 7 --duplicate-rate "$DUP" --late-rate "$LATE" --out-of-order-rate "$OOO" \
    --concurrency "$CONCURRENCY" --batch-size "$BATCH" ${SIM_FLAGS:-} >"$work/simulate.log" 2>&1 &
  sim_pid=$!
  pids+=("$sim_pid")
  # Progress every 30 s: the load generator's last line and the processor's last batch.
  while kill -0 "$sim_pid" 2>/dev/null; do
    for _ in $(seq 1 30); do kill -0 "$sim_pid" 2>/dev/null && sleep 1; done
    local el
    el=$(printf '%.0f' "$(echo "$(now) - $t_start" | bc)")
    local sim_line
    sim_line="$(grep -o 'acked [0-9]* events in [0-9]* batches ([0-9.]* ev/s)' "$work/simulate.log" | tail -1 || true)"
    echo "steady: $(ts) ${el}s/${secs}s  simulate: ${sim_line:-starting}  processor: $(last_batch_line "$work/up.log")"
  done
  local sim_rc=0
  wait "$sim_pid" || sim_rc=$?
  t_sim_end="$(now)"
  tail -1 "$work/simulate.log" | sed 's/^/steady: /'
  [[ $sim_rc -eq 0 ]] || echo "steady: simulate exited $sim_rc (batches not acknowledged; see $work/simulate.log)"

  # Stop `up`: the collector first, then the processor finishes its batch and
  # drains what is left in the log (batches started after this are "drain").
  t_stop="$(now)"
  kill -TERM "$up_pid"
  local waited=0 cut=0
  while kill -0 "$up_pid" 2>/dev/null; do
    sleep 5
    waited=$(( waited + 5 ))
    if (( waited % 30 == 0 )); then
      echo "steady: $(ts) stopping: processor draining for ${waited}s: $(last_batch_line "$work/up.log")"
    fi
    if (( waited >= DRAIN_TIMEOUT )); then
      echo "steady: the processor did not finish its drain in ${DRAIN_TIMEOUT}s: killed (committed batches are reported)"
      kill -KILL "$up_pid" 2>/dev/null || true
      cut=1
      break
    fi
  done
  local up_rc=0
  wait "$up_pid" || up_rc=$?
  [[ $up_rc -eq 0 ]] || { echo "steady: clicklake up exited $up_rc:"; grep -iE 'error|fail' "$work/up.log" | tail -5 || true; }

  echo "$rate $t_start $t_sim_end $t_stop $sim_rc $cut" >"$work/times"
  local rc=0
  report "$work" || rc=$?
  [[ -z "${MEAN_FILE:-}" ]] || mean_batch_s "$work" >"$MEAN_FILE"
  # A lake of 10 minutes at 10,000 events/s takes ~7 GB: not kept across the runs of a search.
  [[ -n "${KEEP_WORK:-}" ]] || rm -rf "$work"
  return "$rc"
}

# The report of a run from its work directory (REPORT_DIR=DIR re-prints a kept one).
report() {
  local work="$1" rate t_start t_sim_end t_stop sim_rc cut
  read -r rate t_start t_sim_end t_stop sim_rc cut <"$work/times"
  local lake="$work/lake"
  local stop_ms start_ms
  stop_ms=$(printf '%.0f' "$(echo "$t_stop * 1000" | bc)")
  start_ms=$(printf '%.0f' "$(echo "$t_start * 1000" | bc)")
  "$cl" sql --lake "$lake" --format csv \
    "SELECT batch_id, events, coalesce(silver_rows, 0) AS silver_rows, epoch_ms(started_at) AS started_ms,
            epoch_ms(finished_at) AS finished_ms, coalesce(gold_ms, -1) AS gold_ms, coalesce(commit_ms, 0) AS commit_ms
     FROM system.batches ORDER BY batch_id" >"$work/batches.csv"
  # Silver rows written per batch (rewrites included): numOutputRows of the
  # silver.events commit whose epochId is the batch id.
  "$cl" table history silver.events --lake "$lake" |
    awk -F' \\| ' 'NR > 1 {
      if (match($4, /"epochId":"[0-9]+"/) == 0) next
      e = substr($4, RSTART + 11, RLENGTH - 12)
      if (match($5, /"numOutputRows":"[0-9]+"/) == 0) next
      print e "," substr($5, RSTART + 17, RLENGTH - 18)
    }' >"$work/silver_written.csv"
  # Delivered: what reached Bronze, over the time it arrived in (duplicates included, as --rate counts them).
  local bronze
  bronze="$("$cl" sql --lake "$lake" --format csv \
    "SELECT count(*), epoch_ms(min(received_at)), epoch_ms(max(received_at)) FROM bronze.events" | tail -1 | tr -d '\r')"
  local acked
  acked="$(grep -o 'done: [0-9]* events' "$work/simulate.log" | grep -o '[0-9]*' || echo 0)"

  awk -F, -v rate="$rate" -v trig="$TRIGGER_S" -v stop_ms="$stop_ms" -v start_ms="$start_ms" -v bronze="$bronze" -v acked="$acked" \
      -v sim_rc="$sim_rc" -v cut="${cut:-0}" -v wfile="$work/silver_written.csv" '
    BEGIN {
      while ((getline line < wfile) > 0) { split(line, a, ","); written[a[1]] = a[2] }
    }
    NR == 1 { next }
    {
      n++; id[n] = $1; ev[n] = $2; sr[n] = $3; st[n] = $4; fi[n] = $5; gold[n] = $6
      drain[n] = ($4 > stop_ms) ? 1 : 0
    }
    END {
      if (n == 0) { print "steady: no batch was committed"; exit 1 }
      # Gold done for batch i: the end of the first batch >= i whose Gold refresh ran.
      nextgold = -1
      for (i = n; i >= 1; i--) { if (gold[i] >= 0) nextgold = fi[i]; golddone[i] = nextgold }
      printf "\n%6s %9s %9s %8s %8s %10s %11s %8s\n", "batch", "events", "new rows", "batch s", "gold s", "written", "written/new", "fresh s"
      worst = 0; fail = 0; over = 0; wsum = 0; nsum = 0; wmax = 0; steadyn = 0
      for (i = 1; i <= n; i++) {
        secs = (fi[i] - st[i]) / 1000
        g = gold[i] >= 0 ? sprintf("%8.1f", gold[i] / 1000) : "deferred"
        w = (id[i] in written) ? written[id[i]] : ""
        ratio = (w != "" && sr[i] > 0) ? w / sr[i] : -1
        rs = ratio >= 0 ? sprintf("%10s %11.2f", w, ratio) : sprintf("%10s %11s", "-", "-")
        # Freshness of batch i: its events arrived after batch i-1 started (for
        # the first batch: after the load started) and reached Gold at golddone[i].
        prev = i > 1 ? st[i - 1] : start_ms
        if (golddone[i] < 0) { fresh = -1; fs = sprintf("%8s", "never") } else { fresh = (golddone[i] - prev) / 1000; fs = sprintf("%8.1f", fresh) }
        printf "%6d %9d %9d %8.1f %8s %s %8s %s\n", id[i], ev[i], sr[i], secs, g, rs, fs, drain[i] ? "(drain after stop)" : ""
        if (secs >= trig) over++
        if (fresh < 0) never = 1; else if (fresh > worst) worst = fresh
        # The rows-written target is for the steady batches; drain batches are shown, not judged.
        if (w != "" && !drain[i]) { wsum += w; nsum += sr[i]; if (ratio > wmax) wmax = ratio }
        if (!drain[i]) { steadyn++; sec[steadyn] = secs; sid[steadyn] = id[i] }
      }
      # Flatness: batches 2-6 (by id; 0 and 1 warm up) against the last 5 batches
      # before the stop (a drain batch after it holds a partial interval).
      early = 0; ne = 0
      for (i = 1; i <= steadyn; i++) if (sid[i] >= 2 && sid[i] <= 6) { early += sec[i]; ne++ }
      late = 0; nl = 0
      for (i = steadyn; i >= 1 && i > steadyn - 5; i--) { late += sec[i]; nl++ }
      split(bronze, b, ",")
      span = (b[3] - b[2]) / 1000
      delivered = span > 0 ? b[1] / span : 0
      print ""
      printf "delivered: %d events in bronze.events over %.0f s = %.0f events/s (requested %d; simulate acknowledged %d)\n", b[1], span, delivered, rate, acked
      if (acked + 0 > b[1] + 0) {
        if (cut) printf "  (%d acknowledged events were still in the log: the drain was cut short; the rate is over what Bronze holds)\n", acked - b[1]
        else printf "  WARNING: bronze.events holds %d fewer events than were acknowledged\n", acked - b[1]
      }
      printf "silver rows written / new rows, steady batches: %.2f (worst batch %.2f)\n", (nsum > 0 ? wsum / nsum : 0), wmax
      print ""
      print "targets (DESIGN.md §8):"
      if (ne < 5 || nl < 5 || sid[steadyn - 4] <= 6) {
        printf "  FAIL flat batch times: only %d batches before the stop (need 12: batches 2-6, then the last 5 after them)\n", steadyn; fail++
      } else {
        em = early / ne; lm = late / nl
        ok = lm <= 1.25 * em
        printf "  %s flat batch times: mean of the last 5 %.1f s <= 1.25 x mean of batches 2-6 %.1f s (%.2fx)\n", ok ? "PASS" : "FAIL", lm, em, lm / em
        if (!ok) fail++
      }
      printf "  %s every batch shorter than the trigger (%s s): %d of %d at or over\n", over == 0 ? "PASS" : "FAIL", trig, over, n
      if (over) fail++
      if (never) { printf "  FAIL worst freshness <= 90 s: some batch never reached Gold (refresh deferred to the end)\n"; fail++ }
      else { printf "  %s worst freshness <= 90 s: %.1f s\n", worst <= 90 ? "PASS" : "FAIL", worst; if (worst > 90) fail++ }
      printf "  %s silver rows written per new row <= 1.5: worst batch %.2f\n", wmax <= 1.5 ? "PASS" : "FAIL", wmax
      if (wmax > 1.5) fail++
      dok = delivered >= 0.95 * rate && sim_rc == 0
      printf "  %s delivered rate >= 95%% of requested: %.0f of %d events/s (%.0f%%)\n", dok ? "PASS" : "FAIL", delivered, rate, 100 * delivered / rate
      if (!dok) fail++
      printf "steady: rate %d: %s\n", rate, fail ? "FAIL (" fail " targets)" : "PASS"
      exit fail ? 1 : 0
    }' "$work/batches.csv"
}

# The mean batch seconds of batches 2..N that started before the stop (batches 0 and 1 warm up;
# drain batches hold a partial interval or the backlog): "MEAN COUNT", from a run's batches.csv.
mean_batch_s() {
  local work="$1" rate t_start t_sim_end t_stop sim_rc cut stop_ms
  read -r rate t_start t_sim_end t_stop sim_rc cut <"$work/times"
  stop_ms=$(printf '%.0f' "$(echo "$t_stop * 1000" | bc)")
  awk -F, -v stop_ms="$stop_ms" 'NR > 1 && $1 >= 2 && $4 <= stop_ms { s += ($5 - $4) / 1000; n++ }
    END { if (n > 0) printf "%.3f %d\n", s / n, n; else print "nan 0" }' "$work/batches.csv"
}

# Signals on against off: prints the ratio of the mean batch seconds, PASS/FAIL against MAX_SIGNALS_RATIO.
compare_signals() {
  local off on off_n on_n
  read -r off off_n <"$1"
  read -r on on_n <"$2"
  echo ""
  echo "signals comparison (issue 16): mean batch seconds, batches 2..N before the stop"
  echo "  off ($SIGNALS_OFF_FLAGS): $off s over $off_n batches"
  echo "  on  (defaults): $on s over $on_n batches"
  if [[ "$off_n" -lt 1 || "$on_n" -lt 1 || "$off" = nan || "$on" = nan ]]; then
    echo "  FAIL signals overhead <= ${MAX_SIGNALS_RATIO}x: fewer than 3 batches before the stop in a run (run longer)"
    return 1
  fi
  awk -v on="$on" -v off="$off" -v max="$MAX_SIGNALS_RATIO" 'BEGIN {
    r = on / off
    printf "  %s signals overhead: on/off %.3f (target <= %.2f)\n", r <= max ? "PASS" : "FAIL", r, max
    exit r <= max ? 0 : 1 }'
}

echo "steady: commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n "${REPORT_DIR:-}" && -n "${REPORT_OFF_DIR:-}" ]]; then
  # Re-print a kept comparison (COMPARE_SIGNALS=1 KEEP_WORK=1): REPORT_OFF_DIR off, REPORT_DIR on.
  cmp="$(mktemp -d "${TMPDIR:-/tmp}/clicklake-bench-signals-XXXXXX")"
  works+=("$cmp")
  report "$REPORT_OFF_DIR" || true
  report "$REPORT_DIR" || true
  mean_batch_s "$REPORT_OFF_DIR" >"$cmp/off"
  mean_batch_s "$REPORT_DIR" >"$cmp/on"
  compare_signals "$cmp/off" "$cmp/on"
elif [[ -n "${REPORT_DIR:-}" ]]; then
  report "$REPORT_DIR"
elif [[ -n "${COMPARE_SIGNALS:-}" ]]; then
  # The same load (same rate, traffic and seed) twice: signals off, then on. Each run's
  # targets are printed; the exit code is the comparison's.
  cmp="$(mktemp -d "${TMPDIR:-/tmp}/clicklake-bench-signals-XXXXXX")"
  works+=("$cmp")
  base_flags="${UP_FLAGS:-}"
  echo "nan 0" >"$cmp/off"
  echo "nan 0" >"$cmp/on"
  echo "steady: signals off"
  UP_FLAGS="$base_flags $SIGNALS_OFF_FLAGS" MEAN_FILE="$cmp/off" run_one "$RATE" || true
  echo "steady: signals on"
  UP_FLAGS="$base_flags" MEAN_FILE="$cmp/on" run_one "$RATE" || true
  compare_signals "$cmp/off" "$cmp/on"
elif [[ -n "${RATES:-}" ]]; then
  best=""
  for r in $RATES; do
    if run_one "$r"; then best="$r"; else break; fi
  done
  echo "steady: highest passing rate: ${best:-none} (tried: $RATES)"
  [[ -n "$best" ]]
else
  run_one "$RATE"
fi

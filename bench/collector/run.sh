#!/usr/bin/env bash
# Collector throughput vs nginx, one invocation, same payload, same load tool.
#
#   bench/collector/run.sh [BUILD_DIR]      (default: build)
#   env: DURATION=10s CONNECTIONS="32 256 1024" (one row pair each) PAYLOADS=64 WRK_THREADS=1 COLLECTOR_THREADS=2 NGINX_WORKERS=2
#        COLLECTOR_LOG=local|file|null COLLECTOR_DURABILITY=fsync|none COLLECTOR_PARTITIONS=N
#        COLLECTOR_PARTITION_BY=append|key COLLECTOR_PREALLOCATE=BYTES (log.preallocate_bytes; 0 = no
#        preallocation, O_DIRECT or AIO: each partition's chunk appended + fdatasync'ed in turn)
#        (non-defaults are for profiling only; the default is the shipped config: LocalLog, fsync, 8 partitions)
#
# (a) nginx (Debian) reading each request body and logging it to a file
#     (access_log with log_format '$request_body'), answering 200;
# (b) collector_bench_server: the clicklake collector whose 200 means the 20
#     events are fsync-durable in the log (LocalLog by default).
# Both get the same Segment batch (20 events, ~650 B each) from wrk with the
# same connection count; the report gives events/s, p50/p99 and the ratio b/a
# for each connection count.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
[[ "$BUILD" = /* ]] || BUILD=$ROOT/$BUILD
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32 256 1024}
PAYLOADS=${PAYLOADS:-64}
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
WRK_THREADS=${WRK_THREADS:-1}
COLLECTOR_LOG=${COLLECTOR_LOG:-local}
COLLECTOR_THREADS=${COLLECTOR_THREADS:-2}
COLLECTOR_DURABILITY=${COLLECTOR_DURABILITY:-fsync}
NGINX_WORKERS=${NGINX_WORKERS:-$COLLECTOR_THREADS}
EVENTS_PER_REQUEST=20

SERVER=$BUILD/bench/collector/collector_bench_server
if [[ ! -x $SERVER ]]; then
  ninja -C "$BUILD" collector_bench_server >/dev/null
fi
for tool in wrk nginx python3; do
  command -v $tool >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/clicklake-bench-collector.XXXXXX)
NGINX_PID=""
SERVER_PID=""
cleanup() {
  [[ -n $NGINX_PID ]] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null || true
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  [[ -n ${KEEP_WORK:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT

# PAYLOADS distinct bodies (different users and ids, same shape and size), sent
# in turn: many clients, as a collector behind a load balancer sees them (a
# single repeated body would put every request's first user in the same log
# partition). Both servers get the same bodies in the same rotation.
source "$ROOT/bench/collector/wrk_load.sh"
write_wrk_load "$WORK" "$PAYLOADS" "$ROOT"
cp "$WORK/body-0.json" "$WORK/body.json"
cat >> "$WORK/post.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
LUA

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- (a) nginx ---------------------------------------------------------------
# nginx fills $request_body only when a module reads the body. Debian ships the
# echo module (libnginx-mod-http-echo) next to nginx-light: echo_read_request_body
# reads it in the content phase, then echo answers. Without that module we fall
# back to proxying to a second local server block that answers 200 (nginx reads
# the whole body before proxying) — slower for nginx, so it is noted in the output.
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
ECHO_MODULE=/usr/lib/nginx/modules/ngx_http_echo_module.so
SINK_SERVER=""
if [[ -f $ECHO_MODULE && -z ${NGINX_NO_ECHO:-} ]]; then
  LOAD="load_module $ECHO_MODULE;"
  LOCATION="location / { echo_read_request_body; echo '{\"success\":true}'; }"
  NGINX_MODE="echo_read_request_body"
else
  LOAD=""
  SINK_PORT=$(free_port)
  SINK_SERVER="server { listen 127.0.0.1:$SINK_PORT; access_log off; location / { return 200 '{\"success\":true}'; } }"
  LOCATION="location / { proxy_pass http://127.0.0.1:$SINK_PORT/; proxy_http_version 1.1; proxy_set_header Connection \"\"; }"
  NGINX_MODE="proxy_pass to a local 200 server"
fi
cat > "$WORK/nginx/nginx.conf" <<NGINX
$LOAD
daemon off;
master_process on;
worker_processes $NGINX_WORKERS;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  client_max_body_size 1m;
  client_body_buffer_size 64k;
  client_body_in_single_buffer on;
  keepalive_requests 1000000;
  log_format body escape=none '\$request_body';
  access_log $WORK/nginx/bodies.log body;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    $LOCATION
  }
  $SINK_SERVER
}
NGINX
nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
NGINX_PID=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && break; sleep 0.1; done

run_wrk() {  # url label connections
  wrk -t"$WRK_THREADS" -c"$3" -d"$DURATION" -s "$WORK/post.lua" "$1" | grep '^RESULT' | sed "s/^RESULT/$2 c=$3/"
}

# Sanity: one request, the body must be in nginx's log.
curl -s -o /dev/null -X POST --data-binary @"$WORK/body.json" "http://127.0.0.1:$NGINX_PORT/v1/batch"
sleep 0.2
grep -q '"messageId"' "$WORK/nginx/bodies.log" || { echo "nginx did not log the request body" >&2; cat "$WORK/nginx/error.log" >&2; exit 1; }

# --- (b) collector -----------------------------------------------------------
mkdir -p "$WORK/collector"
coproc SRV { exec "$SERVER" --dir "$WORK/collector" --log "$COLLECTOR_LOG" --durability "$COLLECTOR_DURABILITY" --threads "$COLLECTOR_THREADS" ${COLLECTOR_PARTITIONS:+--partitions "$COLLECTOR_PARTITIONS"} ${COLLECTOR_PARTITION_BY:+--partition-by "$COLLECTOR_PARTITION_BY"} ${COLLECTOR_PREALLOCATE:+--preallocate "$COLLECTOR_PREALLOCATE"} 2>"$WORK/collector/server.log"; }
SERVER_PID=$SRV_PID
COLLECTOR_PORT=""
while read -r word rest <&"${SRV[0]}"; do
  if [[ $word == PORT ]]; then COLLECTOR_PORT=$rest; break; fi
done
[[ -n $COLLECTOR_PORT ]] || { echo "collector_bench_server did not start" >&2; cat "$WORK/collector/server.log" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -u bench: -H 'Content-Type: application/json' \
  --data-binary @"$WORK/body.json" "http://127.0.0.1:$COLLECTOR_PORT/v1/batch")
[[ $code == 200 ]] || { echo "collector answered $code to the sanity request" >&2; cat "$WORK/collector/server.log" >&2; exit 1; }

stored_events() {
  curl -s "http://127.0.0.1:$COLLECTOR_PORT/metrics" | awk '/^clicklake_collector_events_total\{/ {s += $2} END {print s + 0}'
}

# --- measure: for each connection count, nginx then the collector --------------
# Both servers stay up (the idle one costs nothing); each row also says how many
# bodies nginx logged and how many events the collector stored during its run.
ROWS=()
for C in $CONNECTIONS; do
  before=$(wc -l < "$WORK/nginx/bodies.log")
  A=$(run_wrk "http://127.0.0.1:$NGINX_PORT/v1/batch" nginx "$C")
  sleep 0.2
  ROWS+=("$A logged=$(( $(wc -l < "$WORK/nginx/bodies.log") - before ))")
  before=$(stored_events)
  B=$(run_wrk "http://127.0.0.1:$COLLECTOR_PORT/v1/batch" collector "$C")
  ROWS+=("$B logged=$(( ($(stored_events) - before) / EVENTS_PER_REQUEST ))")
done
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=""
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""

# --- report ------------------------------------------------------------------
python3 - "$EVENTS_PER_REQUEST" "${ROWS[@]}" <<PY
import sys
n = int(sys.argv[1])
def parse(line):
    label, conns, *kv = line.split()
    d = {k: int(v) for k, v in (x.split("=") for x in kv)}
    return label, int(conns[2:]), d
rows = [parse(x) for x in sys.argv[2:]]
def eps(r):
    ok = r["requests"] - r["non2xx"]
    return ok * n / (r["duration_us"] / 1e6)
print(f"payload: Segment /v1/batch, {n} events/request, $(cat "$WORK"/body-*.json | wc -c) bytes in $PAYLOADS distinct bodies sent in turn; wrk -t$WRK_THREADS -d$DURATION; $(nproc) CPUs; load average before: $LOAD_BEFORE")
print(f"nginx: {'$NGINX_MODE'}, {$NGINX_WORKERS} workers, access_log of \$request_body; "
      f"collector: {'$COLLECTOR_LOG'} log, {'$COLLECTOR_DURABILITY'} acks, partition_by={'${COLLECTOR_PARTITION_BY:-key}'}, preallocate={'${COLLECTOR_PREALLOCATE:-default}'}, "
      f"{$COLLECTOR_THREADS} I/O threads")
print(f"{'server':<10} {'conns':>5} {'events/s':>10} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>7} {'sockerr':>7} {'stored':>8}")
for label, c, r in rows:
    print(f"{label:<10} {c:>5} {eps(r):>10.0f} {r['requests'] / (r['duration_us'] / 1e6):>8.0f} {r['p50_us'] / 1000:>7.2f} "
          f"{r['p99_us'] / 1000:>7.2f} {r['non2xx']:>7} {r['socket_errors']:>7} {r['logged']:>8}")
# "stored": requests whose bodies nginx logged / the collector stored (events / $EVENTS_PER_REQUEST) during the run.
for i in range(0, len(rows), 2):
    (_, c, a), (_, _, b) = rows[i], rows[i + 1]
    print(f"ratio collector/nginx (events/s) at c={c}: {eps(b) / eps(a):.2f}")
PY

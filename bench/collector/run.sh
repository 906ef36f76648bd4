#!/usr/bin/env bash
# Collector throughput vs nginx, one invocation, same payload, same load tool.
#
#   bench/collector/run.sh [BUILD_DIR]      (default: build)
#   env: DURATION=10s CONNECTIONS=32 WRK_THREADS=1 COLLECTOR_THREADS=2 NGINX_WORKERS=2
#        COLLECTOR_LOG=local|file|null COLLECTOR_DURABILITY=fsync|none COLLECTOR_PARTITIONS=N
#        (non-defaults are for profiling only; the default is the shipped config: LocalLog, fsync, 8 partitions)
#
# (a) nginx (Debian) reading each request body and logging it to a file
#     (access_log with log_format '$request_body'), answering 200;
# (b) collector_bench_server: the clicklake collector whose 200 means the 20
#     events are fsync-durable in the log (LocalLog by default).
# Both get the same Segment batch (20 events, ~650 B each) from wrk with the
# same connection count; the report gives events/s, p50/p99 and the ratio b/a.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
[[ "$BUILD" = /* ]] || BUILD=$ROOT/$BUILD
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
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

python3 "$ROOT/bench/collector/make_payload.py" > "$WORK/body.json"
AUTH=$(printf 'bench:' | base64)
cat > "$WORK/post.lua" <<LUA
local f = io.open("$WORK/body.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic $AUTH"
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

run_wrk() {  # url label
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/post.lua" "$1" | grep '^RESULT' | sed "s/^RESULT/$2/"
}

# Sanity: one request, the body must be in nginx's log.
curl -s -o /dev/null -X POST --data-binary @"$WORK/body.json" "http://127.0.0.1:$NGINX_PORT/v1/batch"
sleep 0.2
grep -q '"messageId"' "$WORK/nginx/bodies.log" || { echo "nginx did not log the request body" >&2; cat "$WORK/nginx/error.log" >&2; exit 1; }
A=$(run_wrk "http://127.0.0.1:$NGINX_PORT/v1/batch" nginx)
NGINX_LINES=$(wc -l < "$WORK/nginx/bodies.log")
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=""

# --- (b) collector -----------------------------------------------------------
mkdir -p "$WORK/collector"
coproc SRV { exec "$SERVER" --dir "$WORK/collector" --log "$COLLECTOR_LOG" --durability "$COLLECTOR_DURABILITY" --threads "$COLLECTOR_THREADS" ${COLLECTOR_PARTITIONS:+--partitions "$COLLECTOR_PARTITIONS"} 2>"$WORK/collector/server.log"; }
SERVER_PID=$SRV_PID
COLLECTOR_PORT=""
while read -r word rest <&"${SRV[0]}"; do
  if [[ $word == PORT ]]; then COLLECTOR_PORT=$rest; break; fi
done
[[ -n $COLLECTOR_PORT ]] || { echo "collector_bench_server did not start" >&2; cat "$WORK/collector/server.log" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -u bench: -H 'Content-Type: application/json' \
  --data-binary @"$WORK/body.json" "http://127.0.0.1:$COLLECTOR_PORT/v1/batch")
[[ $code == 200 ]] || { echo "collector answered $code to the sanity request" >&2; cat "$WORK/collector/server.log" >&2; exit 1; }
B=$(run_wrk "http://127.0.0.1:$COLLECTOR_PORT/v1/batch" collector)
METRICS=$(curl -s "http://127.0.0.1:$COLLECTOR_PORT/metrics")
STORED=$(echo "$METRICS" | awk '/^clicklake_collector_events_total\{/ {s += $2} END {print s + 0}')
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""

# --- report ------------------------------------------------------------------
python3 - "$A" "$B" "$EVENTS_PER_REQUEST" <<PY
import sys
def parse(line):
    label, *kv = line.split()
    d = dict(x.split("=") for x in kv)
    return label, {k: int(v) for k, v in d.items()}
(la, a), (lb, b) = parse(sys.argv[1]), parse(sys.argv[2])
n = int(sys.argv[3])
def eps(r):
    ok = r["requests"] - r["non2xx"]
    return ok * n / (r["duration_us"] / 1e6)
print(f"payload: Segment /v1/batch, {n} events/request, $(wc -c < "$WORK/body.json") bytes; wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION; $(nproc) CPUs")
print(f"nginx: {'$NGINX_MODE'}, {$NGINX_WORKERS} workers, access_log of \$request_body ({$NGINX_LINES} lines); collector: {'$COLLECTOR_LOG'} log, {'$COLLECTOR_DURABILITY'} acks, {$COLLECTOR_THREADS} I/O threads ({$STORED} events stored)")
print(f"{'server':<10} {'events/s':>12} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'sock err':>8}")
for label, r in ((la, a), (lb, b)):
    print(f"{label:<10} {eps(r):>12.0f} {r['requests'] / (r['duration_us'] / 1e6):>10.0f} {r['p50_us'] / 1000:>8.2f} "
          f"{r['p99_us'] / 1000:>8.2f} {r['non2xx']:>8} {r['socket_errors']:>8}")
print(f"ratio collector/nginx (events/s): {eps(b) / eps(a):.2f}")
PY

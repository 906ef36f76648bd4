#!/usr/bin/env bash
# Builds the query API's libFuzzer target with clang (ASan + UBSan + libFuzzer)
# into build-fuzz/ and runs it for N seconds from its seed corpus. DuckDB is
# linked as the prebuilt library (.deps/duckdb); clicklake's code is
# instrumented.
#
#   src/governance/access/fuzz/build.sh [SECONDS]      # default 30
set -euo pipefail
SECONDS_TOTAL=${1:-30}
ROOT=$(cd "$(dirname "$0")/../../../.." && pwd)
OUT=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
CXX=${CXX_FUZZ:-clang++-14}
DUCKDB="$ROOT/.deps/duckdb"
mkdir -p "$OUT/obj-access" "$OUT/corpus/query" "$OUT/corpus/basic"
FLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -I"$ROOT/src" -isystem "$DUCKDB/include")
SRCS=(engine/engine.cc engine/sandbox.cc common/status.cc common/clock.cc common/json_string.cc
      governance/access/credentials.cc governance/access/fuzz/fuzz_targets.cc)
OBJS=()
for src in "${SRCS[@]}"; do
  obj="$OUT/obj-access/$(echo "$src" | tr / _).o"
  if [[ ! -f "$obj" || "$ROOT/src/$src" -nt "$obj" ]]; then
    echo "compiling $src"
    "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer-no-link -c "$ROOT/src/$src" -o "$obj"
  fi
  OBJS+=("$obj")
done
bin="$OUT/query_fuzzer"
"$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "$ROOT/src/governance/access/fuzz/query_fuzzer.cc" "${OBJS[@]}" \
  -L"$DUCKDB/lib" -Wl,-rpath,"$DUCKDB/lib" -lduckdb -lsimdjson -lspdlog -lfmt -lcrypto -lpthread -o "$bin"
echo "== fuzzing query for ${SECONDS_TOTAL}s"
cd "$OUT" && "$bin" -max_total_time="$SECONDS_TOTAL" -max_len=4096 -timeout=20 -rss_limit_mb=4096 \
  -print_final_stats=1 "$OUT/corpus/query" "$ROOT/src/governance/access/fuzz/corpus/query" 2>&1 | tail -12
bin="$OUT/basic_fuzzer"
"$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "$ROOT/src/governance/access/fuzz/basic_fuzzer.cc" "${OBJS[@]}" \
  -L"$DUCKDB/lib" -Wl,-rpath,"$DUCKDB/lib" -lduckdb -lsimdjson -lspdlog -lfmt -lcrypto -lpthread -o "$bin"
echo "== fuzzing basic for ${SECONDS_TOTAL}s"
cd "$OUT" && "$bin" -max_total_time="$SECONDS_TOTAL" -max_len=1024 -print_final_stats=1 \
  "$OUT/corpus/basic" "$ROOT/src/governance/access/fuzz/corpus/basic" 2>&1 | tail -12

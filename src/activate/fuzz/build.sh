#!/usr/bin/env bash
# Builds the activate libFuzzer target (parsers of destination answers) with
# clang (ASan + UBSan + libFuzzer) into build-fuzz/activate and runs it for N
# seconds from its seed corpus.
#
#   src/activate/fuzz/build.sh [SECONDS]      # default 30
set -euo pipefail
SECONDS_PER_TARGET=${1:-30}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}/activate
CXX=${CXX_FUZZ:-clang++-14}
mkdir -p "$OUT/obj" "$OUT/corpus"
FLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -I"$ROOT/src")
SRCS=(activate/responses.cc activate/fuzz/fuzz_targets.cc common/status.cc)
OBJS=()
for src in "${SRCS[@]}"; do
  obj="$OUT/obj/$(echo "$src" | tr / _).o"
  if [[ ! -f "$obj" || "$ROOT/src/$src" -nt "$obj" ]]; then
    echo "compiling $src"
    "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer-no-link -c "$ROOT/src/$src" -o "$obj"
  fi
  OBJS+=("$obj")
done
bin="$OUT/answer_fuzzer"
"$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "$ROOT/src/activate/fuzz/answer_fuzzer.cc" "${OBJS[@]}" -lsimdjson -o "$bin"
mkdir -p "$OUT/corpus/answers"
echo "== fuzzing destination answers for ${SECONDS_PER_TARGET}s"
cd "$OUT" && "$bin" -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$OUT/corpus/answers" "$ROOT/src/activate/fuzz/corpus/answers" 2>&1 | tail -12
exit "${PIPESTATUS[0]}"

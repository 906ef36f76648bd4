#!/usr/bin/env bash
# Builds the privacy libFuzzer targets with clang (ASan + UBSan + libFuzzer)
# into build-fuzz/ and runs each for N seconds from its seed corpus.
#
#   src/privacy/fuzz/build.sh [SECONDS]      # default 30 per target
set -euo pipefail
SECONDS_PER_TARGET=${1:-30}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}/privacy
CXX=${CXX_FUZZ:-clang++-14}
mkdir -p "$OUT/obj" "$OUT/corpus"
FLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -I"$ROOT/src")
SRCS=(privacy/privacy.cc privacy/fuzz/fuzz_targets.cc common/status.cc common/clock.cc common/json_string.cc
      common/file_system.cc)
OBJS=()
for src in "${SRCS[@]}"; do
  obj="$OUT/obj/$(echo "$src" | tr / _).o"
  if [[ ! -f "$obj" || "$ROOT/src/$src" -nt "$obj" ]]; then
    echo "compiling $src"
    "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer-no-link -c "$ROOT/src/$src" -o "$obj"
  fi
  OBJS+=("$obj")
done
status=0
for target in regulation subject_filter; do
  bin="$OUT/${target}_fuzzer"
  "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "$ROOT/src/privacy/fuzz/${target}_fuzzer.cc" "${OBJS[@]}" \
    -lsimdjson -lcrypto -o "$bin"
  mkdir -p "$OUT/corpus/$target"
  echo "== fuzzing $target for ${SECONDS_PER_TARGET}s"
  if ! (cd "$OUT" && "$bin" -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$OUT/corpus/$target" "$ROOT/src/privacy/fuzz/corpus/$target" 2>&1 | tail -12); then
    status=1
  fi
done
exit $status

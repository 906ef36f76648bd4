#!/usr/bin/env bash
# Builds the collector's libFuzzer targets with clang (ASan + UBSan + libFuzzer)
# into build-fuzz/ and runs each for N seconds from its seed corpus.
#
#   src/collector/fuzz/build.sh [SECONDS]      # default 30 per target
#
# New inputs the fuzzer finds go to build-fuzz/corpus/<target>/ (the seeds in
# src/collector/fuzz/corpus/ stay untouched); crashes to build-fuzz/crash-*.
set -euo pipefail
SECONDS_PER_TARGET=${1:-30}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
CXX=${CXX_FUZZ:-clang++-14}
mkdir -p "$OUT/obj" "$OUT/corpus"
FLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -I"$ROOT/src")
SRCS=(collector/json_util.cc collector/segment_parser.cc collector/snowplow_parser.cc collector/native_parser.cc
      collector/gzip.cc collector/fuzz/fuzz_targets.cc common/status.cc)
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
for target in segment snowplow native gzip; do
  bin="$OUT/${target}_fuzzer"
  "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "$ROOT/src/collector/fuzz/${target}_fuzzer.cc" "${OBJS[@]}" \
    -lsimdjson -lz -o "$bin"
  mkdir -p "$OUT/corpus/$target"
  echo "== fuzzing $target for ${SECONDS_PER_TARGET}s"
  if ! (cd "$OUT" && "$bin" -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$OUT/corpus/$target" "$ROOT/src/collector/fuzz/corpus/$target" 2>&1 | tail -12); then
    status=1
  fi
done
exit $status

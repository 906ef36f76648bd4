# Shared by the components' fuzz/build.sh: builds libFuzzer targets with clang
# (ASan + UBSan + libFuzzer) and runs each for a while from its seed corpus.
# Source it, set the variables, call fuzz_build_and_run:
#   ROOT      the repository
#   OUT       the build directory (objects, binaries, found inputs)
#   COMPONENT the component's folder under src/ (its fuzz/<target>_fuzzer.cc
#             and fuzz/corpus/<target>/)
#   SRCS      sources under src/ the targets link (instrumented)
#   LIBS      libraries to link (e.g. -lsimdjson)
#   TARGETS   the targets' names
#   SECONDS_PER_TARGET
# New inputs go to $OUT/corpus/<target>/ (the seeds stay untouched); crashes
# to $OUT/crash-*. Returns non-zero when a target failed.
fuzz_build_and_run() {
  local cxx=${CXX_FUZZ:-clang++-14}
  local flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined
               -fno-sanitize-recover=undefined -I"$ROOT/src")
  local objs=() src obj target bin status=0
  mkdir -p "$OUT/obj" "$OUT/corpus"
  for src in "${SRCS[@]}"; do
    obj="$OUT/obj/$(echo "$src" | tr / _).o"
    if [[ ! -f "$obj" || "$ROOT/src/$src" -nt "$obj" ]]; then
      echo "compiling $src"
      "$cxx" "${flags[@]}" -fsanitize=fuzzer-no-link -c "$ROOT/src/$src" -o "$obj"
    fi
    objs+=("$obj")
  done
  for target in "${TARGETS[@]}"; do
    bin="$OUT/${target}_fuzzer"
    "$cxx" "${flags[@]}" -fsanitize=fuzzer "$ROOT/src/$COMPONENT/fuzz/${target}_fuzzer.cc" "${objs[@]}" \
      "${LIBS[@]}" -o "$bin"
    mkdir -p "$OUT/corpus/$target"
    echo "== fuzzing $target for ${SECONDS_PER_TARGET}s"
    if ! (cd "$OUT" && "$bin" -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 "$OUT/corpus/$target" "$ROOT/src/$COMPONENT/fuzz/corpus/$target" 2>&1 | tail -12); then
      status=1
    fi
  done
  return $status
}

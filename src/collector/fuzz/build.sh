#!/usr/bin/env bash
# Builds the collector's libFuzzer targets with clang (ASan + UBSan + libFuzzer)
# into build-fuzz/ and runs each for N seconds from its seed corpus
# (scripts/lib/fuzz.sh).
#
#   src/collector/fuzz/build.sh [SECONDS]      # default 30 per target
#
# New inputs the fuzzer finds go to build-fuzz/corpus/<target>/ (the seeds in
# src/collector/fuzz/corpus/ stay untouched); crashes to build-fuzz/crash-*.
set -euo pipefail
SECONDS_PER_TARGET=${1:-30}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
COMPONENT=collector
SRCS=(collector/json_util.cc collector/segment_parser.cc collector/snowplow_parser.cc collector/native_parser.cc
      collector/gzip.cc collector/fuzz/fuzz_targets.cc common/status.cc common/json_string.cc)
LIBS=(-lsimdjson -lz)
TARGETS=(segment snowplow native gzip)
source "$ROOT/scripts/lib/fuzz.sh"
fuzz_build_and_run

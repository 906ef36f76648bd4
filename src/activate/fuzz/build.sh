#!/usr/bin/env bash
# Builds the activate libFuzzer target (parsers of destination answers) with
# clang (ASan + UBSan + libFuzzer) into build-fuzz/activate and runs it for N
# seconds from its seed corpus (scripts/lib/fuzz.sh).
#
#   src/activate/fuzz/build.sh [SECONDS]      # default 30
set -euo pipefail
SECONDS_PER_TARGET=${1:-30}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}/activate
COMPONENT=activate
SRCS=(activate/responses.cc activate/fuzz/fuzz_targets.cc common/status.cc)
LIBS=(-lsimdjson)
TARGETS=(answer)
source "$ROOT/scripts/lib/fuzz.sh"
fuzz_build_and_run

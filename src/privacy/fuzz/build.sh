#!/usr/bin/env bash
# Builds the privacy libFuzzer targets with clang (ASan + UBSan + libFuzzer)
# into build-fuzz/privacy and runs each for N seconds from its seed corpus
# (scripts/lib/fuzz.sh).
#
#   src/privacy/fuzz/build.sh [SECONDS]      # default 30 per target
set -euo pipefail
SECONDS_PER_TARGET=${1:-30}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}/privacy
COMPONENT=privacy
SRCS=(privacy/privacy.cc privacy/fuzz/fuzz_targets.cc common/status.cc common/clock.cc common/json_string.cc
      common/file_system.cc)
LIBS=(-lsimdjson -lcrypto)
TARGETS=(regulation subject_filter)
source "$ROOT/scripts/lib/fuzz.sh"
fuzz_build_and_run

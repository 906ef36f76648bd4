// libFuzzer target: the parsers of sync destinations' answers (see fuzz_targets.h, build.sh).
#include "activate/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return clicklake::activate::fuzz::FuzzDestinationAnswer(data, size);
}

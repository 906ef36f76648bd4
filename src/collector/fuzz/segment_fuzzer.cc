// libFuzzer target: the collector's segment body parser (see fuzz_targets.h, build.sh).
#include "collector/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return clicklake::collector::fuzz::FuzzSegmentBody(data, size);
}

// libFuzzer target: the `POST /api/v1/regulations` body parser (see fuzz_targets.h, build.sh).
#include "privacy/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return clicklake::privacy::fuzz::FuzzRegulationBody(data, size);
}

// libFuzzer target: an HTTP Basic `Authorization` header (see fuzz_targets.h, build.sh).
#include "governance/access/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return clicklake::access::fuzz::FuzzBasicCredentials(data, size);
}

// libFuzzer target: the query API's request body and SQL checks (see fuzz_targets.h, build.sh).
#include "governance/access/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return clicklake::access::fuzz::FuzzQueryRequest(data, size);
}

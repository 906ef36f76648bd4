// libFuzzer target: page URLs, query strings and referrers (see build.sh).
#include <cstddef>
#include <cstdint>

#include "enrich/fuzz/fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  clicklake::enrich::fuzz::FuzzUrl(data, size);
  return 0;
}

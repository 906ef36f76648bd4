// libFuzzer target: the user-agent parser (see build.sh). The uap-core rules
// load once, from $CLICKLAKE_UA_REGEXES or the default path.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "enrich/fuzz/fuzz_entry.h"

namespace {

const clicklake::enrich::UaParser& Parser() {
  static const clicklake::enrich::UaParser* parser = [] {
    clicklake::enrich::UaParserOptions options;
    if (const char* p = std::getenv("CLICKLAKE_UA_REGEXES")) options.regexes_path = p;
    options.cache_capacity = 1024;  // exercise eviction too
    auto r = clicklake::enrich::UaParser::Open(options);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      std::abort();
    }
    return std::move(r).value().release();
  }();
  return *parser;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  clicklake::enrich::fuzz::FuzzUserAgent(Parser(), data, size);
  return 0;
}

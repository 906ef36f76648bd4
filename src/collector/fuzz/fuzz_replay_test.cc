// Replays the fuzz seed corpus (src/collector/fuzz/corpus/) and a few hostile
// inputs through the fuzz entry points, so `make test` exercises them under
// ASan/UBSan without clang's libFuzzer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "collector/fuzz/fuzz_targets.h"
#include "common/test_util.h"

namespace clicklake::collector::fuzz {
namespace {

using FuzzFn = int (*)(const uint8_t*, size_t);

void Feed(FuzzFn fn, const std::string& input) { fn(reinterpret_cast<const uint8_t*>(input.data()), input.size()); }

size_t ReplayCorpus(const std::string& name, FuzzFn fn) {
  std::string dir = clicklake::testing::SourceDir() + "/src/collector/fuzz/corpus/" + name;
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string data = ss.str();
    Feed(fn, data);
    // Every prefix too: truncation is the most common malformation.
    for (size_t len = 0; len < data.size(); len += 1 + data.size() / 64) Feed(fn, data.substr(0, len));
    ++n;
  }
  return n;
}

TEST(FuzzReplayTest, SeedCorpora) {
  EXPECT_GE(ReplayCorpus("segment", FuzzSegmentBody), 5u);
  EXPECT_GE(ReplayCorpus("snowplow", FuzzSnowplowBody), 3u);
  EXPECT_GE(ReplayCorpus("native", FuzzNativeBody), 3u);
  EXPECT_GE(ReplayCorpus("gzip", FuzzGzipBody), 3u);
}

TEST(FuzzReplayTest, HostileInputs) {
  const std::string hostile[] = {
      std::string(100000, '['),
      std::string(100000, '{'),
      "{\"batch\":[" + std::string(70, '[') + std::string(70, ']') + "]}",
      std::string("{\"a\":\"\xed\xa0\x80\"}"),  // UTF-16 surrogate encoded in UTF-8
      "{\"a\":\"\\ud800\"}",
      "{\"a\":1e999999,\"b\":-0.0e-0}",
      "{\"a\":01}",
      std::string("{\"a\":\"\0\"}", 9),
      "{\"batch\":[{\"context\":{}}],\"context\":{\"a\":1,\"a\":2}}",
      "e=%",
      "e=%4",
      "&&&=&=",
  };
  for (const std::string& h : hostile) {
    for (char route = 0; route < 5; ++route) Feed(FuzzSegmentBody, std::string(1, route) + h);
    Feed(FuzzSnowplowBody, std::string(1, 0) + h);
    Feed(FuzzSnowplowBody, std::string(1, 1) + h);
    Feed(FuzzNativeBody, h);
    Feed(FuzzGzipBody, h);
  }
}

}  // namespace
}  // namespace clicklake::collector::fuzz

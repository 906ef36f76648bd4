// Replays the privacy fuzz seed corpus (src/privacy/fuzz/corpus/) with every
// truncation, plus hostile inputs, through the fuzz entry points, so `make
// test` exercises them under ASan/UBSan without clang's libFuzzer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/test_util.h"
#include "privacy/fuzz/fuzz_targets.h"

namespace clicklake::privacy::fuzz {
namespace {

using FuzzFn = int (*)(const uint8_t*, size_t);

void Feed(FuzzFn fn, const std::string& input) { fn(reinterpret_cast<const uint8_t*>(input.data()), input.size()); }

size_t ReplayCorpus(const std::string& name, FuzzFn fn) {
  std::string dir = clicklake::testing::SourceDir() + "/src/privacy/fuzz/corpus/" + name;
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string data = ss.str();
    Feed(fn, data);
    for (size_t len = 0; len < data.size(); len++) Feed(fn, data.substr(0, len));
    ++n;
  }
  return n;
}

TEST(PrivacyFuzzReplayTest, SeedCorpora) {
  EXPECT_GE(ReplayCorpus("regulation", FuzzRegulationBody), 5u);
  EXPECT_GE(ReplayCorpus("subject_filter", FuzzSubjectFilter), 3u);
}

TEST(PrivacyFuzzReplayTest, HostileInputs) {
  const std::string hostile[] = {
      std::string(100000, '['),
      std::string(100000, '{'),
      "{\"regulationType\":\"DELETE\",\"users\":[" + std::string(70, '[') + std::string(70, ']') + "]}",
      "{\"regulationType\":\"DELETE\",\"subjectType\":\"USER_ID\",\"subjectIds\":[1,2]}",
      "{\"regulationType\":\"DELETE\",\"subjectType\":\"USER_ID\",\"subjectIds\":\"u1\"}",
      "{\"regulationType\":\"DELETE\",\"users\":[{\"userId\":{\"a\":1}}]}",
      "{\"regulationType\":\"\\ud800\",\"subjectType\":\"USER_ID\",\"subjectIds\":[\"\\u0000\"]}",
      std::string("{\"userId\":\"u1\0\",\"timestamp\":\"9999-99-99T99:99:99Z\"}", 52),
      "{\"userId\":\"u1\",\"dtm\":\"99999999999999999999999\"}",
      "{\"traits\":{\"email\":7},\"context\":[1]}",
  };
  for (const std::string& h : hostile) {
    Feed(FuzzRegulationBody, h);
    Feed(FuzzSubjectFilter, h);
  }
}

}  // namespace
}  // namespace clicklake::privacy::fuzz

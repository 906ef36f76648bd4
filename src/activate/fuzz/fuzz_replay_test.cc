// Replays the seed corpus of destination answers (src/activate/fuzz/corpus/)
// with every truncation, plus hostile inputs, through the fuzz entry point, so
// `make test` exercises the parsers under ASan/UBSan without clang's libFuzzer.
#include <gtest/gtest.h>

#include <string>

#include "activate/fuzz/fuzz_targets.h"
#include "common/test_util.h"

namespace clicklake::activate::fuzz {
namespace {

void Feed(const std::string& input) {
  FuzzDestinationAnswer(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

TEST(ActivateFuzzReplayTest, SeedCorpus) {
  EXPECT_GE(clicklake::testing::ReplayFuzzCorpus("src/activate/fuzz/corpus/answer", FuzzDestinationAnswer), 12u);
}

TEST(ActivateFuzzReplayTest, HostileInputs) {
  const std::string hostile[] = {
      std::string(100000, '['),
      std::string(100000, '{'),
      "{\"errors\":[" + std::string(70, '[') + std::string(70, ']') + "]}",
      "{\"errors\":5,\"results\":\"x\"}",
      "{\"errors\":[{\"index\":-3},{\"index\":1e400},{\"index\":9223372036854775807},{\"input_array\":[]}]}",
      "{\"results\":[{\"properties\":{\"email\":7}},{\"id\":null,\"properties\":{\"email\":\"a\"}}],\"errors\":"
      "[{\"context\":{\"ids\":[1,null,\"\\u0000\"],\"id\":{}}},{\"context\":[]}]}",
      "{\"resourceName\":\"../../admin?x=1\"}",
      "{\"resourceName\":\"customers/1/offlineUserDataJobs/2 HTTP/1.1\\r\\nHost: evil\"}",
      "{\"partialFailureError\":{\"details\":[{\"errors\":[{\"location\":{\"fieldPathElements\":[{\"fieldName\":"
      "\"operations\",\"index\":-1},{\"fieldName\":\"operations\",\"index\":18446744073709551615}]}}]}]}}",
      "{\"invalid_entry_samples\":[\"x\"]}",
      "{\"invalid_entry_samples\":{\"abc\":5,\"\\ud800\":\"x\"}}",
      std::string("{\"a\":\"\0\"}", 9),
      "1e999999", "inf", "nan", "-1", "99999999999999999999999", "0x10", "1 2", " 7 ",
      "Mon, 99 Dec 2026 12:00:30 GMT", "Mon, 07 Dec 99999 12:00:30 GMT", "Thu, 01 Jan 1970 00:00:00 GMT",
  };
  for (const std::string& h : hostile) {
    for (const char* parser : {"webhook", "hubspot", "braze", "google_job", "google_partial", "meta", "retry_after"})
      Feed(std::string(parser) + "\n" + h);
    Feed(h);
  }
}

}  // namespace
}  // namespace clicklake::activate::fuzz

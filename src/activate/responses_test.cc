// The parsers of destination answers (responses.h) on real-shaped answers and malformed ones.
#include "activate/responses.h"

#include <gtest/gtest.h>

#include "common/test_util.h"

namespace clicklake::activate {
namespace {

TEST(ActivateResponses, WebhookErrors) {
  ASSERT_OK_AND_ASSIGN(auto none, ParseWebhookErrors(""));
  EXPECT_TRUE(none.empty());
  ASSERT_OK_AND_ASSIGN(auto r, ParseWebhookErrors(
                                   "{\"errors\":[{\"key\":\"u1\",\"message\":\"unknown plan\"},{\"key\":\"u2\"},"
                                   "{\"message\":\"no key\"},{\"key\":5}]}"));
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r["u1"], "unknown plan");
  EXPECT_EQ(r["u2"], "refused");
  EXPECT_FALSE(ParseWebhookErrors("<html>").ok());
}

TEST(ActivateResponses, HubSpotMultiStatus) {
  ASSERT_OK_AND_ASSIGN(
      auto r, ParseHubSpotBatchResult(
                  "{\"status\":\"COMPLETE\",\"results\":[{\"id\":\"51\",\"properties\":{\"email\":\"ann@example.com\"}},"
                  "{\"id\":\"52\",\"properties\":{}}],\"numErrors\":2,\"errors\":[{\"status\":\"error\",\"category\":"
                  "\"VALIDATION_ERROR\",\"message\":\"Property values were not valid\",\"context\":{\"ids\":[\"bob@"
                  "example.com\",7]}},{\"status\":\"error\",\"message\":\"something\"}]}",
                  "email"));
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records["ann@example.com"], "51");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].Text(), "HubSpot VALIDATION_ERROR: Property values were not valid");
  EXPECT_EQ(r.errors[0].ids, std::vector<std::string>{"bob@example.com"});
  EXPECT_TRUE(r.errors[1].ids.empty());
  EXPECT_EQ(r.errors[1].category, "");
  // context.id (singular) names inputs too; an answer without results or errors is empty.
  ASSERT_OK_AND_ASSIGN(auto one, ParseHubSpotBatchResult(
                                     "{\"errors\":[{\"category\":\"OBJECT_NOT_FOUND\",\"context\":{\"id\":[\"x\"]}}]}",
                                     "email"));
  ASSERT_EQ(one.errors.size(), 1u);
  EXPECT_EQ(one.errors[0].ids, std::vector<std::string>{"x"});
  EXPECT_EQ(one.errors[0].message, "error");
  ASSERT_OK_AND_ASSIGN(auto empty, ParseHubSpotBatchResult("{}", "email"));
  EXPECT_TRUE(empty.records.empty() && empty.errors.empty());
  EXPECT_FALSE(ParseHubSpotBatchResult("{\"results\":[", "email").ok());
}

TEST(ActivateResponses, BrazeErrors) {
  ASSERT_OK_AND_ASSIGN(auto r, ParseBrazeResult(
                                   "{\"message\":\"success\",\"errors\":[{\"type\":\"'plan' is not valid\","
                                   "\"input_array\":\"attributes\",\"index\":3},{\"index\":-1},{\"type\":\"x\"},"
                                   "{\"input_array\":\"events\",\"index\":0}]}"));
  EXPECT_EQ(r.message, "success");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].array, "attributes");
  EXPECT_EQ(r.errors[0].index, 3);
  EXPECT_EQ(r.errors[0].type, "'plan' is not valid");
  EXPECT_EQ(r.errors[1].array, "events");
  EXPECT_EQ(r.errors[1].type, "error");
  ASSERT_OK_AND_ASSIGN(auto fatal, ParseBrazeResult("{\"message\":\"Invalid API key\"}"));
  EXPECT_EQ(fatal.message, "Invalid API key");
  EXPECT_FALSE(ParseBrazeResult("").ok());
}

TEST(ActivateResponses, GoogleAdsJobNameAndPartialFailures) {
  ASSERT_OK_AND_ASSIGN(auto job, ParseGoogleAdsJobName("{\"resourceName\":\"customers/1/offlineUserDataJobs/2\"}"));
  EXPECT_EQ(job, "customers/1/offlineUserDataJobs/2");
  for (const char* bad : {"{}", "{\"resourceName\":\"\"}", "{\"resourceName\":7}", "{\"resourceName\":\"../x\"}",
                          "{\"resourceName\":\"/abs\"}", "{\"resourceName\":\"a b\"}", "{\"resourceName\":\"a?b\"}",
                          "{\"resourceName\":\"a\\r\\nHost: x\"}", "nope"}) {
    EXPECT_FALSE(ParseGoogleAdsJobName(bad).ok()) << bad;
  }
  ASSERT_OK_AND_ASSIGN(
      auto failures,
      ParseGoogleAdsPartialFailures(
          "{\"partialFailureError\":{\"code\":3,\"details\":[{\"errors\":[{\"message\":\"The SHA256 encoded value is "
          "malformed.\",\"location\":{\"fieldPathElements\":[{\"fieldName\":\"operations\",\"index\":1},{"
          "\"fieldName\":\"create\"}]}},{\"message\":\"neg\",\"location\":{\"fieldPathElements\":[{\"fieldName\":"
          "\"operations\",\"index\":-2}]}},{\"message\":\"other\",\"location\":{\"fieldPathElements\":[{\"fieldName\":"
          "\"x\",\"index\":0}]}}]}]}}"));
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[1], "The SHA256 encoded value is malformed.");
  ASSERT_OK_AND_ASSIGN(auto none, ParseGoogleAdsPartialFailures("{}"));
  EXPECT_TRUE(none.empty());
}

TEST(ActivateResponses, MetaInvalidEntries) {
  ASSERT_OK_AND_ASSIGN(auto r, ParseMetaInvalidEntries(
                                   "{\"num_received\":3,\"invalid_entry_samples\":{\"abc\":\"Invalid phone number\","
                                   "\"def\":5}}"));
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r["abc"], "Invalid phone number");
  EXPECT_EQ(r["def"], "invalid entry");
  ASSERT_OK_AND_ASSIGN(auto list, ParseMetaInvalidEntries("{\"invalid_entry_samples\":[\"x\"]}"));
  EXPECT_TRUE(list.empty());
}

TEST(ActivateResponses, RetryAfter) {
  const int64_t now = 1796644800'000000LL;  // Mon, 07 Dec 2026 12:00:00 GMT
  EXPECT_EQ(ParseRetryAfter("120", now), 120'000'000);
  EXPECT_EQ(ParseRetryAfter(" 1.5 ", now), 1'500'000);
  EXPECT_EQ(ParseRetryAfter("0", now), 0);
  EXPECT_EQ(ParseRetryAfter("Mon, 07 Dec 2026 12:00:30 GMT", now), 30'000'000);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now), 0) << "a date in the past: no wait";
  EXPECT_EQ(ParseRetryAfter("99999999999", now), kMaxRetryAfterUs);
  EXPECT_EQ(ParseRetryAfter("1e400", now), std::nullopt);
  for (const char* bad : {"", "-1", "inf", "nan", "12abc", "soon", "Mon, 07 Dec 2026 12:00:30", "0x10"}) {
    EXPECT_EQ(ParseRetryAfter(bad, now), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace clicklake::activate

#include "privacy/privacy.h"

#include <gtest/gtest.h>

#include "common/test_util.h"

namespace clicklake::privacy {
namespace {

using clicklake::testing::TempDir;

constexpr int64_t kRequestUs = 1714564800000000LL;  // 2024-05-01T12:00:00Z

TEST(RegulationTest, SegmentShapeGivesOneRequestPerSubjectId) {
  ASSERT_OK_AND_ASSIGN(auto rs, ParseRegulation(R"({"regulationType":"SUPPRESS_WITH_DELETE","subjectType":"USER_ID",
                                                    "subjectIds":["u1","u2"],"reason":"GDPR Art. 17"})"));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].type, RegulationType::kSuppressWithDelete);
  EXPECT_EQ(rs[0].subject.user_ids, std::vector<std::string>{"u1"});
  EXPECT_EQ(rs[1].subject.user_ids, std::vector<std::string>{"u2"});
  EXPECT_EQ(rs[0].reason, "GDPR Art. 17");
  EXPECT_EQ(rs[0].manner, "api");
  EXPECT_TRUE(rs[0].deletes());
  EXPECT_TRUE(rs[0].suppresses());
  ASSERT_OK_AND_ASSIGN(auto email, ParseRegulation(R"({"regulationType":"delete","subjectType":"EMAIL",
                                                       "subjectIds":["Ann@Example.COM"]})"));
  EXPECT_EQ(email[0].subject.emails, std::vector<std::string>{"ann@example.com"});
  EXPECT_FALSE(email[0].suppresses());
  EXPECT_EQ(email[0].mode, ErasureMode::kDelete);
  // clicklake's "mode" member: anonymize instead of delete (either shape).
  ASSERT_OK_AND_ASSIGN(auto anonymize, ParseRegulation(R"({"regulationType":"DELETE","mode":"anonymize",
                                                           "users":[{"userId":"u1"}]})"));
  EXPECT_EQ(anonymize[0].mode, ErasureMode::kAnonymize);
  ASSERT_OK_AND_ASSIGN(auto round_trip, PrivacyRequest::FromJson(anonymize[0].ToJson()));
  EXPECT_EQ(round_trip.mode, ErasureMode::kAnonymize);
}

TEST(RegulationTest, RudderStackShapeKeepsEveryIdentifierOfAUser) {
  ASSERT_OK_AND_ASSIGN(auto rs, ParseRegulation(R"({"regulationType":"suppress","destinationIds":[],
      "users":[{"userId":"u1","anonymousId":"a1","email":"X@Y.z","phone":"+1 555"},{"anonymousId":"a2"}]})"));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].subject.All(), (std::vector<std::string>{"u1", "a1", "x@y.z"}));
  EXPECT_EQ(rs[0].type, RegulationType::kSuppress);
  EXPECT_EQ(rs[1].subject.anonymous_ids, std::vector<std::string>{"a2"});
}

TEST(RegulationTest, BadBodiesAreClearErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"not json", "not valid JSON"},
      {"[1]", "must be a JSON object"},
      {R"({"subjectType":"USER_ID","subjectIds":["u"]})", "regulationType (string) is required"},
      {R"({"regulationType":"ERASE","subjectType":"USER_ID","subjectIds":["u"]})", "ERASE is not one of"},
      {R"({"regulationType":"DELETE","subjectType":"PHONE","subjectIds":["u"]})", "subjectType PHONE"},
      {R"({"regulationType":"DELETE","subjectType":"USER_ID"})", "subjectIds (array of strings) is required"},
      {R"({"regulationType":"DELETE","subjectType":"USER_ID","subjectIds":[1]})", "array of strings"},
      {R"({"regulationType":"DELETE","subjectType":"USER_ID","subjectIds":[]})", "names no subject"},
      {R"({"regulationType":"DELETE","subjectType":"USER_ID","subjectIds":[""]})", "empty id"},
      {R"({"regulationType":"DELETE","users":[{"phone":"1"}]})", "names no userId"},
      {R"({"regulationType":"DELETE","users":[{"userId":""}]})", "users[].userId is empty"},
      {R"({"regulationType":"DELETE","users":{}})", "users must be an array"},
      {R"({"regulationType":"DELETE","reason":7,"users":[{"userId":"u"}]})", "reason must be a string"},
      {R"({"regulationType":"DELETE","mode":"pseudonymize","users":[{"userId":"u"}]})", "mode must be"},
      {R"({"regulationType":"DELETE","mode":1,"users":[{"userId":"u"}]})", "mode must be"},
  };
  for (const auto& [body, message] : cases) {
    auto r = ParseRegulation(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_NE(r.status().message().find(message), std::string::npos) << body << ": " << r.status().message();
  }
  std::string many = R"({"regulationType":"DELETE","subjectType":"USER_ID","subjectIds":[)";
  for (size_t i = 0; i <= kMaxSubjectsPerRequest; i++) many += (i ? ",\"u" : "\"u") + std::to_string(i) + "\"";
  many += "]}";
  auto r = ParseRegulation(many);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("at most 5000 subjects"), std::string::npos);
}

TEST(RequestTest, JsonRoundTripAndQueueOrder) {
  TempDir dir;
  RequestQueue queue(dir.path());
  PrivacyRequest a;
  a.id = NewRequestId(kRequestUs);
  EXPECT_EQ(a.id.substr(0, 18), "rq-20240501120000-");
  a.type = RegulationType::kSuppressWithDelete;
  a.mode = ErasureMode::kAnonymize;
  a.subject = {{"u\"1"}, {"a1"}, {"ann@example.com"}};
  a.reason = "customer asked\nby mail";
  a.received_at_us = kRequestUs;
  PrivacyRequest b = a;
  b.id = "rq-20240501120001-000000000000";
  ASSERT_OK(queue.Submit(b));
  ASSERT_OK(queue.Submit(a));
  ASSERT_OK(queue.WriteJournal(a.id, "{\"phase\":1}"));
  ASSERT_OK_AND_ASSIGN(auto pending, queue.Pending());
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].id, a.id);
  EXPECT_EQ(pending[0].ToJson(), a.ToJson());
  EXPECT_EQ(pending[0].mode, ErasureMode::kAnonymize);
  ASSERT_OK_AND_ASSIGN(auto journal, queue.ReadJournal(a.id));
  EXPECT_EQ(journal.value(), "{\"phase\":1}");
  ASSERT_OK(queue.Remove(a.id));
  EXPECT_FALSE(queue.IsPending(a.id));
  ASSERT_OK_AND_ASSIGN(auto gone, queue.ReadJournal(a.id));
  EXPECT_FALSE(gone.has_value());
  EXPECT_TRUE(queue.IsPending(b.id));
}

PrivacyRequest Request(RegulationType type, Subject subject) {
  PrivacyRequest r;
  r.id = NewRequestId(kRequestUs);
  r.type = type;
  r.subject = std::move(subject);
  r.received_at_us = kRequestUs;
  return r;
}

TEST(SubjectListTest, HoldsOnlyHashesAndSurvivesReload) {
  TempDir dir;
  PrivacyRequest r = Request(RegulationType::kSuppressWithDelete, {{"u1"}, {}, {"Ann@Example.com"}});
  ASSERT_OK(SubjectList::Update(dir.path(), [&](SubjectList* l) { l->Apply(r, r.subject.All(), "key"); }));
  ASSERT_OK_AND_ASSIGN(std::string text, FileSystem::Default()->ReadFile(SubjectList::Path(dir.path())));
  EXPECT_EQ(text.find("u1\""), std::string::npos);
  EXPECT_EQ(text.find("example.com"), std::string::npos);
  EXPECT_NE(text.find(HmacHex("key", "u1")), std::string::npos);
  EXPECT_NE(text.find(HmacHex("key", "ann@example.com")), std::string::npos);
  ASSERT_OK_AND_ASSIGN(SubjectList back, SubjectList::Load(dir.path()));
  EXPECT_EQ(back.ToJson(), text);
  EXPECT_EQ(back.entries().size(), 2u);
  EXPECT_TRUE(back.entries().at(HmacHex("key", "u1")).suppressed);
  EXPECT_EQ(back.entries().at(HmacHex("key", "u1")).forgotten_until_us, kRequestUs);
  // A damaged list is an error, not an empty list (that would stop suppression).
  ASSERT_OK(FileSystem::Default()->WriteFile(SubjectList::Path(dir.path()), "[]"));
  EXPECT_EQ(SubjectList::Load(dir.path()).status().code(), StatusCode::kCorruption);
}

TEST(SubjectFilterTest, ForgottenDropsTheirEventsUpToTheRequestIncludingLateOnes) {
  SubjectList list;
  PrivacyRequest r = Request(RegulationType::kDelete, {{"u1"}, {"a1"}, {"ann@example.com"}});
  list.Apply(r, r.subject.All(), "key");
  SubjectFilter f(list, "key");
  const int64_t before = kRequestUs - 3600'000'000LL, after = kRequestUs + 3600'000'000LL;
  // In flight at the request.
  EXPECT_TRUE(f.Drops(R"({"type":"track","userId":"u1"})", before));
  // Late: received after the request, about a time before it.
  EXPECT_TRUE(f.Drops(R"({"type":"track","anonymousId":"a1","timestamp":"2024-05-01T11:00:00Z"})", after));
  EXPECT_TRUE(f.Drops(R"({"type":"identify","userId":"zz","traits":{"email":"ANN@example.com"},
                          "originalTimestamp":"2024-05-01T11:00:00Z"})", after));
  EXPECT_TRUE(f.Drops(R"({"e":"pv","duid":"a1","dtm":"1714561200000"})", after));
  // New activity after a plain DELETE is kept; other people always are.
  EXPECT_FALSE(f.Drops(R"({"type":"track","userId":"u1","timestamp":"2024-05-01T13:00:00Z"})", after));
  EXPECT_FALSE(f.Drops(R"({"type":"track","userId":"u1"})", after));
  EXPECT_FALSE(f.Drops(R"({"type":"track","userId":"u2"})", before));
  EXPECT_FALSE(f.Drops("not json", before));
  EXPECT_FALSE(SubjectFilter().Drops(R"({"userId":"u1"})", before));
}

TEST(SubjectFilterTest, SuppressionDropsEverythingUntilLifted) {
  SubjectList list;
  PrivacyRequest s = Request(RegulationType::kSuppress, {{}, {"a1"}, {}});
  list.Apply(s, s.subject.All(), "key");
  const int64_t later = kRequestUs + 86400'000'000LL;
  EXPECT_TRUE(SubjectFilter(list, "key").Drops(R"({"anonymousId":"a1","timestamp":"2024-05-09T00:00:00Z"})", later));
  EXPECT_FALSE(SubjectFilter(list, "other key").Drops(R"({"anonymousId":"a1"})", later));
  PrivacyRequest u = Request(RegulationType::kUnsuppress, {{}, {"a1"}, {}});
  list.Apply(u, u.subject.All(), "key");
  EXPECT_TRUE(list.empty());
  EXPECT_FALSE(SubjectFilter(list, "key").Drops(R"({"anonymousId":"a1"})", later));
  // Unsuppressing a forgotten person keeps the erasure's cut-off.
  PrivacyRequest d = Request(RegulationType::kSuppressWithDelete, {{"u1"}, {}, {}});
  list.Apply(d, d.subject.All(), "key");
  list.Apply(Request(RegulationType::kUnsuppress, {{"u1"}, {}, {}}), {"u1"}, "key");
  SubjectFilter f(list, "key");
  EXPECT_TRUE(f.Drops(R"({"userId":"u1","timestamp":"2024-05-01T11:00:00Z"})", later));
  EXPECT_FALSE(f.Drops(R"({"userId":"u1","timestamp":"2024-05-09T00:00:00Z"})", later));
}

TEST(ReceiptTest, CarriesTheCcpaRecordFields) {
  ErasureReceipt receipt;
  receipt.request = Request(RegulationType::kSuppressWithDelete, {{"u1"}, {}, {}});
  receipt.request.reason = "CCPA";
  receipt.subject_hmac = HmacHex("key", "u1");
  receipt.completed_at_us = kRequestUs + 5'000'000;
  receipt.tables["silver.events"] = {3, {7, 8}, 1, 2};
  receipt.tables["silver.events"].files_read = 5;
  const std::string json = receipt.ToJson();
  for (const char* expected : {"\"date\":\"2024-05-01T12:00:00.000000Z\"", "\"nature\":\"SUPPRESS_WITH_DELETE\"",
                               "\"manner\":\"cli\"", "\"reason\":\"CCPA\"", "\"date\":\"2024-05-01T12:00:05.000000Z\"",
                               "\"nature\":\"deleted and suppressed\"", "\"status\":\"completed\"",
                               "\"silver.events\":{\"rows_removed\":3,\"versions_written\":[7,8],"
                               "\"files_rewritten\":1,\"files_purged\":2,\"files_read\":5}"}) {
    EXPECT_NE(json.find(expected), std::string::npos) << expected << " in " << json;
  }
  EXPECT_EQ(json.find("\"u1\""), std::string::npos);
  EXPECT_EQ(json.find("rows_anonymized"), std::string::npos);  // a delete
  receipt.request.mode = ErasureMode::kAnonymize;
  receipt.tables["silver.events"].rows_anonymized = 4;
  const std::string anonymized = receipt.ToJson();
  for (const char* expected : {"\"mode\":\"anonymize\"", "\"nature\":\"anonymized and suppressed\"",
                               "\"silver.events\":{\"rows_removed\":3,\"rows_anonymized\":4,"}) {
    EXPECT_NE(anonymized.find(expected), std::string::npos) << expected << " in " << anonymized;
  }
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace clicklake::privacy

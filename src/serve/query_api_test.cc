// POST /api/v1/query through a real HTTP client (cpp-httplib) against the
// API server on 127.0.0.1, over a simulated lake.
#include "serve/query_api.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <fstream>

#include "common/test_util.h"
#include "delta/table.h"
#include "governance/access/testing/sim_lake.h"

namespace clicklake::serve {
namespace {

using clicklake::testing::TempDir;

// Resident memory of this process, in bytes.
int64_t ResidentBytes() {
  std::ifstream in("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * 4096;
}

class QueryApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    lake_ = dir_->path() + "/lake";
    ASSERT_OK(access::testing::BuildSimulatedLake(lake_, dir_->path(), dir_->path() + "/pii.key", 12, 40));
    const std::string policy = access::Policy::DefaultToml() + R"(
[[principals]]
name = "ana"
role = "analyst"
token_sha256 = [")" + access::Sha256Hex("tok-ana") + R"("]

[[principals]]
name = "old"
role = "analyst"
disabled = true
token_sha256 = [")" + access::Sha256Hex("tok-old") + R"("]

[[principals]]
name = "pat"
role = "finance"
password = ")" + access::MakeScramVerifier("s3cret:pw", "salt-pat") + R"("

[[principals]]
name = "gone"
role = "finance"
disabled = true
password = ")" + access::MakeScramVerifier("gone-pw", "salt-gone") + R"("
)";
    ASSERT_OK(FileSystem::Default()->WriteFile(dir_->path() + "/policy.toml", policy));
  }
  static void TearDownTestSuite() { delete dir_; }

  void Serve(int64_t timeout_ms = 20000, int64_t max_rows = 10000000) {
    access::QueryServiceOptions o;
    o.lake_dir = lake_;
    o.policy_file = dir_->path() + "/policy.toml";
    o.pii_key_file = dir_->path() + "/pii.key";
    o.limits.timeout_ms = timeout_ms;
    o.limits.max_rows = max_rows;
    service_ = std::make_unique<access::QueryService>(o);
    ApiServerOptions so;
    so.port = 0;
    ASSERT_OK_AND_ASSIGN(server_, ApiServer::Create(so));
    RegisterQueryApi(server_.get(), service_.get());
    ASSERT_OK(server_->Start());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(60, 0);
  }
  void TearDown() override {
    client_.reset();
    if (server_) server_->Stop();
  }
  httplib::Result Post(const std::string& token, const std::string& body) {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return client_->Post("/api/v1/query", headers, body, "application/json");
  }
  httplib::Result PostBasic(const std::string& user, const std::string& password, const std::string& body) {
    httplib::Headers headers = {httplib::make_basic_authentication_header(user, password)};
    return client_->Post("/api/v1/query", headers, body, "application/json");
  }
  static std::string ErrorCode(const std::string& body) {
    simdjson::dom::parser parser;
    std::string_view code;
    if (parser.parse(body)["error"]["code"].get(code)) return "<no error code in " + body + ">";
    return std::string(code);
  }

  static TempDir* dir_;
  static std::string lake_;
  std::unique_ptr<access::QueryService> service_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<httplib::Client> client_;
};
TempDir* QueryApiTest::dir_ = nullptr;
std::string QueryApiTest::lake_;

TEST_F(QueryApiTest, AuthFailures) {
  Serve();
  const std::string body = R"({"sql": "SELECT count(*) FROM silver.events"})";
  auto missing = Post("", body);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 401);
  EXPECT_EQ(ErrorCode(missing->body), "missing_token");
  auto wrong = Post("tok-nope", body);
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(ErrorCode(wrong->body), "invalid_token");
  auto revoked = Post("tok-old", body);
  ASSERT_TRUE(revoked);
  EXPECT_EQ(revoked->status, 401);
  EXPECT_EQ(ErrorCode(revoked->body), "token_revoked");
  auto ok = Post("tok-ana", body);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
}

TEST_F(QueryApiTest, PasswordLoginWithHttpBasic) {
  Serve();
  const std::string body = R"({"sql": "SELECT count(*) AS n FROM silver.events", "format": "csv"})";
  auto ok = PostBasic("pat", "s3cret:pw", body);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(ok->body.rfind("n\r\n", 0), 0u) << ok->body;
  // The user's role applies: finance may not read restricted.pii.
  auto denied = PostBasic("pat", "s3cret:pw", R"({"sql": "SELECT * FROM restricted.pii"})");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 403);
  EXPECT_EQ(ErrorCode(denied->body), "permission_denied");
  struct Case {
    std::string user, password, code;
  };
  for (const Case& c : std::vector<Case>{{"pat", "s3cret", "invalid_credentials"},
                                         {"pat", "", "invalid_credentials"},
                                         {"nobody", "s3cret:pw", "invalid_credentials"},
                                         {"ana", "", "invalid_credentials"},  // a token-only principal
                                         {"gone", "gone-pw", "user_revoked"}}) {
    auto r = PostBasic(c.user, c.password, body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << c.user;
    EXPECT_EQ(ErrorCode(r->body), c.code) << c.user << ": " << r->body;
    EXPECT_NE(r->get_header_value("WWW-Authenticate").find("Basic"), std::string::npos);
  }
  auto garbled = client_->Post("/api/v1/query", {{"Authorization", "Basic ***"}}, body, "application/json");
  ASSERT_TRUE(garbled);
  EXPECT_EQ(garbled->status, 401);
  EXPECT_EQ(ErrorCode(garbled->body), "bad_credentials");
  // The failed logins are in the audit trail.
  auto db = engine::Database::Open();
  ASSERT_OK(db.status());
  auto conn = (*db)->Connect();
  ASSERT_OK(conn.status());
  ASSERT_OK(delta::AttachTable(conn->get(), "audit", lake_ + "/system/audit", std::nullopt));
  auto logins = (*conn)->Query("SELECT count(*) FROM audit WHERE action = 'login' AND outcome = 'denied' AND "
                               "principal IN ('pat', 'nobody', 'ana', 'gone')");
  ASSERT_OK(logins.status());
  EXPECT_GE(logins->GetInt64(0, 0), 5);
}

TEST_F(QueryApiTest, JsonAndCsvResults) {
  Serve();
  auto json = Post("tok-ana", R"({"sql": "SELECT event_name, count(*) AS n FROM silver.events GROUP BY 1 ORDER BY 1"})");
  ASSERT_TRUE(json);
  ASSERT_EQ(json->status, 200) << json->body;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_FALSE(parser.parse(json->body).get(doc)) << json->body;
  int64_t row_count = 0;
  ASSERT_FALSE(doc["row_count"].get(row_count));
  simdjson::dom::array rows;
  ASSERT_FALSE(doc["rows"].get(rows));
  EXPECT_EQ(static_cast<int64_t>(rows.size()), row_count);
  EXPECT_GT(row_count, 1);
  std::string_view first;
  ASSERT_FALSE(doc["columns"].at(0)["name"].get(first));
  EXPECT_EQ(first, "event_name");
  int64_t n = 0;
  EXPECT_FALSE(rows.at(0)["n"].get(n));  // a number, not a string
  EXPECT_GT(n, 0);

  auto csv = Post("tok-ana", R"({"sql": "SELECT event_name, count(*) AS n FROM silver.events GROUP BY 1 ORDER BY 1",
                                 "format": "csv"})");
  ASSERT_TRUE(csv);
  ASSERT_EQ(csv->status, 200);
  EXPECT_EQ(csv->get_header_value("Content-Type").rfind("text/csv", 0), 0u);
  EXPECT_EQ(csv->body.rfind("event_name,n\r\n", 0), 0u) << csv->body;
  EXPECT_EQ(static_cast<int64_t>(std::count(csv->body.begin(), csv->body.end(), '\n')), row_count + 1);
}

TEST_F(QueryApiTest, RefusalsAreJsonErrors) {
  Serve();
  auto denied = Post("tok-ana", R"({"sql": "SELECT * FROM restricted.pii"})");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 403);
  EXPECT_EQ(ErrorCode(denied->body), "permission_denied");
  auto file = Post("tok-ana", R"j({"sql": "SELECT * FROM read_csv('/etc/passwd')"})j");
  ASSERT_TRUE(file);
  EXPECT_EQ(file->status, 403);
  EXPECT_EQ(file->body.find("root:"), std::string::npos);
  auto bad = Post("tok-ana", "SELECT 1");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(ErrorCode(bad->body), "bad_request");
  auto broken = Post("tok-ana", R"({"sql": "SELEKT 1"})");
  ASSERT_TRUE(broken);
  EXPECT_EQ(broken->status, 400);
  EXPECT_EQ(ErrorCode(broken->body), "query_error");
}

TEST_F(QueryApiTest, LongQueryIsInterruptedByTheTimeout) {
  Serve(/*timeout_ms=*/400);
  const auto t0 = std::chrono::steady_clock::now();
  auto slow = Post("tok-ana", R"({"sql": "SELECT count(*) FROM silver.events a, silver.events b, silver.events c, silver.events d WHERE a.event_id < b.event_id AND c.event_id <> d.event_id"})");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->status, 408) << slow->body;
  EXPECT_EQ(ErrorCode(slow->body), "timeout");
  EXPECT_LT(seconds, 30);
}

TEST_F(QueryApiTest, HugeResultIsStreamed) {
  Serve(/*timeout_ms=*/300000);
  // ~220 MB of CSV; the server must not hold it (nor the client: it only counts).
  const std::string sql =
      "SELECT e.event_id, r.range AS k, repeat('x', 400) AS pad FROM silver.events e, range(500000 // "
      "(SELECT count(*) FROM silver.events) + 1) r";
  httplib::Request req;
  req.method = "POST";
  req.path = "/api/v1/query";
  req.headers.emplace("Authorization", "Bearer tok-ana");
  req.body = R"({"format": "csv", "sql": ")" + sql + R"("})";
  req.set_header("Content-Type", "application/json");
  const int64_t rss_before = ResidentBytes();
  int64_t received = 0, lines = 0, rss_peak = rss_before, next_sample = 0;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    received += static_cast<int64_t>(n);
    lines += std::count(data, data + n, '\n');
    if (received >= next_sample) {
      rss_peak = std::max(rss_peak, ResidentBytes());
      next_sample = received + (4 << 20);
    }
    return true;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  ASSERT_TRUE(client_->send(req, res, error)) << httplib::to_string(error);
  EXPECT_EQ(res.status, 200);
  EXPECT_GT(received, 200LL << 20);
  EXPECT_GE(lines, 500001);
  // Memory grew by far less than the result's size.
  EXPECT_LT(rss_peak - rss_before, 120LL << 20) << "rss before " << rss_before << ", peak " << rss_peak;
}

}  // namespace
}  // namespace clicklake::serve

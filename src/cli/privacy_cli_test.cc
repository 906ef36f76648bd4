// `clicklake forget` killed with SIGKILL at random moments (resolution,
// deletes, Gold, purge, receipt), then run again: the rerun completes the
// erasure. And the regulations API: admin token, Segment body, receipt.
#include <gtest/gtest.h>
#include <httplib.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "cli/regulations_route.h"
#include "common/test_util.h"
#include "pipeline/erasure.h"
#include "pipeline/testing/person_lake.h"
#include "privacy/privacy.h"

extern char** environ;

namespace clicklake::cli {
namespace {

using clicklake::testing::TempDir;
using namespace clicklake::pipeline::testing;

class PrivacyCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Config log_config;
    log_config.Set("lake.dir", base_.path());
    log_config.Set("log.partitions", "1");
    ASSERT_OK_AND_ASSIGN(auto log, log::OpenEventLog(log_config));
    options_.lake_dir = base_.path();
    options_.compaction = false;
    options_.config.Set("lake.dir", base_.path());
    options_.config.Set("privacy.key_file", key_file_);
    BuildPersonLake(options_, log.get());
    ASSERT_OK(log->Close());
    ASSERT_OK_AND_ASSIGN(db_, engine::Database::Open());
    ASSERT_OK_AND_ASSIGN(conn_, db_->Connect());
    ASSERT_OK(delta::RegisterLakeViews(conn_.get(), base_.path(), std::nullopt));
    auto r = conn_->Query("SELECT DISTINCT event_id FROM silver.events t WHERE " + MentionsPerson({}));
    ASSERT_OK(r.status());
    for (size_t i = 0; i < r->row_count(); i++) ids_.push_back(r->GetString(i, 0));
  }

  std::string CopyLake(const std::string& name) {
    const std::string to = trials_.Sub(name);
    std::filesystem::copy(base_.path(), to, std::filesystem::copy_options::recursive);
    return to;
  }

  pid_t SpawnForget(const std::string& lake) {
    std::vector<std::string> args = {CLICKLAKE_BIN, "forget",     "--lake",   lake, "--set",
                                     "privacy.key_file=" + key_file_, "--user", kPersonUser, "--log-level", "warn"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    EXPECT_EQ(posix_spawn(&pid, CLICKLAKE_BIN, &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    return pid;
  }
  int Wait(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  }

  // The invariants after a completed forget.
  void ExpectForgotten(const std::string& lake, const std::string& what) {
    for (const auto& t : PersonalTables(lake)) {
      EXPECT_EQ(PhysicalHits(conn_.get(), lake + "/" + t, ids_), 0) << what << ": " << t;
    }
    EXPECT_TRUE(!std::filesystem::exists(privacy::RequestQueue(lake).dir()) ||
                std::filesystem::is_empty(privacy::RequestQueue(lake).dir()))
        << what;
    auto conn = db_->Connect();
    ASSERT_OK(conn.status());
    ASSERT_OK(delta::RegisterLakeViews(conn->get(), lake, std::nullopt));
    auto r = (*conn)->Query(engine::QualifySchemaReferences(
        "SELECT count(*), count(DISTINCT request_id), count(*) FILTER (WHERE status = 'completed'), "
        "(SELECT round(sum(revenue), 2) FROM gold.fact_session_daily) = (SELECT round(sum(revenue), 2) FROM "
        "silver.events) FROM system.erasures",
        "system", "memory"));
    ASSERT_OK(r.status());
    EXPECT_GE(r->GetInt64(0, 0), 1) << what;
    EXPECT_EQ(r->GetInt64(0, 0), r->GetInt64(0, 1)) << what << ": a request recorded twice";
    EXPECT_EQ(r->GetInt64(0, 0), r->GetInt64(0, 2)) << what;
    EXPECT_EQ(r->GetString(0, 3), "true") << what << ": revenue does not reconcile";
    // Everyone else is still there.
    auto others = (*conn)->Query("SELECT count(*) FROM silver.events WHERE user_key LIKE 'user-%'");
    ASSERT_OK(others.status());
    EXPECT_EQ(others->GetInt64(0, 0), 40) << what;
  }

  TempDir base_, trials_, key_dir_;
  std::string key_file_ = key_dir_.Sub("pii.key");
  pipeline::PipelineOptions options_;
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<engine::Connection> conn_;
  std::vector<std::string> ids_;
};

TEST_F(PrivacyCliTest, ForgetKilledAtRandomMomentsCompletesOnRerun) {
  // An uninterrupted run, for its duration.
  const std::string clean = CopyLake("clean");
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(Wait(SpawnForget(clean)), 0);
  const int64_t full_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  ExpectForgotten(clean, "uninterrupted");
  {
    // The receipt's hash is in the audit chain.
    auto conn = db_->Connect();
    ASSERT_OK(conn.status());
    ASSERT_OK(delta::RegisterLakeViews(conn->get(), clean, std::nullopt));
    auto r = (*conn)->Query(engine::QualifySchemaReferences(
        "SELECT count(*) FROM system.audit a JOIN system.erasures e ON a.action = 'erasure_receipt' AND "
        "json_extract_string(a.detail, '$.request_id') = e.request_id AND "
        "json_extract_string(a.detail, '$.receipt_sha256') = e.receipt_sha256",
        "system", "memory"));
    ASSERT_OK(r.status());
    EXPECT_EQ(r->GetInt64(0, 0), 1);
  }

  uint32_t seed = std::random_device{}();
  if (const char* s = std::getenv("CRASH_SEED")) seed = static_cast<uint32_t>(std::stoul(s));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> when(0, full_ms);
  int killed = 0;
  for (int trial = 0; trial < 4; trial++) {
    const std::string lake = CopyLake("trial" + std::to_string(trial));
    const int64_t delay_ms = when(rng);
    const std::string what = "seed " + std::to_string(seed) + " trial " + std::to_string(trial) + " killed after " +
                             std::to_string(delay_ms) + " of " + std::to_string(full_ms) + " ms";
    pid_t pid = SpawnForget(lake);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    const int status = Wait(pid);
    killed += WIFSIGNALED(status);
    // The rerun completes it (and the first run's queued request with it).
    ASSERT_EQ(Wait(SpawnForget(lake)), 0) << what;
    ExpectForgotten(lake, what);
  }
  EXPECT_GE(killed, 2) << "most runs should have been killed mid-way (seed " << seed << ")";
}

TEST_F(PrivacyCliTest, RegulationsApiIsAdminOnlyAndQueuesRequests) {
  const std::string lake = CopyLake("api");
  Config config;
  config.Set("lake.dir", lake);
  config.Set("privacy.key_file", key_file_);
  serve::ApiServerOptions options;
  options.port = 0;
  {
    // No admin token configured: the route refuses everyone.
    ASSERT_OK_AND_ASSIGN(auto server, serve::ApiServer::Create(options));
    ASSERT_OK(RegisterRegulationsRoutes(server.get(), config));
    ASSERT_OK(server->Start());
    httplib::Client client("127.0.0.1", server->port());
    auto res = client.Post("/api/v1/regulations", {{"Authorization", "Bearer x"}}, "{}", "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 403);
    EXPECT_NE(res->body.find("\"code\":\"forbidden\""), std::string::npos);
    server->Stop();
  }
  config.Set("privacy.admin_token_sha256", privacy::Sha256Hex("s3cret"));
  ASSERT_OK_AND_ASSIGN(auto server, serve::ApiServer::Create(options));
  ASSERT_OK(RegisterRegulationsRoutes(server.get(), config));
  ASSERT_OK(server->Start());
  httplib::Client client("127.0.0.1", server->port());
  const std::string body = R"({"regulationType":"SUPPRESS_WITH_DELETE","subjectType":"USER_ID","subjectIds":["person-zqx"]})";
  auto res = client.Post("/api/v1/regulations", {{"Authorization", "Bearer wrong"}}, body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  res = client.Post("/api/v1/regulations", {{"Authorization", "Bearer s3cret"}}, R"({"regulationType":"ERASE"})",
                    "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(res->body.find("\"code\":\"bad_request\""), std::string::npos);
  EXPECT_NE(res->body.find("ERASE is not one of"), std::string::npos);
  res = client.Post("/api/v1/regulations", {{"Authorization", "Bearer s3cret"}}, body, "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const size_t at = res->body.find("\"id\":\"");
  ASSERT_NE(at, std::string::npos) << res->body;
  const std::string id = res->body.substr(at + 6, res->body.find('"', at + 6) - at - 6);
  EXPECT_NE(res->body.find("\"status\":\"queued\""), std::string::npos);
  auto pending = client.Get("/api/v1/regulations/" + id, {{"Authorization", "Bearer s3cret"}});
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->body, "{\"id\":\"" + id + "\",\"status\":\"pending\"}");
  // What a processor does between batches (none runs here).
  ASSERT_OK(pipeline::ExecutePrivacyRequestsStandalone(config).status());
  auto done = client.Get("/api/v1/regulations/" + id, {{"Authorization", "Bearer s3cret"}});
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, 200);
  EXPECT_NE(done->body.find("\"nature\":\"deleted and suppressed\""), std::string::npos) << done->body;
  EXPECT_NE(done->body.find("\"manner\":\"api\""), std::string::npos) << done->body;
  EXPECT_EQ(client.Get("/api/v1/regulations/rq-0", {{"Authorization", "Bearer s3cret"}})->status, 404);
  server->Stop();
  ExpectForgotten(lake, "api");
}

}  // namespace
}  // namespace clicklake::cli

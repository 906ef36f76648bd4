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
#include <fstream>
#include <sstream>
#include <filesystem>
#include <random>
#include <thread>

#include "cli/regulations_route.h"
#include "governance/access/access.h"
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

  // Runs `clicklake args...` to completion; its stdout in *out.
  int RunCli(const std::vector<std::string>& cli_args, std::string* out) {
    std::vector<std::string> args = {CLICKLAKE_BIN};
    args.insert(args.end(), cli_args.begin(), cli_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string out_file = trials_.Sub("cli.out");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = -1;
    EXPECT_EQ(posix_spawn(&pid, CLICKLAKE_BIN, &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    const int status = Wait(pid);
    std::ifstream in(out_file);
    std::stringstream text;
    text << in.rdbuf();
    *out = text.str();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  // The audit records of `lake` with this action: (principal, role, outcome, detail), in order.
  std::vector<std::vector<std::string>> AuditRecords(const std::string& lake, const std::string& action) {
    std::vector<std::vector<std::string>> out;
    auto conn = db_->Connect();
    EXPECT_OK(conn.status());
    if (!conn.ok()) return out;
    EXPECT_OK(delta::RegisterLakeViews(conn->get(), lake, std::nullopt));
    auto r = (*conn)->Query(engine::QualifySchemaReferences(
        "SELECT principal, role, outcome, coalesce(detail, '') FROM system.audit WHERE action = " +
            engine::QuoteLiteral(action) + " ORDER BY seq",
        "system", "memory"));
    EXPECT_OK(r.status());
    for (size_t i = 0; r.ok() && i < r->row_count(); i++) {
      out.push_back({r->GetString(i, 0), r->GetString(i, 1), r->GetString(i, 2), r->GetString(i, 3)});
    }
    return out;
  }
  int64_t SilverRows(const std::string& lake) {
    auto conn = db_->Connect();
    EXPECT_OK(conn.status());
    if (!conn.ok()) return -1;
    EXPECT_OK(delta::RegisterLakeViews(conn->get(), lake, std::nullopt));
    auto r = (*conn)->Query("SELECT count(*) FROM silver.events");
    EXPECT_OK(r.status());
    return r.ok() ? r->GetInt64(0, 0) : -1;
  }
  void ExpectAuditChainVerifies(const std::string& lake) {
    access::AuditLog audit(lake, db_.get());
    ASSERT_OK_AND_ASSIGN(access::AuditVerifyReport report, audit.Verify());
    EXPECT_TRUE(report.ok) << report.problem << " at " << report.first_bad_seq;
    EXPECT_GE(report.records, 1);
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

TEST_F(PrivacyCliTest, RegulationsApiAuthorizesThroughTheAccessPolicyAndAudits) {
  const std::string lake = CopyLake("policy");
  const std::string policy_file = trials_.Sub("policy.toml");
  {
    std::ofstream policy(policy_file);
    policy << "[[principals]]\nname = \"ada\"\nrole = \"admin\"\ntoken_sha256 = [\"" << privacy::Sha256Hex("ada-token")
           << "\"]\n[[principals]]\nname = \"ann\"\nrole = \"analyst\"\ntoken_sha256 = [\""
           << privacy::Sha256Hex("ann-token") << "\"]\n[[principals]]\nname = \"old\"\nrole = \"admin\"\n"
           << "disabled = true\ntoken_sha256 = [\"" << privacy::Sha256Hex("old-token") << "\"]\n";
  }
  Config config;
  config.Set("lake.dir", lake);
  config.Set("privacy.key_file", key_file_);
  config.Set("access.policy_file", policy_file);
  access::QueryService access(access::QueryServiceOptions::FromConfig(config, ""));
  serve::ApiServerOptions options;
  options.port = 0;
  ASSERT_OK_AND_ASSIGN(auto server, serve::ApiServer::Create(options));
  ASSERT_OK(RegisterRegulationsRoutes(server.get(), config, &access));
  ASSERT_OK(server->Start());
  httplib::Client client("127.0.0.1", server->port());
  const std::string body =
      R"({"regulationType":"DELETE","mode":"anonymize","subjectType":"USER_ID","subjectIds":["person-zqx"]})";
  auto post = [&](const std::string& token) {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return client.Post("/api/v1/regulations", headers, body, "application/json");
  };
  auto res = post("");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401) << res->body;
  res = post("nobody-token");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401) << res->body;
  res = post("old-token");  // a revoked admin
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401) << res->body;
  res = post("ann-token");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403) << res->body;
  EXPECT_NE(res->body.find("admin only"), std::string::npos) << res->body;
  EXPECT_EQ(client.Get("/api/v1/regulations/rq-0", {{"Authorization", "Bearer ann-token"}})->status, 403);
  EXPECT_TRUE(privacy::RequestQueue(lake).Pending()->empty()) << "a refused call queued a request";
  res = post("ada-token");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const size_t at = res->body.find("\"id\":\"");
  ASSERT_NE(at, std::string::npos) << res->body;
  const std::string id = res->body.substr(at + 6, res->body.find('"', at + 6) - at - 6);
  ASSERT_EQ(client.Get("/api/v1/regulations/" + id, {{"Authorization", "Bearer ada-token"}})->status, 200);
  server->Stop();
  // Audited: the refusal and the accepted request (its id), never the subject.
  const auto records = AuditRecords(lake, "regulation");
  ASSERT_EQ(records.size(), 3u);  // ann's POST and GET refused, ada's POST
  EXPECT_EQ(records[0], (std::vector<std::string>{"ann", "analyst", "denied",
                                                  R"({"method":"POST","path":"/api/v1/regulations"})"}));
  EXPECT_EQ(records[1], (std::vector<std::string>{"ann", "analyst", "denied",
                                                  R"({"method":"GET","path":"/api/v1/regulations/rq-0"})"}));
  EXPECT_EQ(records[2][0], "ada");
  EXPECT_EQ(records[2][1], "admin");
  EXPECT_EQ(records[2][2], "ok");
  EXPECT_NE(records[2][3].find(id), std::string::npos) << records[2][3];
  EXPECT_NE(records[2][3].find("\"regulationType\":\"DELETE\""), std::string::npos) << records[2][3];
  EXPECT_EQ(PhysicalHits(conn_.get(), lake + "/system/audit", {}), 0) << "the subject id reached the audit chain";
  ExpectAuditChainVerifies(lake);
  const int64_t rows_before = SilverRows(lake);
  ASSERT_OK(pipeline::ExecutePrivacyRequestsStandalone(config).status());
  ExpectForgotten(lake, "policy admin");
  // The API's "mode":"anonymize": the rows stay, unlinked.
  EXPECT_EQ(SilverRows(lake), rows_before);
  ASSERT_OK_AND_ASSIGN(std::string receipt, pipeline::ReadReceipt(lake, id));
  EXPECT_NE(receipt.find("\"mode\":\"anonymize\""), std::string::npos) << receipt;
}

TEST_F(PrivacyCliTest, ForgetModeAnonymizeKeepsTheRows) {
  const std::string lake = CopyLake("anonymize");
  const std::vector<std::string> common = {"--lake", lake, "--set", "privacy.key_file=" + key_file_, "--log-level",
                                           "warn", "--user", kPersonUser};
  std::vector<std::string> args = {"forget", "--mode", "pseudonymize"};
  args.insert(args.end(), common.begin(), common.end());
  std::string out;
  EXPECT_EQ(RunCli(args, &out), 2);
  const int64_t rows_before = SilverRows(lake);
  args = {"forget", "--mode", "anonymize"};
  args.insert(args.end(), common.begin(), common.end());
  ASSERT_EQ(RunCli(args, &out), 0) << out;
  EXPECT_NE(out.find("\"mode\":\"anonymize\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"nature\":\"anonymized\""), std::string::npos) << out;
  ExpectForgotten(lake, "anonymize");
  EXPECT_EQ(SilverRows(lake), rows_before);
}

TEST_F(PrivacyCliTest, PiiDetokenizeIsAuditedWithoutTheValue) {
  // A lake whose traits.name is tokenized in Silver (the vault holds the value).
  TempDir lake_dir;
  const std::string lake = lake_dir.path();
  Config log_config;
  log_config.Set("lake.dir", lake);
  log_config.Set("log.partitions", "1");
  ASSERT_OK_AND_ASSIGN(auto log, log::OpenEventLog(log_config));
  pipeline::PipelineOptions options = options_;
  options.lake_dir = lake;
  options.config.Set("lake.dir", lake);
  options.config.Set("privacy.tokenize_fields", "traits.name");
  AppendSegment(log.get(),
                {R"({"type":"identify","userId":"user-1","messageId":"t1","timestamp":"2024-05-01T09:00:00Z",
                    "traits":{"name":"Olga Onevalue"}})"},
                kDay1Us);
  {
    ASSERT_OK_AND_ASSIGN(auto runner, pipeline::MicroBatchRunner::Create(options, log.get()));
    ASSERT_OK(runner->Drain());
  }
  ASSERT_OK(log->Close());
  auto conn = db_->Connect();
  ASSERT_OK(conn.status());
  ASSERT_OK(delta::RegisterLakeViews(conn->get(), lake, std::nullopt));
  ASSERT_OK_AND_ASSIGN(auto r, (*conn)->Query("SELECT json_extract_string(properties, '$.name') FROM silver.events"));
  ASSERT_EQ(r.row_count(), 1u);
  const std::string token = r.GetString(0, 0);
  ASSERT_EQ(token.substr(0, 4), "tok_");

  const std::vector<std::string> common = {"--lake", lake, "--set", "privacy.key_file=" + key_file_, "--log-level",
                                           "warn"};
  std::vector<std::string> args = {"pii", "detokenize", token};
  args.insert(args.end(), common.begin(), common.end());
  std::string out;
  ASSERT_EQ(RunCli(args, &out), 0) << out;
  EXPECT_NE(out.find("\"value\":\"Olga Onevalue\""), std::string::npos) << out;
  args = {"pii", "detokenize", token, "tok_unknown"};
  args.insert(args.end(), common.begin(), common.end());
  EXPECT_EQ(RunCli(args, &out), 1) << out;
  EXPECT_NE(out.find("\"token\":\"tok_unknown\",\"found\":false"), std::string::npos) << out;

  const auto records = AuditRecords(lake, "pii_detokenize");
  ASSERT_EQ(records.size(), 2u);
  const char* user = std::getenv("USER");
  EXPECT_EQ(records[0][0], std::string("local:") + (user ? user : "operator"));
  EXPECT_EQ(records[0][1], "admin");
  EXPECT_EQ(records[0][2], "ok");
  EXPECT_EQ(records[0][3], "{\"tokens\":[\"" + token + "\"],\"found\":1}");
  EXPECT_EQ(records[1][2], "not_found");
  EXPECT_EQ(records[1][3], "{\"tokens\":[\"" + token + "\",\"tok_unknown\"],\"found\":1}");
  // The raw value is nowhere in the chain's files.
  ASSERT_OK_AND_ASSIGN(auto hits, (*conn)->Query("SELECT count(*) FROM read_parquet(" +
                                                 engine::QuoteLiteral(lake + "/system/audit/**/*.parquet") +
                                                 ", union_by_name = true) t WHERE CAST(t AS VARCHAR) ILIKE '%onevalue%'"));
  EXPECT_EQ(hits.GetInt64(0, 0), 0);
  ExpectAuditChainVerifies(lake);
}

}  // namespace
}  // namespace clicklake::cli

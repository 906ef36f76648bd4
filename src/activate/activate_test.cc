// Reverse-ETL syncs against local fake destinations (cpp-httplib on 127.0.0.1)
// that check every request against the documented shape and inject 429s,
// 500s, timeouts and partial failures.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <simdjson.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "activate/activate.h"
#include "activate/destinations.h"
#include "activate/fake_destination.h"
#include "common/test_util.h"
#include "delta/table.h"
#include "engine/engine.h"

namespace clicklake::activate {
namespace {

using testing::FakeServer;
using testing::RecordingClock;
using testing::Request;
using testing::Parse;
using testing::Str;

class ActivateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, engine::Database::Open());
    ASSERT_OK_AND_ASSIGN(conn_, db_->Connect());
  }

  std::string lake() const { return dir_.Sub("lake"); }

  // Replaces the rows of gold.user_traits (a stand-in for a Gold table):
  // user_key, email, phone, plan, checkouts_7d.
  struct User {
    std::string key, email, phone, plan;
    int64_t checkouts;
  };
  void WriteGold(const std::vector<User>& users) {
    delta::Schema s;
    s.fields = {{"user_key", "string"}, {"email", "string"}, {"phone", "string"}, {"plan", "string"},
                {"checkouts_7d", "long"}};
    ASSERT_OK_AND_ASSIGN(auto t, delta::Table::OpenOrCreate(lake() + "/gold/user_traits", s, {}, {}, db_.get()));
    auto txn = t->StartTransaction();
    ASSERT_OK_AND_ASSIGN(std::string scan, delta::ScanSql(t->path(), txn->read_snapshot(),
                                                          delta::ScanOptions{{}, /*row_address=*/true}));
    ASSERT_OK(txn->DeleteRows(conn_.get(), "SELECT _delta_file, _delta_row FROM (" + scan + ")").status());
    std::string values;
    for (const auto& u : users) {
      values += (values.empty() ? "" : ", ") + std::string("(") + engine::QuoteLiteral(u.key) + ", " +
                engine::QuoteLiteral(u.email) + ", " + engine::QuoteLiteral(u.phone) + ", " +
                engine::QuoteLiteral(u.plan) + ", " + std::to_string(u.checkouts) + "::BIGINT)";
    }
    if (!users.empty()) {
      ASSERT_OK(txn->WriteFiles(conn_.get(), "SELECT * FROM (VALUES " + values +
                                                 ") t(user_key, email, phone, plan, checkouts_7d)")
                    .status());
    }
    ASSERT_OK(txn->Commit().status());
  }

  // A config with one sync; `destination` is the TOML body of its destination table.
  Config MakeConfig(const std::string& sync_toml) {
    auto c = Config::Parse("[lake]\ndir = \"" + lake() + "\"\n\n" + sync_toml);
    EXPECT_OK(c.status());
    return c.ok() ? *c : Config();
  }

  // Rows of the sync's snapshot: key → pending_op ("" when synced).
  std::map<std::string, std::string> Snapshot(const std::string& sync) {
    std::map<std::string, std::string> out;
    auto c = db_->Connect();
    EXPECT_OK(c.status());
    EXPECT_OK(delta::AttachTable(c->get(), "snap", lake() + "/activate/" + sync + "_snapshot", std::nullopt));
    auto r = (*c)->Query("SELECT sync_key, coalesce(pending_op, '') FROM snap ORDER BY 1");
    EXPECT_OK(r.status());
    if (!r.ok()) return out;
    for (size_t i = 0; i < r->row_count(); i++) out[r->GetString(i, 0)] = r->GetString(i, 1);
    return out;
  }

  engine::QueryResult SyncsRows() {
    auto c = db_->Connect();
    EXPECT_OK(c.status());
    EXPECT_OK(delta::AttachTable(c->get(), "syncs", lake() + "/system/syncs", std::nullopt));
    auto r = (*c)->Query("SELECT run_id, status, added, changed, removed, failed, resumed, coalesce(error_summary, '') "
                         "FROM syncs ORDER BY finished_at");
    EXPECT_OK(r.status());
    return r.ok() ? *r : engine::QueryResult();
  }

  clicklake::testing::TempDir dir_;
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<engine::Connection> conn_;
};

constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

std::string WebhookSync(const std::string& url, const std::string& mode, int batch_size) {
  return "[[activate.syncs]]\nname = \"intent\"\nmodel = \"SELECT user_key, plan, checkouts_7d FROM gold.user_traits "
         "WHERE checkouts_7d >= 2\"\nprimary_key = \"user_key\"\nmode = \"" + mode +
         "\"\ntrigger = \"manual\"\n[activate.syncs.destination]\ntype = \"webhook\"\nbase_url = \"" + url +
         "\"\npath = \"/hooks/clicklake\"\nsecret = \"" + std::string(kSecret) + "\"\nbatch_size = " +
         std::to_string(batch_size) + "\nrate_limit = 1000\nbackoff_base = \"1ms\"\ntimeout = \"2s\"\nconcurrency = 1\n";
}

// The receiver's view: key → fields JSON, applying each accepted webhook
// request in order; checks each request's headers, signature and shape.
struct WebhookReceiver {
  std::map<std::string, std::string> state;
  std::set<std::string> ids;
  std::vector<std::string> ops;  // "upsert u1", "delete u3" in order
  void Apply(const Request& r, size_t max_batch) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/hooks/clicklake");
    EXPECT_EQ(r.Header("Content-Type"), "application/json");
    const std::string id = r.Header("webhook-id"), ts = r.Header("webhook-timestamp");
    ASSERT_FALSE(id.empty());
    ASSERT_FALSE(ts.empty());
    EXPECT_NEAR(std::stoll(ts), SystemClock()->NowMicros() / 1'000'000, 300);
    auto expected = WebhookSignature(kSecret, id, std::stoll(ts), r.body);
    ASSERT_OK(expected.status());
    EXPECT_EQ(r.Header("webhook-signature"), *expected);
    if (!ids.insert(id).second) return;  // a redelivery: receivers dedupe by webhook-id
    simdjson::dom::parser p;
    auto doc = Parse(p, r.body);
    EXPECT_EQ(Str(doc["type"]), "clicklake.sync.batch");
    EXPECT_EQ(Str(doc["sync"]), "intent");
    simdjson::dom::array records;
    ASSERT_FALSE(doc["records"].get(records));
    EXPECT_GE(records.size(), 1u);
    EXPECT_LE(records.size(), max_batch);
    for (auto rec : records) {
      const std::string op = Str(rec["op"]), key = Str(rec["key"]);
      ops.push_back(op + " " + key);
      if (op == "delete" || op == "remove") {
        EXPECT_TRUE(rec["fields"].error()) << "a delete carries no fields";
        state.erase(key);
      } else {
        simdjson::dom::object fields;
        ASSERT_FALSE(rec["fields"].get(fields)) << r.body;
        state[key] = simdjson::minify(rec["fields"]);
      }
    }
  }
};

TEST(ActivateSignature, StandardWebhooksVector) {
  // The Standard Webhooks specification's example.
  auto sig = WebhookSignature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                              "{\"test\": 2432232314}");
  ASSERT_OK(sig.status());
  EXPECT_EQ(*sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  EXPECT_STATUS(WebhookSignature("not-a-secret", "id", 1, "{}").status(), kInvalidArgument);
  EXPECT_STATUS(WebhookSignature("whsec_!!!!", "id", 1, "{}").status(), kInvalidArgument);
}

TEST(ActivateConfig, RefusesMalformedSyncs) {
  auto parse = [](const std::string& body) {
    auto c = Config::Parse(body);
    EXPECT_OK(c.status());
    return SyncsFromConfig(*c).status();
  };
  const std::string head = "[[activate.syncs]]\nname = \"s\"\nmodel = \"SELECT 1 AS k\"\nprimary_key = \"k\"\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"mode = \"audience\"\n[activate.syncs.destination]\ntype = \"hubspot\"\nbase_url = \"http://x\"\ntoken = \"t\"\n",
       "HubSpot supports modes upsert, update and mirror"},
      {"[activate.syncs.destination]\ntype = \"webhook\"\nbase_url = \"http://x\"\n", "secret"},
      {"mode = \"audience\"\n[activate.syncs.destination]\ntype = \"meta\"\nbase_url = \"http://x\"\ntoken = "
       "\"t\"\naudience_id = \"1\"\n[activate.syncs.mapping]\nname = \"k\"\n",
       "only email and phone"},
      {"trigger = \"sometimes\"\n[activate.syncs.destination]\ntype = \"webhook\"\nbase_url = \"http://x\"\n"
       "secret = \"whsec_AAAA\"\n",
       "trigger"},
      {"[activate.syncs.destination]\ntype = \"braze\"\nbase_url = \"http://x\"\ntoken = \"t\"\nbatch_size = 200\n",
       "at most 75"},
      {"[activate.syncs.destination]\ntype = \"webhook\"\nbase_url = \"http://x\"\nsecret = \"whsec_AAAA\"\n"
       "rate_limit = \"fast\"\n",
       "rate_limit"},
      {"[activate.syncs.destination]\ntype = \"webhook\"\nbase_url = \"ftp://x\"\nsecret = \"whsec_AAAA\"\n",
       "base_url"},
  };
  for (const auto& [body, expected] : cases) {
    Status s = parse(head + body);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << body;
    EXPECT_NE(s.message().find(expected), std::string::npos) << s.message();
  }
  auto ok = Config::Parse(head + "trigger = \"15m\"\n[activate.syncs.destination]\ntype = \"webhook\"\nbase_url = "
                                 "\"http://x\"\nsecret = \"whsec_AAAA\"\n");
  ASSERT_OK(ok.status());
  ASSERT_OK_AND_ASSIGN(auto syncs, SyncsFromConfig(*ok));
  ASSERT_EQ(syncs.size(), 1u);
  EXPECT_EQ(syncs[0].interval_us, 15 * 60 * 1'000'000LL);
}

// Three runs over changing Gold data send exactly the adds, changes and removes.
TEST_F(ActivateTest, ThreeRunsMirrorSendExactlyTheDiff) {
  FakeServer server;
  Config config = MakeConfig(WebhookSync(server.url(), "mirror", 2));
  WebhookReceiver receiver;
  auto run = [&](int64_t add, int64_t change, int64_t remove) {
    server.Clear();
    receiver.ops.clear();
    ASSERT_OK_AND_ASSIGN(SyncRunResult r, RunSync(config, "intent"));
    EXPECT_EQ(r.status, "success") << r.error_summary;
    EXPECT_EQ(r.added, add);
    EXPECT_EQ(r.changed, change);
    EXPECT_EQ(r.removed, remove);
    EXPECT_EQ(r.failed, 0);
    for (const auto& req : server.all()) receiver.Apply(req, 2);
    EXPECT_EQ(static_cast<int64_t>(server.all().size()), (add + change + 1) / 2 + (remove + 1) / 2);
  };
  WriteGold({{"u1", "", "", "free", 2}, {"u2", "", "", "pro", 3}, {"u3", "", "", "free", 5},
             {"u4", "", "", "free", 0}, {"u5", "", "", "pro", 4}});
  run(4, 0, 0);
  EXPECT_EQ(receiver.state.size(), 4u);
  EXPECT_EQ(receiver.state["u2"], "{\"plan\":\"pro\",\"checkouts_7d\":3}");
  // u2 changes plan, u3 drops below the threshold, u4 enters, u6 is new; u1 and u5 unchanged.
  WriteGold({{"u1", "", "", "free", 2}, {"u2", "", "", "team", 3}, {"u3", "", "", "free", 1},
             {"u4", "", "", "free", 2}, {"u5", "", "", "pro", 4}, {"u6", "", "", "free", 9}});
  run(2, 1, 1);
  std::multiset<std::string> ops(receiver.ops.begin(), receiver.ops.end());
  EXPECT_EQ(ops, (std::multiset<std::string>{"upsert u2", "upsert u4", "upsert u6", "delete u3"}));
  // Nothing changes: nothing is sent.
  run(0, 0, 0);
  EXPECT_TRUE(server.all().empty());
  // Third change: u1 and u5 leave, u5 comes back changed... u5 changes, u1 leaves.
  WriteGold({{"u2", "", "", "team", 3}, {"u4", "", "", "free", 2}, {"u5", "", "", "pro", 6},
             {"u6", "", "", "free", 9}});
  run(0, 1, 1);
  ops = std::multiset<std::string>(receiver.ops.begin(), receiver.ops.end());
  EXPECT_EQ(ops, (std::multiset<std::string>{"upsert u5", "delete u1"}));
  EXPECT_EQ(receiver.state, (std::map<std::string, std::string>{
                                {"u2", "{\"plan\":\"team\",\"checkouts_7d\":3}"},
                                {"u4", "{\"plan\":\"free\",\"checkouts_7d\":2}"},
                                {"u5", "{\"plan\":\"pro\",\"checkouts_7d\":6}"},
                                {"u6", "{\"plan\":\"free\",\"checkouts_7d\":9}"}}));
  EXPECT_EQ(Snapshot("intent"), (std::map<std::string, std::string>{{"u2", ""}, {"u4", ""}, {"u5", ""}, {"u6", ""}}));
  auto runs = SyncsRows();
  ASSERT_EQ(runs.row_count(), 4u);
  EXPECT_EQ(runs.GetString(1, 2) + "/" + runs.GetString(1, 3) + "/" + runs.GetString(1, 4), "2/1/1");
  for (size_t i = 0; i < 4; i++) EXPECT_EQ(runs.GetInt64(i, 0), static_cast<int64_t>(i));
}

TEST_F(ActivateTest, UpsertModeNeverDeletesAndDryRunSendsNothing) {
  FakeServer server;
  Config config = MakeConfig(WebhookSync(server.url(), "upsert", 100));
  WriteGold({{"u1", "", "", "free", 2}, {"u2", "", "", "pro", 3}, {"u3", "", "", "pro", 0}});
  SyncRunOptions dry;
  dry.dry_run = true;
  ASSERT_OK_AND_ASSIGN(SyncRunResult planned, RunSync(config, "intent", dry));
  EXPECT_EQ(planned.status, "dry_run");
  EXPECT_EQ(planned.model_rows, 2);
  EXPECT_EQ(planned.added, 2);
  ASSERT_EQ(planned.sample.size(), 2u);
  EXPECT_EQ(planned.sample[0], "add u1 {\"plan\":\"free\",\"checkouts_7d\":2}");
  EXPECT_TRUE(server.all().empty());
  EXPECT_FALSE(FileSystem::Default()->Exists(lake() + "/activate/intent_snapshot"));
  ASSERT_OK_AND_ASSIGN(SyncRunResult first, RunSync(config, "intent"));
  EXPECT_EQ(first.added, 2);
  WriteGold({{"u2", "", "", "pro", 3}});
  server.Clear();
  ASSERT_OK_AND_ASSIGN(SyncRunResult second, RunSync(config, "intent"));
  EXPECT_EQ(second.removed, 0);
  EXPECT_TRUE(server.all().empty()) << "upsert mode does not delete";
  EXPECT_EQ(Snapshot("intent"), (std::map<std::string, std::string>{{"u2", ""}}));
  // u1 comes back: it is sent again (the snapshot forgot it when it left).
  WriteGold({{"u1", "", "", "free", 2}, {"u2", "", "", "pro", 3}});
  ASSERT_OK_AND_ASSIGN(SyncRunResult third, RunSync(config, "intent"));
  EXPECT_EQ(third.added, 1);
}

TEST_F(ActivateTest, ModelErrorsAreClearAndRecorded) {
  FakeServer server;
  WriteGold({{"u1", "", "", "free", 2}, {"u1", "", "", "pro", 3}});
  Config config = MakeConfig(WebhookSync(server.url(), "upsert", 10));
  auto r = RunSync(config, "intent");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("primary key 'user_key' is not unique"), std::string::npos)
      << r.status().message();
  EXPECT_TRUE(server.all().empty());
  auto runs = SyncsRows();
  ASSERT_EQ(runs.row_count(), 1u);
  EXPECT_EQ(runs.GetString(0, 1), "failed");
  EXPECT_EQ(RunSync(config, "nope").status().code(), StatusCode::kNotFound);
}

// HubSpot: ≤100 inputs per call, Bearer token, idProperty; 429 + Retry-After,
// 500, then a 207 multi-status with one refused input, which stays pending
// and is the only row sent by the next run.
TEST_F(ActivateTest, HubSpotBatchesRetriesAndPartialFailures) {
  FakeServer server;
  std::set<std::string> refuse = {"u17@example.com"};
  std::mutex mu;
  server.handler = [&](const Request& r, int* status, std::string* body) {
    EXPECT_EQ(r.path, "/crm/v3/objects/contacts/batch/upsert");
    EXPECT_EQ(r.Header("Authorization"), "Bearer pat-na1-secret");
    simdjson::dom::parser p;
    auto doc = Parse(p, r.body);
    simdjson::dom::array inputs;
    ASSERT_FALSE(doc["inputs"].get(inputs));
    EXPECT_GE(inputs.size(), 1u);
    EXPECT_LE(inputs.size(), 100u);
    std::string results, errors;
    int n_errors = 0;
    for (auto in : inputs) {
      EXPECT_EQ(Str(in["idProperty"]), "email");
      const std::string id = Str(in["id"]);
      simdjson::dom::object props;
      ASSERT_FALSE(in["properties"].get(props));
      EXPECT_FALSE(Str(in["properties"]["lifecyclestage"]).empty()) << "HubSpot values are strings";
      std::lock_guard l(mu);
      if (refuse.count(id)) {
        errors += std::string(n_errors++ ? "," : "") +
                  "{\"status\":\"error\",\"category\":\"VALIDATION_ERROR\",\"message\":\"Property values were not "
                  "valid\",\"context\":{\"ids\":[\"" + id + "\"]}}";
      } else {
        results += std::string(results.empty() ? "" : ",") + "{\"id\":\"1\",\"properties\":{\"email\":\"" + id +
                   "\"},\"new\":true}";
      }
    }
    *body = "{\"status\":\"COMPLETE\",\"results\":[" + results + "]";
    if (n_errors) {
      *status = 207;
      *body += ",\"numErrors\":" + std::to_string(n_errors) + ",\"errors\":[" + errors + "]";
    }
    *body += "}";
  };
  std::vector<User> users;
  for (int i = 0; i < 250; i++)
    users.push_back({"u" + std::to_string(i), "u" + std::to_string(i) + "@example.com", "", "pro", 3});
  WriteGold(users);
  Config config = MakeConfig(
      "[[activate.syncs]]\nname = \"crm\"\nmodel = \"SELECT email, user_key, checkouts_7d, plan FROM gold.user_traits\"\n"
      "primary_key = \"email\"\nmode = \"upsert\"\n[activate.syncs.mapping]\nlifecyclestage = \"plan\"\n"
      "clicklake_checkouts_7d = \"checkouts_7d\"\n[activate.syncs.destination]\ntype = \"hubspot\"\nbase_url = \"" +
      server.url() + "\"\ntoken = \"pat-na1-secret\"\nrate_limit = 1000\nbackoff_base = \"10ms\"\nconcurrency = 1\n");
  server.AddFault({429, "1", 0});
  server.AddFault({500, "", 0});
  RecordingClock clock;
  ASSERT_OK_AND_ASSIGN(SyncRunResult r, RunSync(config, "crm", {}, FileSystem::Default(), &clock));
  EXPECT_EQ(r.status, "partial");
  EXPECT_EQ(r.added, 249);
  EXPECT_EQ(r.failed, 1);
  EXPECT_EQ(r.retries, 2);
  EXPECT_EQ(server.accepted().size(), 3u);  // 100 + 100 + 50
  EXPECT_NE(r.error_summary.find("VALIDATION_ERROR: Property values were not valid (1)"), std::string::npos)
      << r.error_summary;
  auto sleeps = clock.sleeps();
  ASSERT_GE(sleeps.size(), 2u);
  EXPECT_EQ(sleeps[0], 1'000'000) << "Retry-After: 1 honored";
  EXPECT_GE(sleeps[1], 10'000) << "backoff after the 500";
  EXPECT_LE(sleeps[1], 20'000);
  auto snap = Snapshot("crm");
  EXPECT_EQ(snap.size(), 250u);
  EXPECT_EQ(snap["u17@example.com"], "add");
  // Next run: only the pending row, now accepted.
  {
    std::lock_guard l(mu);
    refuse.clear();
  }
  server.Clear();
  ASSERT_OK_AND_ASSIGN(SyncRunResult again, RunSync(config, "crm", {}, FileSystem::Default(), &clock));
  EXPECT_EQ(again.status, "success");
  EXPECT_EQ(again.added, 1);
  ASSERT_EQ(server.all().size(), 1u);
  EXPECT_NE(server.all()[0].body.find("u17@example.com"), std::string::npos);
  EXPECT_EQ(Snapshot("crm")["u17@example.com"], "");
  auto runs = SyncsRows();
  ASSERT_EQ(runs.row_count(), 2u);
  EXPECT_EQ(runs.GetString(0, 1), "partial");
  EXPECT_EQ(runs.GetInt64(0, 5), 1);
}

// Braze: ≤75 attributes (and events) per request; a timeout is retried; a
// non-fatal error on one attribute object leaves that row pending; a request
// failing every retry leaves its batch pending.
TEST_F(ActivateTest, BrazeBatchesTimeoutsAndErrors) {
  FakeServer server;
  server.handler = [&](const Request& r, int* status, std::string* body) {
    EXPECT_EQ(r.path, "/users/track");
    EXPECT_EQ(r.Header("Authorization"), "Bearer braze-key");
    simdjson::dom::parser p;
    auto doc = Parse(p, r.body);
    simdjson::dom::array attributes, events;
    ASSERT_FALSE(doc["attributes"].get(attributes));
    ASSERT_FALSE(doc["events"].get(events));
    EXPECT_LE(attributes.size(), 75u);
    EXPECT_EQ(events.size(), attributes.size());
    std::string errors;
    size_t i = 0;
    for (auto a : attributes) {
      EXPECT_FALSE(Str(a["external_id"]).empty());
      EXPECT_FALSE(Str(a["plan"]).empty());
      if (Str(a["external_id"]) == "u42")
        errors = "{\"type\":\"'plan' is not valid\",\"input_array\":\"attributes\",\"index\":" + std::to_string(i) + "}";
      i++;
    }
    for (auto e : events) {
      EXPECT_EQ(Str(e["name"]), "entered_high_intent");
      EXPECT_FALSE(Str(e["time"]).empty());
    }
    *status = 201;
    *body = "{\"message\":\"success\",\"attributes_processed\":" + std::to_string(attributes.size()) +
            (errors.empty() ? "" : ",\"errors\":[" + errors + "]") + "}";
  };
  std::vector<User> users;
  for (int i = 0; i < 160; i++) users.push_back({"u" + std::to_string(i), "", "", "pro", 3});
  WriteGold(users);
  Config config = MakeConfig(
      "[[activate.syncs]]\nname = \"braze_traits\"\nmodel = \"SELECT user_key, plan FROM gold.user_traits\"\n"
      "primary_key = \"user_key\"\n[activate.syncs.destination]\ntype = \"braze\"\nbase_url = \"" + server.url() +
      "\"\ntoken = \"braze-key\"\nevent = \"entered_high_intent\"\nrate_limit = 1000\nbackoff_base = \"1ms\"\n"
      "timeout = \"300ms\"\nmax_retries = 2\n");
  server.AddFault({0, "", 1000});  // the first request times out, its retry goes through
  ASSERT_OK_AND_ASSIGN(SyncRunResult r, RunSync(config, "braze_traits"));
  EXPECT_EQ(r.added, 159);
  EXPECT_EQ(r.failed, 1);
  EXPECT_GE(r.retries, 1);
  EXPECT_EQ(server.accepted().size(), 3u);  // 75 + 75 + 10
  EXPECT_EQ(Snapshot("braze_traits")["u42"], "add");
  // Every retry fails: the batch stays pending, the run says why.
  server.Clear();
  for (int i = 0; i < 3; i++) server.AddFault({503, "", 0});
  WriteGold(users);  // unchanged data: only u42 is pending
  ASSERT_OK_AND_ASSIGN(SyncRunResult down, RunSync(config, "braze_traits"));
  EXPECT_EQ(down.status, "failed");
  EXPECT_EQ(down.failed, 1);
  EXPECT_NE(down.error_summary.find("gave up after 3 attempts"), std::string::npos) << down.error_summary;
  EXPECT_EQ(server.all().size(), 3u);
}

// Two audience syncs of gold.user_traits' members with checkouts (email and
// phone): google_aud (Google Ads Customer Match) and meta_aud (Meta), 2 members a call.
std::string AudienceSyncs(const std::string& google_url, const std::string& meta_url) {
  auto sync = [](const std::string& name, const std::string& dest) {
    return "[[activate.syncs]]\nname = \"" + name + "\"\nmodel = \"SELECT user_key, email, phone FROM "
           "gold.user_traits WHERE checkouts_7d > 0\"\nprimary_key = \"user_key\"\nmode = \"audience\"\n"
           "trigger = \"manual\"\n[activate.syncs.mapping]\nemail = \"email\"\nphone = \"phone\"\n"
           "[activate.syncs.destination]\n" + dest + "batch_size = 2\nrate_limit = 1000\nbackoff_base = \"1ms\"\n";
  };
  return sync("google_aud", "type = \"google_ads\"\nbase_url = \"" + google_url + "\"\ntoken = \"g-token\"\n"
                            "developer_token = \"dev-token\"\ncustomer_id = \"1234567890\"\nuser_list_id = \"555\"\n") +
         sync("meta_aud", "type = \"meta\"\nbase_url = \"" + meta_url + "\"\ntoken = \"m-token\"\naudience_id = "
                          "\"23850000\"\n");
}

// Google Ads Customer Match and Meta Custom Audiences: identifiers normalized
// and SHA-256 hashed, ≤ batch_size per call, members added and removed.
TEST_F(ActivateTest, AdPlatformAudiencesHashNormalizedIdentifiers) {
  FakeServer google, meta;
  std::map<std::string, int> google_members, meta_members;  // hashed email → present
  google.handler = [&](const Request& r, int*, std::string* body) {
    EXPECT_EQ(r.Header("Authorization"), "Bearer g-token");
    EXPECT_EQ(r.Header("developer-token"), "dev-token");
    simdjson::dom::parser p;
    if (r.path == "/v17/customers/1234567890/offlineUserDataJobs:create") {
      auto doc = Parse(p, r.body);
      EXPECT_EQ(Str(doc["job"]["type"]), "CUSTOMER_MATCH_USER_LIST");
      EXPECT_EQ(Str(doc["job"]["customerMatchUserListMetadata"]["userList"]), "customers/1234567890/userLists/555");
      *body = "{\"resourceName\":\"customers/1234567890/offlineUserDataJobs/77\"}";
    } else if (r.path == "/v17/customers/1234567890/offlineUserDataJobs/77:addOperations") {
      auto doc = Parse(p, r.body);
      simdjson::dom::array ops;
      ASSERT_FALSE(doc["operations"].get(ops));
      EXPECT_LE(ops.size(), 2u);
      for (auto op : ops) {
        const bool create = !op["create"].error();
        simdjson::dom::array ids;
        ASSERT_FALSE(op[create ? "create" : "remove"]["userIdentifiers"].get(ids));
        for (auto id : ids) {
          const std::string email = Str(id["hashedEmail"]);
          if (!email.empty()) google_members[email] += create ? 1 : -1;
          const std::string phone = Str(id["hashedPhoneNumber"]);
          if (!phone.empty()) google_members[phone] += create ? 1 : -1;
        }
      }
      *body = "{}";
    } else {
      EXPECT_EQ(r.path, "/v17/customers/1234567890/offlineUserDataJobs/77:run");
    }
  };
  meta.handler = [&](const Request& r, int*, std::string* body) {
    EXPECT_EQ(r.path, "/v19.0/23850000/users");
    EXPECT_EQ(r.Header("Authorization"), "Bearer m-token");
    simdjson::dom::parser p;
    auto doc = Parse(p, r.body);
    simdjson::dom::array schema, data;
    ASSERT_FALSE(doc["payload"]["schema"].get(schema));
    EXPECT_EQ(simdjson::minify(doc["payload"]["schema"]), "[\"EMAIL\",\"PHONE\"]");
    ASSERT_FALSE(doc["payload"]["data"].get(data));
    EXPECT_LE(data.size(), 2u);
    int64_t session;
    EXPECT_FALSE(doc["session"]["session_id"].get(session));
    for (auto row : data) {
      simdjson::dom::array cells = row.get_array();
      const std::string email = Str(cells.at(0)), phone = Str(cells.at(1));
      if (!email.empty()) meta_members[email] += r.method == "DELETE" ? -1 : 1;
      if (!phone.empty()) meta_members[phone] += r.method == "DELETE" ? -1 : 1;
    }
    *body = "{\"audience_id\":\"23850000\",\"num_received\":" + std::to_string(data.size()) +
            ",\"num_invalid_entries\":0,\"invalid_entry_samples\":{}}";
  };
  Config config = MakeConfig(AudienceSyncs(google.url(), meta.url()));
  const std::string foo = "321ba197033e81286fedb719d60d4ed5cecaed170733cb4a92013811afc0e3b6";  // foo@example.com
  const std::string phone_plus = "40d3f4e02db27d66cf4cfdda506c2c945f115a7955cc8491dda98ce5beabcda0";  // +14155550100
  const std::string phone_digits = "5e7ec4c79ccac6e420876e65ad0e6b4b2ccf73ec3dccb50297bf2890a1ec73b9";  // 14155550100
  WriteGold({{"u1", "  Foo@Example.COM ", "(415) 555-0100", "pro", 2},
             {"u2", "b@example.com", "", "pro", 1},
             {"u3", "c@example.com", "+44 20 7946 0958", "pro", 1},
             {"u4", "not-an-email", "12", "pro", 1}});  // no valid identifier: skipped
  ASSERT_OK_AND_ASSIGN(SyncRunResult g, RunSync(config, "google_aud"));
  ASSERT_OK_AND_ASSIGN(SyncRunResult m, RunSync(config, "meta_aud"));
  for (const auto* r : {&g, &m}) {
    EXPECT_EQ(r->status, "success") << r->error_summary;
    EXPECT_EQ(r->added, 3);
    EXPECT_EQ(r->skipped_rows, 1);
  }
  EXPECT_EQ(google_members[foo], 1);
  EXPECT_EQ(google_members[phone_plus], 1);
  EXPECT_EQ(meta_members[foo], 1);
  EXPECT_EQ(meta_members[phone_digits], 1);
  EXPECT_EQ(google.all().size(), 6u);  // 2 batches × (create, addOperations, run)
  for (const auto& req : google.all() ) EXPECT_EQ(req.body.find("example.com"), std::string::npos) << "hashed only";
  for (const auto& req : meta.all()) EXPECT_EQ(req.body.find("example.com"), std::string::npos) << "hashed only";
  // u1 leaves the audience: removed from both.
  WriteGold({{"u1", "foo@example.com", "(415) 555-0100", "pro", 0},
             {"u2", "b@example.com", "", "pro", 1},
             {"u3", "c@example.com", "+44 20 7946 0958", "pro", 1}});
  ASSERT_OK_AND_ASSIGN(g, RunSync(config, "google_aud"));
  ASSERT_OK_AND_ASSIGN(m, RunSync(config, "meta_aud"));
  EXPECT_EQ(g.removed, 1);
  EXPECT_EQ(m.removed, 1);
  EXPECT_EQ(google_members[foo], 0);
  EXPECT_EQ(google_members[phone_plus], 0);
  EXPECT_EQ(meta_members[foo], 0);
  EXPECT_EQ(meta.all().back().method, "DELETE");
}

// An audience member whose email changes: the old hash leaves the audience and
// the new one joins, once each, on Google Ads (a removal job, then the add job)
// and Meta (DELETE, then POST); a refused removal keeps the old identifiers
// pending, and the next run removes them again.
TEST_F(ActivateTest, AudienceMemberWhoseEmailChangesLeavesWithTheOldHash) {
  FakeServer google, meta;
  std::mutex mu;
  std::map<std::string, int> google_adds, google_removes, meta_adds, meta_removes;  // hash → calls
  bool refuse_removals = false;
  google.handler = [&](const Request& r, int*, std::string* body) {
    simdjson::dom::parser p;
    if (r.path.find(":create") != std::string::npos) {
      *body = "{\"resourceName\":\"customers/1234567890/offlineUserDataJobs/77\"}";
      return;
    }
    if (r.path.find(":addOperations") == std::string::npos) return;
    auto doc = Parse(p, r.body);
    simdjson::dom::array ops;
    ASSERT_FALSE(doc["operations"].get(ops));
    std::lock_guard l(mu);
    std::string failures;
    size_t index = 0;
    for (auto op : ops) {
      const bool create = !op["create"].error();
      simdjson::dom::array ids;
      ASSERT_FALSE(op[create ? "create" : "remove"]["userIdentifiers"].get(ids));
      EXPECT_GE(ids.size(), 1u);
      for (auto id : ids) {
        for (const char* k : {"hashedEmail", "hashedPhoneNumber"}) {
          const std::string h = Str(id[k]);
          if (h.empty()) continue;
          EXPECT_EQ(h.size(), 64u) << "SHA-256 hex";
          if (!create && refuse_removals) continue;
          (create ? google_adds : google_removes)[h]++;
        }
      }
      if (!create && refuse_removals) {
        failures += std::string(failures.empty() ? "" : ",") +
                    "{\"message\":\"refused\",\"location\":{\"fieldPathElements\":[{\"fieldName\":\"operations\","
                    "\"index\":" + std::to_string(index) + "}]}}";
      }
      index++;
    }
    *body = failures.empty() ? "{}" : "{\"partialFailureError\":{\"details\":[{\"errors\":[" + failures + "]}]}}";
  };
  meta.handler = [&](const Request& r, int*, std::string* body) {
    simdjson::dom::parser p;
    auto doc = Parse(p, r.body);
    simdjson::dom::array data;
    ASSERT_FALSE(doc["payload"]["data"].get(data));
    std::lock_guard l(mu);
    for (auto row : data) {
      simdjson::dom::array cells = row.get_array();
      ASSERT_EQ(cells.size(), 2u) << "EMAIL, PHONE";
      for (size_t c = 0; c < 2; c++) {
        const std::string h = Str(cells.at(c));
        if (!h.empty()) (r.method == "DELETE" ? meta_removes : meta_adds)[h]++;
      }
    }
    *body = "{\"num_received\":" + std::to_string(data.size()) + ",\"invalid_entry_samples\":{}}";
  };
  Config config = MakeConfig(AudienceSyncs(google.url(), meta.url()));
  const std::string old_hash = Sha256Hex("ann@example.com"), new_hash = Sha256Hex("ann.new@example.com");
  const std::string bob_phone_g = Sha256Hex("+14155550100"), bob_phone_m = Sha256Hex("14155550100");
  // Run 1: both members join.
  WriteGold({{"u1", "Ann@Example.com", "", "pro", 1}, {"u2", "bob@example.com", "", "pro", 1}});
  for (const char* s : {"google_aud", "meta_aud"}) {
    ASSERT_OK_AND_ASSIGN(SyncRunResult r, RunSync(config, s));
    EXPECT_EQ(r.added, 2) << s;
  }
  // Run 2: u1's email changes.
  WriteGold({{"u1", "ann.new@example.com", "", "pro", 1}, {"u2", "bob@example.com", "", "pro", 1}});
  google.Clear();
  for (const char* s : {"google_aud", "meta_aud"}) {
    ASSERT_OK_AND_ASSIGN(SyncRunResult r, RunSync(config, s));
    EXPECT_EQ(r.status, "success") << s << ": " << r.error_summary;
    EXPECT_EQ(r.changed, 1) << s;
    EXPECT_EQ(r.added + r.removed, 0) << s;
  }
  EXPECT_EQ(google.all().size(), 6u) << "a removal job and an add job (create, addOperations, run each)";
  // Run 3: u2 gains a phone; nothing of u1 is sent.
  WriteGold({{"u1", "ann.new@example.com", "", "pro", 1}, {"u2", "bob@example.com", "(415) 555-0100", "pro", 1}});
  google.Clear();
  for (const char* s : {"google_aud", "meta_aud"}) {
    ASSERT_OK_AND_ASSIGN(SyncRunResult r, RunSync(config, s));
    EXPECT_EQ(r.changed, 1) << s;
  }
  EXPECT_EQ(google.all().size(), 3u) << "a phone added, none lost: no removal job";
  {
    std::lock_guard l(mu);
    for (auto* removes : {&google_removes, &meta_removes}) {
      EXPECT_EQ(removes->size(), 1u) << "nothing else was removed";
      EXPECT_EQ((*removes)[old_hash], 1) << "the old hash left exactly once";
    }
    for (auto* adds : {&google_adds, &meta_adds}) {
      EXPECT_EQ((*adds)[old_hash], 1) << "run 1 only";
      EXPECT_EQ((*adds)[new_hash], 1) << "the new hash joined exactly once";
    }
    EXPECT_EQ(google_adds[bob_phone_g], 1);
    EXPECT_EQ(meta_adds[bob_phone_m], 1);
  }
  // A refused removal: the change stays pending with the identifiers the
  // audience holds, and the next run removes those.
  {
    std::lock_guard l(mu);
    refuse_removals = true;
  }
  WriteGold({{"u1", "ann.3@example.com", "", "pro", 1}, {"u2", "bob@example.com", "(415) 555-0100", "pro", 1}});
  ASSERT_OK_AND_ASSIGN(SyncRunResult refused, RunSync(config, "google_aud"));
  EXPECT_EQ(refused.failed, 1);
  EXPECT_NE(refused.error_summary.find("removing old identifiers: Google Ads: refused"), std::string::npos)
      << refused.error_summary;
  EXPECT_EQ(Snapshot("google_aud")["u1"], "change");
  {
    std::lock_guard l(mu);
    refuse_removals = false;
  }
  ASSERT_OK_AND_ASSIGN(SyncRunResult retried, RunSync(config, "google_aud"));
  EXPECT_EQ(retried.status, "success") << retried.error_summary;
  EXPECT_EQ(retried.changed, 1);
  EXPECT_EQ(Snapshot("google_aud")["u1"], "");
  std::lock_guard l(mu);
  EXPECT_EQ(google_removes[new_hash], 1) << "ann.new's hash removed by the retry";
  EXPECT_EQ(google_adds[Sha256Hex("ann.3@example.com")], 2) << "added by the refused run and by its retry";
}

// HubSpot mirror: a contact leaving the model is archived — its record id
// resolved by batch/read with idProperty, then batch/archive with those ids
// (≤100 per call); a contact HubSpot no longer has is confirmed as removed.
TEST_F(ActivateTest, HubSpotMirrorArchivesContactsThatLeave) {
  FakeServer server;
  std::mutex mu;
  std::map<std::string, std::string> contacts;  // email → record id (HubSpot's store)
  std::set<std::string> archived;
  int next_id = 100;
  server.handler = [&](const Request& r, int* status, std::string* body) {
    EXPECT_EQ(r.Header("Authorization"), "Bearer pat");
    EXPECT_EQ(r.method, "POST");
    simdjson::dom::parser p;
    auto doc = Parse(p, r.body);
    simdjson::dom::array inputs;
    ASSERT_FALSE(doc["inputs"].get(inputs));
    EXPECT_GE(inputs.size(), 1u);
    EXPECT_LE(inputs.size(), 100u);
    std::lock_guard l(mu);
    if (r.path == "/crm/v3/objects/contacts/batch/upsert") {
      std::string results;
      for (auto in : inputs) {
        EXPECT_EQ(Str(in["idProperty"]), "email");
        const std::string email = Str(in["id"]);
        if (!contacts.count(email)) contacts[email] = std::to_string(next_id++);
        results += std::string(results.empty() ? "" : ",") + "{\"id\":\"" + contacts[email] +
                   "\",\"properties\":{\"email\":\"" + email + "\"}}";
      }
      *body = "{\"status\":\"COMPLETE\",\"results\":[" + results + "]}";
    } else if (r.path == "/crm/v3/objects/contacts/batch/read") {
      EXPECT_EQ(Str(doc["idProperty"]), "email");
      std::string results, missing;
      for (auto in : inputs) {
        simdjson::dom::object o;
        ASSERT_FALSE(in.get(o));
        EXPECT_EQ(o.size(), 1u) << "read inputs are {id}";
        const std::string email = Str(in["id"]);
        ASSERT_FALSE(email.empty());
        auto it = contacts.find(email);
        if (it == contacts.end()) {
          missing += std::string(missing.empty() ? "" : ",") + "\"" + email + "\"";
        } else {
          // HubSpot answers with emails lower-cased.
          std::string lower = email;
          for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          results += std::string(results.empty() ? "" : ",") + "{\"id\":\"" + it->second +
                     "\",\"properties\":{\"email\":\"" + lower + "\",\"hs_object_id\":\"" + it->second + "\"}}";
        }
      }
      *body = "{\"status\":\"COMPLETE\",\"results\":[" + results + "]";
      if (!missing.empty()) {
        *status = 207;
        *body += ",\"numErrors\":1,\"errors\":[{\"status\":\"error\",\"category\":\"OBJECT_NOT_FOUND\",\"message\":"
                 "\"Could not get some CONTACT objects, they may be deleted or not exist.\",\"context\":{\"ids\":[" +
                 missing + "]}}]";
      }
      *body += "}";
    } else if (r.path == "/crm/v3/objects/contacts/batch/archive") {
      for (auto in : inputs) {
        simdjson::dom::object o;
        ASSERT_FALSE(in.get(o));
        EXPECT_EQ(o.size(), 1u) << "archive inputs are {id}";
        const std::string id = Str(in["id"]);
        bool known = false;
        for (auto it = contacts.begin(); it != contacts.end(); ++it) {
          if (it->second == id) {
            known = true;
            contacts.erase(it);
            break;
          }
        }
        EXPECT_TRUE(known) << "archive by HubSpot record id, got '" << id << "'";
        archived.insert(id);
      }
      *status = 204;
      body->clear();
    } else {
      ADD_FAILURE() << "unexpected path " << r.path;
    }
  };
  std::vector<User> users;
  for (int i = 0; i < 150; i++)
    users.push_back({"u" + std::to_string(i), "U" + std::to_string(i) + "@Example.com", "", "pro", 3});
  WriteGold(users);
  Config config = MakeConfig(
      "[[activate.syncs]]\nname = \"crm\"\nmodel = \"SELECT email, user_key, plan FROM gold.user_traits WHERE "
      "checkouts_7d > 0\"\nprimary_key = \"email\"\nmode = \"mirror\"\ntrigger = \"manual\"\n"
      "[activate.syncs.destination]\ntype = \"hubspot\"\nbase_url = \"" + server.url() +
      "\"\ntoken = \"pat\"\nrate_limit = 1000\nbackoff_base = \"1ms\"\nconcurrency = 1\n");
  ASSERT_OK_AND_ASSIGN(SyncRunResult first, RunSync(config, "crm"));
  EXPECT_EQ(first.added, 150);
  // 120 contacts leave the model; one of them was already deleted in HubSpot.
  {
    std::lock_guard l(mu);
    contacts.erase("U3@Example.com");
  }
  std::vector<User> staying(users.begin() + 120, users.end());
  for (int i = 0; i < 120; i++) staying.push_back({users[i].key, users[i].email, "", "pro", 0});
  WriteGold(staying);
  server.Clear();
  ASSERT_OK_AND_ASSIGN(SyncRunResult r, RunSync(config, "crm"));
  EXPECT_EQ(r.status, "success") << r.error_summary;
  EXPECT_EQ(r.removed, 120);
  EXPECT_EQ(r.added + r.changed + r.failed, 0);
  std::vector<std::string> paths;
  for (const auto& req : server.all()) paths.push_back(req.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"/crm/v3/objects/contacts/batch/read",
                                             "/crm/v3/objects/contacts/batch/archive",
                                             "/crm/v3/objects/contacts/batch/read",
                                             "/crm/v3/objects/contacts/batch/archive"}));
  {
    std::lock_guard l(mu);
    EXPECT_EQ(archived.size(), 119u);
    EXPECT_EQ(contacts.size(), 30u) << "only the contacts still in the model are left";
  }
  auto snap = Snapshot("crm");
  EXPECT_EQ(snap.size(), 30u);
  EXPECT_EQ(snap.count("U0@Example.com"), 0u);
  // A failing archive leaves the removals pending.
  WriteGold(std::vector<User>(users.begin() + 120, users.begin() + 140));  // 10 more leave
  server.Clear();
  server.handler = [old = server.handler](const Request& r, int* status, std::string* body) {
    if (r.path == "/crm/v3/objects/contacts/batch/archive") {
      *status = 400;
      *body = "{\"status\":\"error\",\"message\":\"no\",\"category\":\"VALIDATION_ERROR\"}";
      return;
    }
    old(r, status, body);
  };
  ASSERT_OK_AND_ASSIGN(SyncRunResult failed, RunSync(config, "crm"));
  EXPECT_EQ(failed.failed, 10);
  EXPECT_NE(failed.error_summary.find("HubSpot batch/archive answered HTTP 400"), std::string::npos)
      << failed.error_summary;
  EXPECT_EQ(Snapshot("crm")["U145@Example.com"], "remove");
  EXPECT_EQ(Snapshot("crm")["U130@Example.com"], "");
}

// Answers a destination should never give (not JSON, wrong types, indexes
// out of range, errors naming unknown keys) end as recorded outcomes, never a crash.
TEST_F(ActivateTest, MalformedAnswersNeverCrash) {
  const std::vector<std::string> bodies = {
      "", "not json", "[]", "{\"errors\":5}", "{\"errors\":[1,\"x\",{\"key\":7},{\"index\":-3},{\"index\":99999}]}",
      "{\"message\":\"success\",\"errors\":[{\"index\":1e400},{\"input_array\":[]}]}",
      "{\"status\":\"COMPLETE\",\"results\":7,\"errors\":[{\"context\":{\"ids\":[1,null]}},{\"context\":[]}]}",
      "{\"resourceName\":\"customers/1/offlineUserDataJobs/2\",\"partialFailureError\":{\"details\":[{\"errors\":"
      "[{\"location\":{\"fieldPathElements\":[{\"fieldName\":\"operations\",\"index\":123456789}]}}]}]}}",
      "{\"invalid_entry_samples\":[\"x\"]}", "{\"invalid_entry_samples\":{\"abc\":5}}", "{\"a\":{\"b\":{\"c\":[[[[]]]]}}}"};
  FakeServer server;
  std::atomic<size_t> next{0};
  server.handler = [&](const Request&, int* status, std::string* body) {
    const size_t i = next++;
    *body = bodies[i % bodies.size()];
    *status = i % 3 == 0 ? 207 : 200;
  };
  WriteGold({{"u1", "a@example.com", "+15550001000", "pro", 3}, {"u2", "b@example.com", "", "free", 2}});
  const std::string model = "model = \"SELECT user_key, email, phone FROM gold.user_traits\"\nprimary_key = "
                            "\"user_key\"\ntrigger = \"manual\"\n";
  const std::string common = "base_url = \"" + server.url() + "\"\ntoken = \"t\"\nrate_limit = 1000\n"
                             "backoff_base = \"1ms\"\nmax_retries = 0\n";
  Config config = MakeConfig(
      "[[activate.syncs]]\nname = \"w\"\n" + model + "[activate.syncs.destination]\ntype = \"webhook\"\nsecret = \"" +
      kSecret + "\"\n" + common +
      "[[activate.syncs]]\nname = \"h\"\n" + model + "[activate.syncs.mapping]\nphone = \"phone\"\n"
      "[activate.syncs.destination]\ntype = \"hubspot\"\n" + common +
      "[[activate.syncs]]\nname = \"b\"\n" + model + "[activate.syncs.destination]\ntype = \"braze\"\n"
      "event = \"e\"\n" + common +
      "[[activate.syncs]]\nname = \"g\"\n" + model + "mode = \"audience\"\n[activate.syncs.mapping]\nemail = "
      "\"email\"\nphone = \"phone\"\n[activate.syncs.destination]\ntype = \"google_ads\"\ndeveloper_token = \"d\"\n"
      "customer_id = \"1\"\nuser_list_id = \"2\"\n" + common +
      "[[activate.syncs]]\nname = \"m\"\n" + model + "mode = \"audience\"\n[activate.syncs.mapping]\nemail = "
      "\"email\"\n[activate.syncs.destination]\ntype = \"meta\"\naudience_id = \"3\"\n" + common);
  for (int round = 0; round < 3; round++) {
    for (const char* s : {"w", "h", "b", "g", "m"}) {
      auto r = RunSync(config, s);
      ASSERT_TRUE(r.ok()) << s << ": " << r.status().ToString();
      // Every pending row is sent each run: what is pending now is what failed now.
      int64_t pending = 0;
      for (const auto& [key, op] : Snapshot(s)) pending += op.empty() ? 0 : 1;
      EXPECT_EQ(pending, r->failed) << s;
    }
    WriteGold({{"u1", "a@example.com", "+15550001000", "pro", round}, {"u3", "c@example.com", "", "free", 2}});
  }
}

// A user forgotten between runs is removed downstream (mirror and audience),
// even while the model still returns them, and leaves no row in any snapshot.
TEST_F(ActivateTest, ForgottenUserIsRemovedDownstream) {
  FakeServer hook, meta;
  meta.handler = [&](const Request&, int*, std::string* body) { *body = "{\"num_received\":1}"; };
  Config config = MakeConfig(
      WebhookSync(hook.url(), "mirror", 10) +
      "[[activate.syncs]]\nname = \"aud\"\nmodel = \"SELECT user_key, email FROM gold.user_traits\"\nprimary_key = "
      "\"user_key\"\nmode = \"audience\"\ntrigger = \"manual\"\n[activate.syncs.mapping]\nemail = \"email\"\n"
      "[activate.syncs.destination]\ntype = \"meta\"\nbase_url = \"" + meta.url() + "\"\ntoken = \"t\"\n"
      "audience_id = \"9\"\nrate_limit = 1000\n"
      "[[activate.syncs]]\nname = \"traits\"\nmodel = \"SELECT user_key, plan FROM gold.user_traits\"\nprimary_key = "
      "\"user_key\"\nmode = \"upsert\"\ntrigger = \"manual\"\n[activate.syncs.destination]\ntype = \"webhook\"\n"
      "base_url = \"" + hook.url() + "\"\nsecret = \"" + kSecret + "\"\npath = \"/hooks/clicklake\"\nrate_limit = 1000\n");
  WriteGold({{"u1", "a@example.com", "", "pro", 3}, {"u2", "forget.me@example.com", "", "pro", 3}});
  for (const char* s : {"intent", "aud", "traits"}) ASSERT_OK(RunSync(config, s).status());
  ASSERT_OK_AND_ASSIGN(ForgetResult f, ForgetUsers(config, {"u2"}));
  EXPECT_EQ(f.tombstones, 2);    // intent (mirror), aud (audience)
  EXPECT_EQ(f.rows_removed, 1);  // traits (upsert): never deletes downstream
  // The tombstones hold only what the delete call needs.
  {
    auto c = db_->Connect();
    ASSERT_OK(c.status());
    ASSERT_OK(delta::AttachTable(c->get(), "aud", lake() + "/activate/aud_snapshot", std::nullopt));
    ASSERT_OK_AND_ASSIGN(auto t, (*c)->Query("SELECT user_key, fields, forgotten FROM aud WHERE sync_key = 'u2'"));
    ASSERT_EQ(t.row_count(), 1u);
    EXPECT_TRUE(t.IsNull(0, 0));
    EXPECT_EQ(t.GetString(0, 1).find("example.com"), std::string::npos);
    EXPECT_EQ(t.GetString(0, 2), "true");
  }
  hook.Clear();
  meta.Clear();
  // Gold still has u2 (erasure of Gold is another component's job): removed anyway.
  ASSERT_OK_AND_ASSIGN(SyncRunResult r, RunSync(config, "intent"));
  EXPECT_EQ(r.removed, 1);
  EXPECT_EQ(r.added, 0);
  ASSERT_EQ(hook.all().size(), 1u);
  EXPECT_NE(hook.all()[0].body.find("\"records\":[{\"op\":\"delete\",\"key\":\"u2\"}]"), std::string::npos)
      << hook.all()[0].body;
  ASSERT_OK_AND_ASSIGN(SyncRunResult a, RunSync(config, "aud"));
  EXPECT_EQ(a.removed, 1);
  ASSERT_EQ(meta.all().size(), 1u);
  EXPECT_EQ(meta.all()[0].method, "DELETE");
  EXPECT_NE(meta.all()[0].body.find(Sha256Hex("forget.me@example.com")), std::string::npos);
  // While Gold still returns u2, no sync sends it again (upsert mode included).
  hook.Clear();
  meta.Clear();
  for (const char* s : {"intent", "aud", "traits"}) {
    ASSERT_OK_AND_ASSIGN(r, RunSync(config, s));
    EXPECT_EQ(r.added + r.changed + r.removed, 0) << s;
    EXPECT_EQ(Snapshot(s).count("u2"), 1u) << s << ": a key-only marker";
  }
  EXPECT_TRUE(hook.all().empty());
  EXPECT_TRUE(meta.all().empty());
  // Once Gold no longer has them, the markers go too: nothing of u2 is left.
  WriteGold({{"u1", "a@example.com", "", "pro", 3}});
  for (const char* s : {"intent", "aud", "traits"}) {
    ASSERT_OK_AND_ASSIGN(r, RunSync(config, s));
    EXPECT_EQ(r.added + r.changed + r.removed, 0) << s;
    EXPECT_EQ(Snapshot(s).count("u2"), 0u) << s;
  }
  EXPECT_TRUE(hook.all().empty());
}

// restricted.pii is invisible to a model unless the sync is granted fields,
// and then only those fields.
TEST_F(ActivateTest, RawFieldsOnlyThroughAGrant) {
  FakeServer server;
  delta::Schema pii;
  pii.fields = {{"event_id", "string"}, {"user_key", "string"}, {"event_date", "date"},
                {"field", "string"},    {"value", "string"},    {"received_at", "timestamp"}};
  ASSERT_OK_AND_ASSIGN(auto t, delta::Table::OpenOrCreate(lake() + "/restricted/pii", pii, {}, {}, db_.get()));
  auto txn = t->StartTransaction();
  ASSERT_OK(txn->WriteFiles(conn_.get(), "SELECT * FROM (VALUES ('e1', 'u1', DATE '2024-05-01', 'traits.email', "
                                         "'raw@example.com', TIMESTAMP '2024-05-01 10:00:00'), ('e1', 'u1', DATE "
                                         "'2024-05-01', 'traits.phone', '+15550001', TIMESTAMP '2024-05-01 10:00:00')) "
                                         "v(event_id, user_key, event_date, field, value, received_at)")
                .status());
  ASSERT_OK(txn->Commit().status());
  const std::string sync = "[[activate.syncs]]\nname = \"crm\"\nmodel = \"SELECT user_key, value FROM restricted.pii\"\n"
                           "primary_key = \"user_key\"\ntrigger = \"manual\"\n";
  const std::string dest = "[activate.syncs.destination]\ntype = \"webhook\"\nbase_url = \"" + server.url() +
                           "\"\nsecret = \"" + kSecret + "\"\n";
  auto denied = RunSync(MakeConfig(sync + dest), "crm");
  EXPECT_EQ(denied.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(denied.status().message().find("restricted"), std::string::npos) << denied.status().message();
  ASSERT_OK_AND_ASSIGN(SyncRunResult granted,
                       RunSync(MakeConfig(sync + "raw_fields = [\"traits.email\"]\n" + dest), "crm"));
  EXPECT_EQ(granted.added, 1);
  ASSERT_EQ(server.all().size(), 1u);
  EXPECT_NE(server.all()[0].body.find("raw@example.com"), std::string::npos);
  EXPECT_EQ(server.all()[0].body.find("+15550001"), std::string::npos);
}

// Token bucket: 6 requests at 5/s with a burst of 1 wait about one second in all.
TEST_F(ActivateTest, TokenBucketPacesRequests) {
  FakeServer server;
  std::vector<User> users;
  for (int i = 0; i < 6; i++) users.push_back({"u" + std::to_string(i), "", "", "pro", 3});
  WriteGold(users);
  std::string toml = WebhookSync(server.url(), "upsert", 1);
  toml.replace(toml.find("rate_limit = 1000"), 17, "rate_limit = 5\nburst = 1");
  Config config = MakeConfig(toml);
  RecordingClock clock;
  const int64_t start = clock.MonotonicMicros();
  ASSERT_OK_AND_ASSIGN(SyncRunResult r, RunSync(config, "intent", {}, FileSystem::Default(), &clock));
  EXPECT_EQ(r.requests, 6);
  // The first request takes the burst; each of the other five waits 200 ms
  // (real time spent sending counts towards it).
  EXPECT_GE(clock.MonotonicMicros() - start, 1'000'000);
  EXPECT_GE(clock.slept(), 500'000);
  EXPECT_LE(clock.slept(), 1'000'000);
}

// Retry-After as an HTTP date (429) and in seconds on a 503 are both honored.
TEST_F(ActivateTest, RetryAfterDatesAndSecondsAreHonored) {
  FakeServer server;
  WriteGold({{"u1", "", "", "pro", 3}});
  Config config = MakeConfig(WebhookSync(server.url(), "upsert", 10));
  const time_t in_20s = static_cast<time_t>(SystemClock()->NowMicros() / 1'000'000 + 20);
  std::tm tm{};
  gmtime_r(&in_20s, &tm);
  char date[64];
  std::strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  server.AddFault({429, date, 0});
  server.AddFault({503, "2", 0});
  RecordingClock clock;
  ASSERT_OK_AND_ASSIGN(SyncRunResult r, RunSync(config, "intent", {}, FileSystem::Default(), &clock));
  EXPECT_EQ(r.status, "success");
  EXPECT_EQ(r.retries, 2);
  auto sleeps = clock.sleeps();
  ASSERT_EQ(sleeps.size(), 2u);
  EXPECT_GE(sleeps[0], 18'000'000) << date;
  EXPECT_LE(sleeps[0], 20'000'000) << date;
  EXPECT_EQ(sleeps[1], 2'000'000);
}

TEST_F(ActivateTest, SchedulerRunsGoldSyncsWhenNotified) {
  FakeServer server;
  WriteGold({{"u1", "", "", "free", 2}});
  std::string toml = WebhookSync(server.url(), "upsert", 10);
  toml.replace(toml.find("trigger = \"manual\""), 18, "trigger = \"gold\"");
  Config config = MakeConfig(toml);
  ASSERT_OK_AND_ASSIGN(auto scheduler, SyncScheduler::Create(config));
  ASSERT_NE(scheduler, nullptr);
  scheduler->Start();
  scheduler->NotifyGoldRefreshed();
  for (int i = 0; i < 200 && scheduler->runs_completed() < 1; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  scheduler->Stop();
  EXPECT_EQ(scheduler->runs_completed(), 1);
  EXPECT_EQ(server.all().size(), 1u);
  // Manual syncs get no scheduler.
  ASSERT_OK_AND_ASSIGN(auto none, SyncScheduler::Create(MakeConfig(WebhookSync(server.url(), "upsert", 10))));
  EXPECT_EQ(none, nullptr);
}

// kill -9 of `clicklake sync run` mid-run, then a resume: batches the
// destination confirmed before the kill are not sent again.
TEST_F(ActivateTest, KillNineMidRunThenResume) {
  const char* bin = std::getenv("CLICKLAKE_BIN");
  ASSERT_NE(bin, nullptr) << "CLICKLAKE_BIN (set by ctest) names the clicklake binary";
  FakeServer server;
  std::atomic<int> requests{0};
  std::atomic<bool> hang{true};
  server.handler = [&](const Request&, int*, std::string*) {
    if (++requests == 4) {
      while (hang) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  std::vector<User> users;
  for (int i = 0; i < 100; i++) users.push_back({"u" + std::to_string(100 + i), "", "", "pro", 3});
  WriteGold(users);
  const std::string toml = "[lake]\ndir = \"" + lake() + "\"\n\n" + WebhookSync(server.url(), "mirror", 10);
  const std::string config_path = dir_.Sub("clicklake.toml");
  std::ofstream(config_path) << toml;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl(bin, bin, "sync", "run", "intent", "--config", config_path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 2000 && requests < 4; i++) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(requests.load(), 4) << "the child did not reach its fourth batch";
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  EXPECT_TRUE(WIFSIGNALED(wstatus));
  hang = false;
  std::set<std::string> before;  // keys of the three confirmed batches
  auto sent = server.accepted();
  ASSERT_EQ(sent.size(), 4u);
  WebhookReceiver receiver;
  for (size_t i = 0; i < 3; i++) receiver.Apply(sent[i], 10);
  for (const auto& [k, v] : receiver.state) before.insert(k);
  ASSERT_EQ(before.size(), 30u);
  // A line torn by a crash mid-write is ignored.
  std::ofstream(lake() + "/_clicklake/activate/intent.journal", std::ios::app) << "{\"t\":\"row\",\"n\":99,\"k\":\"u1";
  server.Clear();
  ASSERT_OK_AND_ASSIGN(SyncRunResult r, RunSync(MakeConfig(WebhookSync(server.url(), "mirror", 10)), "intent"));
  EXPECT_EQ(r.resumed, 30);
  EXPECT_EQ(r.added, 70);  // the in-flight batch and the rest
  EXPECT_EQ(r.status, "success");
  // The batch in flight at the kill goes again with the same idempotency key.
  ASSERT_FALSE(server.all().empty());
  EXPECT_EQ(server.all()[0].Header("webhook-id"), sent[3].Header("webhook-id"));
  EXPECT_EQ(server.all()[0].body, sent[3].body);
  for (const auto& req : server.all()) receiver.Apply(req, 10);
  EXPECT_EQ(receiver.state.size(), 100u);
  for (const auto& req : server.all())
    for (const auto& k : before) EXPECT_EQ(req.body.find("\"key\":\"" + k + "\""), std::string::npos) << k;
  auto runs = SyncsRows();
  ASSERT_EQ(runs.row_count(), 2u);
  EXPECT_EQ(runs.GetString(0, 1), "interrupted");
  EXPECT_EQ(runs.GetInt64(0, 2), 30);
  EXPECT_EQ(runs.GetString(0, 6), "true");
  EXPECT_EQ(runs.GetString(1, 1), "success");
  EXPECT_EQ(Snapshot("intent").size(), 100u);
  EXPECT_FALSE(FileSystem::Default()->Exists(lake() + "/_clicklake/activate/intent.journal"));
  // The CLI's other verbs on the same lake.
  auto cli = [&](const std::string& args) {
    std::string out;
    FILE* p = popen((std::string(bin) + " sync " + args + " --config " + config_path + " 2>&1").c_str(), "r");
    char buf[4096];
    for (size_t n; p && (n = fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
    if (p) pclose(p);
    return out;
  };
  std::string status = cli("status");
  EXPECT_NE(status.find("intent"), std::string::npos) << status;
  EXPECT_NE(status.find("#1 success"), std::string::npos) << status;
  EXPECT_NE(status.find("+70 ~0 -0, 0 failed"), std::string::npos) << status;
  users.erase(users.begin());
  WriteGold(users);
  std::string dry = cli("run intent --dry-run");
  EXPECT_NE(dry.find("would add 0, change 0, remove 1; 99 unchanged"), std::string::npos) << dry;
  EXPECT_NE(dry.find("  remove u100"), std::string::npos) << dry;
  EXPECT_NE(cli("run nope").find("no sync named 'nope'"), std::string::npos);
}

}  // namespace
}  // namespace clicklake::activate

// Syncs triggered by the pipeline's Gold refreshes: events through the real
// micro-batch runner into gold.user_features_daily, the runner's
// BatchObserver wired to a SyncScheduler as `clicklake up` does, and
// a model over the features sent to a fake webhook. A destination that is down
// fails its sync, never the batch.
#include <gtest/gtest.h>

#include <set>

#include "activate/activate.h"
#include "activate/fake_destination.h"
#include "common/raw_event.h"
#include "common/test_util.h"
#include "log/event_log.h"
#include "pipeline/pipeline.h"

namespace clicklake::activate {
namespace {

using testing::FakeServer;
using testing::Parse;
using testing::Str;

class ActivatePipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_config_.Set("lake.dir", dir_.Sub("lake"));
    log_config_.Set("log.partitions", "1");
    ASSERT_OK_AND_ASSIGN(log_, log::OpenEventLog(log_config_));
  }
  void TearDown() override { ASSERT_OK(log_->Close()); }

  // One track event per (user, event name), all on 2024-05-01.
  void Append(const std::vector<std::pair<std::string, std::string>>& events) {
    std::vector<log::LogEntry> entries;
    for (const auto& [user, name] : events) {
      RawEvent e;
      e.received_at_us = 1714564800000000LL + static_cast<int64_t>(entries.size() + seq_) * 1000000LL;
      e.source = "web";
      e.protocol = "segment";
      e.client_ip = "203.0.113.7";
      e.user_agent = "Mozilla/5.0";
      e.payload = R"({"type":"track","event":")" + name + R"(","userId":")" + user + R"(","messageId":"m)" +
                  std::to_string(seq_ + entries.size()) + R"("})";
      log::LogEntry entry;
      entry.key = user;
      EncodeRawEvent(e, &entry.value);
      entries.push_back(std::move(entry));
    }
    seq_ += static_cast<int64_t>(entries.size());
    ASSERT_OK(log_->Append(std::move(entries)));
  }

  clicklake::testing::TempDir dir_, key_dir_;
  Config log_config_;
  std::unique_ptr<log::EventLog> log_;
  int64_t seq_ = 0;
};

TEST_F(ActivatePipelineTest, GoldRefreshTriggersSyncsWithoutBlockingBatches) {
  FakeServer hook, down;
  std::mutex mu;
  std::vector<std::string> sent;  // "op key"
  hook.handler = [&](const testing::Request& r, int*, std::string*) {
    simdjson::dom::parser p;
    auto doc = Parse(p, r.body);
    simdjson::dom::array records;
    ASSERT_FALSE(doc["records"].get(records));
    std::lock_guard l(mu);
    for (auto rec : records) sent.push_back(Str(rec["op"]) + " " + Str(rec["key"]));
  };
  down.handler = [](const testing::Request&, int* status, std::string*) { *status = 503; };
  const std::string model =
      "SELECT user_key, checkouts_7d FROM gold.user_features_daily WHERE feature_date = (SELECT "
      "max(feature_date) FROM gold.user_features_daily) AND checkouts_7d > 0";
  auto sync = [&](const std::string& name, const std::string& url) {
    return "[[activate.syncs]]\nname = \"" + name + "\"\nmodel = \"" + model +
           "\"\nprimary_key = \"user_key\"\nmode = \"mirror\"\ntrigger = \"gold\"\n[activate.syncs.destination]\n"
           "type = \"webhook\"\nbase_url = \"" + url + "\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n"
           "rate_limit = 1000\nbackoff_base = \"1ms\"\nmax_retries = 1\n";
  };
  auto config = Config::Parse("[lake]\ndir = \"" + dir_.Sub("lake") + "\"\n[privacy]\nkey_file = \"" +
                              key_dir_.Sub("pii.key") + "\"\n" + sync("intent", hook.url()) +
                              sync("intent_down", down.url()));
  ASSERT_OK(config.status());
  ASSERT_OK_AND_ASSIGN(auto scheduler, SyncScheduler::Create(*config));
  ASSERT_NE(scheduler, nullptr);
  pipeline::PipelineOptions options = pipeline::PipelineOptions::FromConfig(*config);
  options.observers.push_back(scheduler->GoldObserver());
  ASSERT_OK_AND_ASSIGN(auto runner, pipeline::MicroBatchRunner::Create(options, log_.get()));
  scheduler->Start();
  auto wait_runs = [&](int64_t n) {
    for (int i = 0; i < 400 && scheduler->runs_completed() < n; i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    EXPECT_EQ(scheduler->runs_completed(), n);
  };

  Append({{"alice", "checkout_started"}, {"bob", "product_viewed"}, {"carol", "checkout_started"}});
  ASSERT_OK_AND_ASSIGN(pipeline::BatchResult b0, runner->RunOnce());
  EXPECT_EQ(b0.batch_id, 0);
  wait_runs(2);  // both syncs, one Gold refresh
  {
    std::lock_guard l(mu);
    EXPECT_EQ(std::set<std::string>(sent.begin(), sent.end()),
              (std::set<std::string>{"upsert alice", "upsert carol"}));
    sent.clear();
  }
  // Bob starts a checkout; alice's count changes.
  Append({{"bob", "checkout_started"}, {"alice", "checkout_started"}});
  ASSERT_OK_AND_ASSIGN(pipeline::BatchResult b1, runner->RunOnce());
  EXPECT_EQ(b1.batch_id, 1) << "a sync whose destination is down does not fail the batch";
  wait_runs(4);
  scheduler->Stop();
  {
    std::lock_guard l(mu);
    EXPECT_EQ(std::set<std::string>(sent.begin(), sent.end()),
              (std::set<std::string>{"upsert alice", "upsert bob"}));
  }
  // The history: intent succeeded twice, intent_down failed twice with its rows pending.
  ASSERT_OK_AND_ASSIGN(auto status, SyncStatus(*config));
  ASSERT_EQ(status.size(), 2u);
  EXPECT_EQ(status[0].sync, "intent");
  EXPECT_EQ(status[0].last_status, "success");
  EXPECT_EQ(status[0].snapshot_rows, 3);
  EXPECT_EQ(status[0].pending_rows, 0);
  EXPECT_EQ(status[1].last_status, "failed");
  EXPECT_EQ(status[1].pending_rows, 3);
  EXPECT_NE(status[1].last_error.find("503"), std::string::npos) << status[1].last_error;
}

}  // namespace
}  // namespace clicklake::activate

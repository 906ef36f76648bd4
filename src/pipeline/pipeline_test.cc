#include "pipeline/pipeline.h"

#include <gtest/gtest.h>

#include "common/raw_event.h"
#include "common/test_util.h"
#include "delta/table.h"
#include "engine/engine.h"

namespace clicklake::pipeline {
namespace {

using clicklake::testing::TempDir;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.Set("lake.dir", dir_.path());
    config_.Set("log.partitions", "4");
    OpenLog();
    options_.lake_dir = dir_.path();
  }

  void OpenLog() {
    if (log_) ASSERT_OK(log_->Close());
    ASSERT_OK_AND_ASSIGN(log_, log::OpenEventLog(config_));
  }

  // Appends n events for n/3 users and returns their message ids.
  void AppendEvents(int n, int first = 0) {
    std::vector<log::LogEntry> entries;
    for (int i = first; i < first + n; i++) {
      RawEvent e;
      e.received_at_us = 1714564800000000LL + i * 1000000LL;
      e.source = "web";
      e.protocol = "segment";
      e.client_ip = "203.0.113.7";
      e.user_agent = "Mozilla/5.0";
      std::string user = "u" + std::to_string(i % 7);
      e.payload = R"({"type":"track","event":"Clicked","userId":")" + user + R"(","messageId":"m)" +
                  std::to_string(i) + R"("})";
      log::LogEntry entry;
      entry.key = user;
      EncodeRawEvent(e, &entry.value);
      entries.push_back(std::move(entry));
    }
    ASSERT_OK(log_->Append(std::move(entries)));
  }

  // (rows, distinct message ids) in bronze.events.
  std::pair<int64_t, int64_t> BronzeCounts() {
    auto db = engine::Database::Open();
    EXPECT_TRUE(db.ok());
    auto conn = (*db)->Connect();
    EXPECT_TRUE(conn.ok());
    EXPECT_OK(delta::RegisterLakeViews(conn->get(), dir_.path(), std::nullopt));
    auto r = (*conn)->Query(
        "SELECT count(*), count(DISTINCT json_extract_string(payload, '$.messageId')) FROM bronze.events");
    EXPECT_TRUE(r.ok()) << r.status();
    return {r->GetInt64(0, 0), r->GetInt64(0, 1)};
  }

  TempDir dir_;
  Config config_;
  PipelineOptions options_;
  std::unique_ptr<log::EventLog> log_;
};

TEST_F(PipelineTest, BatchLandsInBronzeWithOffsets) {
  AppendEvents(100);
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_EQ(r.batch_id, 0);
  EXPECT_EQ(r.events, 100);
  EXPECT_EQ(r.bronze_rows, 100);
  EXPECT_EQ(BronzeCounts(), (std::pair<int64_t, int64_t>(100, 100)));
  ASSERT_OK_AND_ASSIGN(BatchResult empty, runner->RunOnce());
  EXPECT_EQ(empty.batch_id, -1);
  // system.batches has the batch, bronze.events' first commit is protocol 1/2.
  auto db = engine::Database::Open();
  ASSERT_OK_AND_ASSIGN(auto conn, (*db)->Connect());
  ASSERT_OK(delta::RegisterLakeViews(conn.get(), dir_.path(), std::nullopt));
  ASSERT_OK_AND_ASSIGN(auto batches, conn->Query("SELECT batch_id, events, status FROM memory.system.batches"));
  ASSERT_EQ(batches.row_count(), 1u);
  EXPECT_EQ(batches.GetInt64(0, 1), 100);
  EXPECT_EQ(batches.GetString(0, 2), "committed");
  ASSERT_OK_AND_ASSIGN(auto group, log_->CommittedOffsets(options_.consumer_group));
  int64_t total = 0;
  for (const auto& [p, next] : group) total += next;
  EXPECT_EQ(total, 100);
}

TEST_F(PipelineTest, RestartResumesAfterLastCommittedBatch) {
  AppendEvents(50);
  {
    ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
    ASSERT_OK(runner->Drain());
  }
  AppendEvents(30, 50);
  // A restart that never saw the consumer-group offsets: the Delta log alone says where to resume.
  ASSERT_OK(log_->CommitOffsets(options_.consumer_group, {}));
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  EXPECT_EQ(runner->next_batch_id(), 1);
  ASSERT_OK(runner->Drain());
  EXPECT_EQ(BronzeCounts(), (std::pair<int64_t, int64_t>(80, 80)));
}

TEST_F(PipelineTest, BatchCapSplitsWork) {
  AppendEvents(100);
  options_.max_batch_events = 30;
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->Drain());
  EXPECT_GE(runner->next_batch_id(), 4);
  EXPECT_EQ(BronzeCounts(), (std::pair<int64_t, int64_t>(100, 100)));
}

TEST_F(PipelineTest, UndecodableRecordsAreKeptNotDropped) {
  ASSERT_OK(log_->Append({{"k", std::string("\xff\xfe not a raw event", 19)}}));
  AppendEvents(3);
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_EQ(r.events, 4);
  EXPECT_EQ(r.undecodable, 1);
  EXPECT_EQ(BronzeCounts().first, 4);
}

}  // namespace
}  // namespace clicklake::pipeline

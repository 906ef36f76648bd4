#include "pipeline/pipeline.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "common/raw_event.h"
#include "common/test_util.h"
#include "delta/table.h"
#include "engine/engine.h"
#include "pipeline/bronze.h"
#include "pipeline/silver.h"
#include "simulate/simulator.h"

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
    // The PII key lives outside the lake.
    options_.config.Set("privacy.key_file", JoinPath(key_dir_.path(), "pii.key"));
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

  // Appends Segment payloads (one RawEvent each) received at `received_us`.
  void AppendPayloads(const std::vector<std::string>& payloads, int64_t received_us = 1714564800000000LL,
                      const std::string& protocol = "segment") {
    std::vector<log::LogEntry> entries;
    for (const auto& payload : payloads) {
      RawEvent e;
      e.received_at_us = received_us;
      e.source = "web";
      e.protocol = protocol;
      e.client_ip = "203.0.113.7";
      e.user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
      e.payload = payload;
      log::LogEntry entry;
      entry.key = "k";
      EncodeRawEvent(e, &entry.value);
      entries.push_back(std::move(entry));
    }
    ASSERT_OK(log_->Append(std::move(entries)));
  }

  engine::QueryResult Query(const std::string& sql) {
    auto db = engine::Database::Open();
    EXPECT_TRUE(db.ok());
    auto conn = (*db)->Connect();
    EXPECT_TRUE(conn.ok());
    EXPECT_OK(delta::RegisterLakeViews(conn->get(), dir_.path(), std::nullopt));
    auto r = (*conn)->Query(engine::QualifySchemaReferences(sql, "system", "memory"));
    EXPECT_TRUE(r.ok()) << r.status() << "\n" << sql;
    return r.ok() ? std::move(r).value() : engine::QueryResult();
  }
  int64_t Count(const std::string& sql) { return Query(sql).GetInt64(0, 0, -1); }

  // Removes the newest commit of a table, as if the process died before making it.
  void DropLatestCommit(const std::string& table) { DropLatestCommitIn(JoinPath(JoinPath(dir_.path(), table), "_delta_log")); }
  void DropLatestCommitIn(const std::string& log_dir) {
    ASSERT_OK_AND_ASSIGN(auto names, FileSystem::Default()->ListDir(log_dir));
    std::string latest;
    for (const auto& f : names) {
      const std::string& n = f.name;
      if (n.size() == 25 && n.substr(20) == ".json" && n > latest) latest = n;
    }
    ASSERT_FALSE(latest.empty());
    ASSERT_OK(FileSystem::Default()->DeleteFile(JoinPath(log_dir, latest)));
  }

  TempDir dir_;
  TempDir key_dir_;
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
  std::string metrics = MetricsRegistry::Global()->RenderPrometheus();
  EXPECT_NE(metrics.find("clicklake_processor_stage_seconds{stage=\"silver\"}"), std::string::npos);
  EXPECT_NE(metrics.find("clicklake_silver_events_total"), std::string::npos);
  // system.batches has the batch.
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

// processor.profile_dir: the batch's statements (Bronze and Silver writes
// among them) profiled by DuckDB, for diagnosing a slow batch.
// Records what the runner tells its observers, as one line per call.
class RecordingObserver : public BatchObserver {
 public:
  void OnBatchStarted(int64_t batch_id, int64_t) override { calls.push_back("started " + std::to_string(batch_id)); }
  void OnBatchCommitted(const BatchResult& r) override {
    std::string line = "committed " + std::to_string(r.batch_id);
    for (const auto& [table, version] : r.versions) line += " " + table + "@" + std::to_string(version);
    line += r.gold ? " gold" : " no-gold";
    calls.push_back(line);
  }
  void OnBatchFailed(int64_t batch_id, const Status& s) override {
    calls.push_back("failed " + std::to_string(batch_id) + " " + std::string(StatusCodeName(s.code())));
  }
  void OnCompacted(const std::string& table, int64_t version) override { calls.push_back("compacted " + table); }
  std::vector<std::string> calls;
};

TEST_F(PipelineTest, ObserversHearOfEveryBatchAndFailure) {
  auto observer = std::make_shared<RecordingObserver>();
  options_.observers.push_back(observer);
  AppendEvents(30);
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->RunOnce().status());
  ASSERT_OK(runner->RunOnce().status());  // nothing new: no call
  std::vector<std::string> payloads;
  for (int i = 0; i < 100; i++) payloads.push_back(R"({"type":"track","event":"E","messageId":"anon)" + std::to_string(i) + R"("})");
  AppendPayloads(payloads);  // every event without identity: the batch is refused
  EXPECT_FALSE(runner->RunOnce().ok());
  EXPECT_EQ(observer->calls,
            (std::vector<std::string>{"started 0",
                                      "committed 0 bronze.events@1 restricted.pii@1 silver.events@1 "
                                      "silver.quarantine@1 system.batches@1 gold",
                                      "started 1", "failed 1 RESOURCE_EXHAUSTED"}));
}

TEST_F(PipelineTest, ProfileDirGetsEveryStatementOfTheBatch) {
  AppendEvents(30);
  TempDir profiles;
  options_.config.Set("processor.profile_dir", profiles.Sub("p"));
  PipelineOptions options = PipelineOptions::FromConfig(options_.config);
  options.lake_dir = options_.lake_dir;
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options, log_.get()));
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_EQ(r.bronze_rows, 30);
  // Each line: number, milliseconds, SQL; the writes' profiles are DuckDB's JSON.
  std::ifstream index(profiles.Sub("p/queries.tsv"));
  std::set<std::string> writes;
  for (std::string line; std::getline(index, line);) {
    const size_t tab = line.find('\t');
    for (const char* table : {"COPY (SELECT CAST(\"ingest_id\"", "COPY (SELECT CAST(\"event_id\""}) {
      if (line.find(table) == std::string::npos) continue;
      writes.insert(table);
      std::ifstream json(profiles.Sub("p/" + line.substr(0, tab) + ".json"));
      std::stringstream text;
      text << json.rdbuf();
      EXPECT_NE(text.str().find("\"latency\""), std::string::npos) << line;
    }
  }
  EXPECT_EQ(writes.size(), 2u);  // bronze.events' file and silver.events' files
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

TEST_F(PipelineTest, GoldRefreshWaitsForTheBacklogToDrain) {
  AppendEvents(100);
  options_.max_batch_events = 30;
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->Drain());
  ASSERT_GE(runner->next_batch_id(), 4);
  // The batches that left events in the log did not refresh Gold; the last one, which drained it, did.
  EXPECT_EQ(Count("SELECT count(*) FROM system.batches WHERE gold_ms IS NOT NULL"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM system.batches WHERE gold_ms IS NOT NULL AND batch_id = " +
                  std::to_string(runner->next_batch_id() - 1)),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM gold.fact_events"), 100);
  EXPECT_EQ(Count("SELECT count(*) FROM (SELECT DISTINCT session_id FROM silver.events) s "
                  "JOIN gold.fact_session_daily g USING (session_id)"),
            Count("SELECT count(DISTINCT session_id) FROM silver.events"));

  // More arrives: a batch that drains the log refreshes at once.
  AppendEvents(10, 100);
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_FALSE(r.backlog);
  EXPECT_FALSE(r.gold_deferred);
  EXPECT_EQ(Count("SELECT count(*) FROM gold.fact_events"), 110);
}

TEST_F(PipelineTest, GoldCatchUpIntervalZeroRefreshesEveryBatch) {
  AppendEvents(70);
  options_.max_batch_events = 30;
  options_.gold_catch_up_interval_us = 0;
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_TRUE(r.backlog);
  EXPECT_FALSE(r.gold_deferred);
  EXPECT_EQ(Count("SELECT count(*) FROM gold.fact_events"), 30);
  ASSERT_OK(runner->Drain());
  EXPECT_EQ(Count("SELECT count(*) FROM system.batches WHERE gold_ms IS NULL"), 0);
}

// A setting of the wrong type is refused when the processor starts, also one
// the Silver stage reads only when the first batch opens it.
TEST_F(PipelineTest, SettingsOfTheWrongTypeAreRefusedAtStart) {
  options_.config.Set("silver.session_timeout", "half an hour");
  auto runner = MicroBatchRunner::Create(options_, log_.get());
  ASSERT_FALSE(runner.ok());
  EXPECT_EQ(runner.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(runner.status().message().find("silver.session_timeout = 'half an hour' is not a duration"),
            std::string::npos)
      << runner.status();
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


TEST_F(PipelineTest, SilverAndQuarantineCommittedWithBronze) {
  options_.config.Set("silver.quarantine_min_batch", "1000");  // a small batch never fails
  AppendPayloads({
      R"({"type":"track","event":"Order Completed","userId":"u1","anonymousId":"a1","messageId":"m1",
          "timestamp":"2024-05-01T11:59:00Z","sentAt":"2024-05-01T11:59:10Z",
          "properties":{"order_id":"o1","total":20,"revenue":15.5,"currency":"USD","note":"mail me: x@y.example"},
          "context":{"ip":"8.8.8.8","page":{"url":"https://shop.example/checkout?utm_source=news&utm_medium=email&utm_campaign=may",
                     "referrer":"https://www.google.com/search?q=x"}}})",
      R"({"type":"page","anonymousId":"a2","messageId":"m2","properties":{"path":"/","url":"https://shop.example/"}})",
      R"({"type":"track","userId":"u1","messageId":"m3"})",
      R"({"type":"track","event":"X","messageId":"m4"})",
      R"({"type":"track","event":"X","userId":"u","messageId":"m5","timestamp":"2026-13-45T25:61:00Z"})",
      R"({"type":"track","event":"Order Completed","userId":"u1","messageId":"m1"})",  // duplicate
  });
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_EQ(r.events, 6);
  EXPECT_EQ(r.bronze_rows, 6);
  EXPECT_EQ(r.silver_rows, 2);
  EXPECT_EQ(r.quarantined, 3);
  EXPECT_EQ(r.duplicates, 1);
  EXPECT_EQ(r.pii_redactions, 1);

  auto silver = Query(
      "SELECT event_id, event_type, event_name, CAST(event_ts AS TIMESTAMP), user_key, platform, page_path, referrer_host, utm_source, "
      "campaign_id IS NOT NULL, ip_hash, revenue, currency, properties, event_date, geo_country "
      "FROM silver.events ORDER BY event_id");
  ASSERT_EQ(silver.row_count(), 2u);
  EXPECT_EQ(silver.GetString(0, 0), "m1");
  EXPECT_EQ(silver.GetString(0, 2), "order_completed");
  EXPECT_EQ(silver.GetString(0, 3).substr(0, 19), "2024-05-01 11:59:50");  // received − (sentAt − timestamp)
  EXPECT_EQ(silver.GetString(0, 4), "u1");
  EXPECT_EQ(silver.GetString(0, 5), "web");
  EXPECT_EQ(silver.GetString(0, 6), "/checkout");
  EXPECT_EQ(silver.GetString(0, 7), "www.google.com");
  EXPECT_EQ(silver.GetString(0, 8), "news");
  EXPECT_EQ(silver.GetString(0, 9), "true");
  EXPECT_EQ(silver.GetString(0, 10).size(), 64u);  // HMAC-SHA256 hex, never the raw IP
  EXPECT_DOUBLE_EQ(silver.GetDouble(0, 11), 15.5);
  EXPECT_EQ(silver.GetString(0, 12), "USD");
  EXPECT_EQ(silver.GetString(0, 13).find("x@y.example"), std::string::npos);
  EXPECT_NE(silver.GetString(0, 13).find("\"note\":\"mail me: hmac:"), std::string::npos);
  EXPECT_EQ(silver.GetString(0, 14), "2024-05-01");
  EXPECT_EQ(silver.GetString(1, 1), "page");
  EXPECT_EQ(silver.GetString(1, 2), "page_viewed");
  EXPECT_EQ(silver.GetString(1, 4), "anon:a2");
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE ip_hash LIKE '%203.0.113%' OR properties LIKE "
                  "'%203.0.113%'"),
            0);

  auto q = Query("SELECT payload, error_code, error_detail, received_date, ingest_id, contract_version "
                 "FROM silver.quarantine ORDER BY error_code");
  ASSERT_EQ(q.row_count(), 3u);
  EXPECT_EQ(q.GetString(0, 1), "bad_timestamp");
  EXPECT_EQ(q.GetString(1, 1), "missing_event");
  EXPECT_EQ(q.GetString(2, 1), "no_identity");
  EXPECT_NE(q.GetString(2, 0).find("\"m4\""), std::string::npos);  // the payload exactly as in bronze
  EXPECT_EQ(q.GetString(0, 3), "2024-05-01");
  EXPECT_TRUE(q.IsNull(0, 5));

  auto b = Query("SELECT silver_rows, quarantined, duplicates, quarantine_by_code FROM system.batches");
  ASSERT_EQ(b.row_count(), 1u);
  EXPECT_EQ(b.GetInt64(0, 0), 2);
  EXPECT_EQ(b.GetInt64(0, 1), 3);
  EXPECT_EQ(b.GetInt64(0, 2), 1);
  EXPECT_EQ(b.GetString(0, 3), R"({"bad_timestamp":1,"missing_event":1,"no_identity":1})");
}

TEST_F(PipelineTest, ContractViolationsCarryTheContractVersion) {
  ASSERT_OK_AND_ASSIGN(options_.config, Config::Parse(R"([silver]
quarantine_min_batch = 1000
[[contracts]]
event = "Product Added"
version = 3
schema = '''{"type":"object","required":["product_id"],"properties":{"product_id":{"type":"string"},"price":{"type":"number","minimum":0}}}'''
)"));
  options_.config.Set("privacy.key_file", JoinPath(key_dir_.path(), "pii.key"));
  AppendPayloads({
      R"({"type":"track","event":"Product Added","userId":"u","messageId":"ok","properties":{"product_id":"p","price":1}})",
      R"({"type":"track","event":"Product Added","userId":"u","messageId":"bad","properties":{"product_id":7,"price":"1"}})",
  });
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_EQ(r.silver_rows, 1);
  auto q = Query("SELECT error_code, contract_version, error_detail FROM silver.quarantine");
  ASSERT_EQ(q.row_count(), 1u);
  EXPECT_EQ(q.GetString(0, 0), "schema_violation");
  EXPECT_EQ(q.GetInt64(0, 1), 3);
  EXPECT_EQ(q.GetString(0, 2), "properties.price: expected number, got string");  // first violation, by key
}

TEST_F(PipelineTest, BatchOverQuarantineThresholdCommitsNothingUntilAccepted) {
  std::vector<std::string> payloads;
  for (int i = 0; i < 100; i++) {
    payloads.push_back(i % 5 == 0 ? R"({"type":"track","event":"E","messageId":"bad)" + std::to_string(i) + R"("})"
                                  : R"({"type":"track","event":"E","userId":"u","messageId":"ok)" +
                                        std::to_string(i) + R"("})");
  }
  AppendPayloads(payloads);  // 20% without identity
  Gauge* refusing = MetricsRegistry::Global()->GetGauge("clicklake_processor_quarantine_refused", "");
  {
    ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
    for (int attempt = 0; attempt < 2; attempt++) {
      auto r = runner->RunOnce();
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
      EXPECT_EQ(refusing->value(), 1);
    }
    EXPECT_EQ(runner->next_batch_id(), 0);
  }
  // Nothing of the batch in any table, bronze included.
  for (const char* t : {"bronze/events", "silver/events", "silver/quarantine", "system/batches"})
    EXPECT_FALSE(FileSystem::Default()->Exists(JoinPath(JoinPath(dir_.path(), t), "_delta_log"))) << t;
  {
    ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
    EXPECT_EQ(runner->RunOnce().status().code(), StatusCode::kResourceExhausted);  // still refused after restart
  }
  options_.accept_quarantine = true;  // clicklake process --accept-quarantine
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_EQ(r.quarantined, 20);
  EXPECT_EQ(refusing->value(), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM bronze.events"), 100);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events"), 80);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.quarantine WHERE error_code = 'no_identity'"), 20);
  // The release covers one batch: the next bad batch is refused again.
  AppendPayloads(payloads);
  EXPECT_EQ(runner->RunOnce().status().code(), StatusCode::kResourceExhausted);
}

TEST_F(PipelineTest, DuplicatesAcrossBatchesKeepTheFirstCopy) {
  AppendPayloads({R"({"type":"track","event":"A","userId":"u","messageId":"m1","properties":{"copy":1}})"});
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->Drain());
  AppendPayloads({R"({"type":"track","event":"A","userId":"u","messageId":"m1","properties":{"copy":2}})",
                  R"({"type":"track","event":"A","userId":"u","messageId":"m2"})"},
                 1714564900000000LL);
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_EQ(r.duplicates, 1);
  EXPECT_EQ(r.silver_rows, 1);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events"), 2);
  EXPECT_EQ(Query("SELECT properties FROM silver.events WHERE event_id = 'm1'").GetString(0, 0), R"({"copy":1})");
  EXPECT_EQ(Count("SELECT sum(duplicates) FROM system.batches"), 1);
}

TEST_F(PipelineTest, CrashBetweenBronzeAndSilverCommitsLeavesEveryEventOnce) {
  std::vector<std::string> payloads;
  for (int i = 0; i < 90; i++) {
    payloads.push_back(R"({"type":"track","event":"E","userId":"u)" + std::to_string(i % 4) + R"(","messageId":"m)" +
                       std::to_string(i % 80) + R"("})");  // 10 duplicates
  }
  payloads.push_back(R"({"type":"track","event":"E","messageId":"noid"})");
  AppendPayloads(payloads);
  options_.max_batch_events = 40;
  int64_t batches = 0;
  for (int round = 0; round < 2; round++) {
    {
      ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
      ASSERT_OK(runner->Drain());
      batches = runner->next_batch_id();
      ASSERT_GE(batches, 3);
    }
    // Round 0: the process died after bronze (and the dedup state) but before
    // silver.events of its last batch. Round 1: after silver.events, before
    // silver.quarantine and system.batches.
    if (round == 0) DropLatestCommit("silver/events");
    DropLatestCommit("silver/quarantine");
    DropLatestCommit("system/batches");
    ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
    EXPECT_EQ(runner->next_batch_id(), batches - 1);  // the last batch re-runs
    ASSERT_OK(runner->Drain());
    EXPECT_EQ(runner->next_batch_id(), batches);
    EXPECT_EQ(Count("SELECT count(*) FROM bronze.events"), 91);
    EXPECT_EQ(Count("SELECT count(*) FROM silver.events"), 80);
    EXPECT_EQ(Count("SELECT count(DISTINCT event_id) FROM silver.events"), 80);
    EXPECT_EQ(Count("SELECT count(*) FROM silver.quarantine"), 1);
    EXPECT_EQ(Count("SELECT count(*) FROM system.batches"), batches);
    EXPECT_EQ(Count("SELECT sum(duplicates) FROM system.batches"), 10);
  }
}

// Simulated Segment traffic with duplicates, malformed, PII, late and
// out-of-order events: silver.events holds every unique valid event once,
// quarantine every malformed one with its reason, revenue reconciles.
TEST_F(PipelineTest, SimulatedTrafficLandsExactlyOnce) {
  simulate::SimulatorOptions so;
  so.users = 40;
  so.seed = 7;
  so.start_time_us = 1714550400000000LL;
  so.duplicate_rate = 0.03;
  so.malformed_rate = 0.01;
  so.pii_rate = 0.02;
  so.late_rate = 0.01;
  so.out_of_order_rate = 0.02;
  simulate::TrafficGenerator gen(so);
  std::map<std::string, std::string> expected_codes = {{"malformed:no_identity", "no_identity"},
                                                       {"malformed:missing_event", "missing_event"},
                                                       {"malformed:bad_timestamp", "bad_timestamp"},
                                                       {"malformed:wrong_types", "schema_violation"}};
  std::set<std::string> valid_ids;
  std::map<std::string, int64_t> codes;
  double revenue = 0;
  int64_t total = 0, pii = 0;
  for (int b = 0; b < 60; b++) {
    simulate::GeneratedBatch batch = gen.NextBatch();
    int64_t sent = batch.DefaultSentAtMicros();
    std::vector<std::string> payloads;
    for (const auto& e : batch.events) {
      payloads.push_back(batch.EventPayload(e, sent));
      std::string code;
      for (const auto& f : e.faults) {
        if (expected_codes.count(f)) code = expected_codes[f];
        if (f == "pii") pii++;
      }
      if (!code.empty()) {
        codes[code]++;
      } else if (valid_ids.insert(e.message_id).second && e.has_revenue) {
        revenue += e.revenue;
      }
    }
    total += static_cast<int64_t>(payloads.size());
    AppendPayloads(payloads, sent + 80000);
  }
  ASSERT_OK_AND_ASSIGN(options_.config, Config::Parse(R"([[contracts]]
event = "product_added"
version = 1
schema = '''{"properties":{"product_id":{"type":"string"},"price":{"type":"number"},"quantity":{"type":"integer"}}}'''
)"));
  options_.config.Set("privacy.key_file", JoinPath(key_dir_.path(), "pii.key"));
  options_.config.Set("silver.quarantine_min_batch", "1000000");
  options_.max_batch_events = 400;
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->Drain());
  ASSERT_GT(pii, 0);
  EXPECT_EQ(Count("SELECT count(*) FROM bronze.events"), total);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events"), static_cast<int64_t>(valid_ids.size()));
  EXPECT_EQ(Count("SELECT count(DISTINCT event_id) FROM silver.events"), static_cast<int64_t>(valid_ids.size()));
  auto q = Query("SELECT error_code, count(*) FROM silver.quarantine GROUP BY 1 ORDER BY 1");
  std::map<std::string, int64_t> got;
  for (size_t i = 0; i < q.row_count(); i++) got[q.GetString(i, 0)] = q.GetInt64(i, 1);
  EXPECT_EQ(got, codes);
  EXPECT_NEAR(Query("SELECT sum(revenue) FROM silver.events").GetDouble(0, 0), revenue, 0.01);
  auto leaks = Query("SELECT properties FROM silver.events WHERE regexp_matches(properties, "
                     "'[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\\.[A-Za-z]{2,}') OR properties LIKE '%4111 1111%' OR "
                     "properties LIKE '%415-555%'");
  EXPECT_EQ(leaks.row_count(), 0u) << (leaks.row_count() ? leaks.GetString(0, 0) : "");
  EXPECT_GT(Count("SELECT sum(pii_redactions) FROM system.batches"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM silver.events WHERE event_name = 'order_completed'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE device_type IS NULL AND platform <> 'server'"), 0);
}


// Identity stitching across batches: a later identify re-keys the anonymous
// id's earlier events and joins their session; a 2-hour gap starts a new one.
TEST_F(PipelineTest, LateIdentityLinkReKeysEarlierEventsAndSessions) {
  AppendPayloads({
      R"({"type":"page","anonymousId":"a1","messageId":"p1","timestamp":"2024-05-01T10:00:00Z"})",
      R"({"type":"page","anonymousId":"a1","messageId":"p2","timestamp":"2024-05-01T10:10:00Z"})",
      R"({"type":"page","anonymousId":"a2","messageId":"p3","timestamp":"2024-05-01T10:11:00Z"})",
  });
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->Drain());
  EXPECT_EQ(Count("SELECT count(DISTINCT session_id) FROM silver.events WHERE user_key = 'anon:a1'"), 1);
  AppendPayloads({
      R"({"type":"identify","userId":"u1","anonymousId":"a1","messageId":"i1","timestamp":"2024-05-01T10:20:00Z"})",
      R"({"type":"track","event":"Signed In","userId":"u1","messageId":"t1","timestamp":"2024-05-01T12:30:00Z"})",
  });
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_GT(r.silver_rewritten, 0);
  auto rows = Query("SELECT event_id, user_key, session_id, session_event_index FROM silver.events ORDER BY event_id");
  ASSERT_EQ(rows.row_count(), 5u);
  // i1, p1, p2, p3, t1
  EXPECT_EQ(rows.GetString(1, 1), "u1");  // p1 re-keyed
  EXPECT_EQ(rows.GetString(2, 1), "u1");  // p2 re-keyed
  EXPECT_EQ(rows.GetString(3, 1), "anon:a2");
  EXPECT_EQ(rows.GetString(0, 2), rows.GetString(1, 2));  // identify takes the open session
  EXPECT_EQ(rows.GetString(1, 2), rows.GetString(2, 2));
  EXPECT_TRUE(rows.IsNull(0, 3));
  EXPECT_EQ(rows.GetInt64(1, 3), 1);
  EXPECT_EQ(rows.GetInt64(2, 3), 2);
  EXPECT_NE(rows.GetString(4, 2), rows.GetString(1, 2));  // 2 h later: a new session
  EXPECT_EQ(rows.GetInt64(4, 3), 1);
  EXPECT_EQ(rows.GetString(1, 2).size(), 32u);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE session_id IS NULL"), 0);
}

// DESIGN.md §6: lateness is measured against the newest event time seen, not
// against received_at; a late event is kept and flagged, joins no session and
// re-sessions nothing.
TEST_F(PipelineTest, LateIsMeasuredAgainstTheNewestEventTimeSeen) {
  const int64_t t = 1714564800000000LL;  // 2024-05-01T12:00:00Z
  AppendPayloads({
      R"({"type":"page","userId":"u1","messageId":"a1","timestamp":"2024-05-01T12:00:00Z"})",
      R"({"type":"page","userId":"u1","messageId":"a2","timestamp":"2024-05-01T12:10:00Z"})",
  }, t);
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->Drain());
  // Received 5 days later: 10 h behind the newest event time is not late (the
  // old received_at rule would have flagged it); 80 h behind is.
  AppendPayloads({
      R"({"type":"page","userId":"u1","messageId":"b1","timestamp":"2024-05-01T02:00:00Z"})",
      R"({"type":"page","userId":"u1","messageId":"late1","timestamp":"2024-04-28T04:00:00Z"})",
      R"({"type":"identify","userId":"u1","messageId":"late2","timestamp":"2024-04-28T04:05:00Z"})",
  }, t + 120LL * 3600 * 1000000);
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_EQ(r.late, 2);
  auto rows = Query("SELECT event_id, is_late, session_id, session_event_index FROM silver.events ORDER BY event_id");
  ASSERT_EQ(rows.row_count(), 5u);  // a1 a2 b1 late1 late2
  EXPECT_EQ(rows.GetString(0, 1), "false");
  EXPECT_EQ(rows.GetString(2, 1), "false");
  EXPECT_EQ(rows.GetString(3, 1), "true");
  EXPECT_EQ(rows.GetString(4, 1), "true");
  EXPECT_EQ(rows.GetInt64(3, 3), 1);  // a session of its own
  EXPECT_TRUE(rows.IsNull(4, 2));      // a late identify takes no session
  EXPECT_EQ(Count("SELECT count(*) FROM system.batches WHERE late_events = 2"), 1);
  // Within a batch the watermark advances in log order; a later batch starts
  // from the persisted watermark (12:10), also after a restart.
  runner.reset();
  AppendPayloads({R"({"type":"page","userId":"u2","messageId":"c1","timestamp":"2024-04-28T12:09:00Z"})",
                  R"({"type":"page","userId":"u2","messageId":"c2","timestamp":"2024-04-28T12:11:00Z"})"},
                 t);
  ASSERT_OK_AND_ASSIGN(runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK_AND_ASSIGN(r, runner->RunOnce());
  EXPECT_EQ(r.late, 1);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE is_late AND event_id = 'c1'"), 1);
}

// The incremental merge writes only the rows whose user_key or session
// changed: their old versions are marked deleted where they are (deletion
// vectors), their files are not rewritten; new rows go to new files.
TEST_F(PipelineTest, SessionChangeMarksOnlyTheChangedRowsDeleted) {
  AppendPayloads({
      R"({"type":"page","userId":"a","messageId":"a1","timestamp":"2024-05-01T10:00:00Z"})",
      R"({"type":"page","userId":"a","messageId":"a2","timestamp":"2024-05-01T10:05:00Z"})",
      R"({"type":"page","userId":"b","messageId":"b1","timestamp":"2024-05-02T10:00:00Z"})",
      R"({"type":"page","userId":"b","messageId":"b2","timestamp":"2024-05-02T10:20:00Z"})",
      R"({"type":"page","userId":"b","messageId":"b3","timestamp":"2024-05-02T10:40:00Z"})",
  }, 1714730400000000LL);  // received 2024-05-03
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->Drain());
  ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open());
  ASSERT_OK_AND_ASSIGN(auto table, delta::Table::Open(JoinPath(dir_.path(), kSilverEventsTable), db.get()));
  auto files_of = [&](const delta::Snapshot& snap, const std::string& date) {
    std::map<std::string, int64_t> out;  // path → deleted rows
    for (const auto& f : snap.files)
      if (f.partition_values.at("event_date") == date)
        out[f.path] = f.deletion_vector ? f.deletion_vector->cardinality : 0;
    return out;
  };
  ASSERT_OK_AND_ASSIGN(delta::Snapshot before, table->LoadSnapshot());
  EXPECT_EQ(before.protocol.min_reader_version, 3);
  ASSERT_EQ(files_of(before, "2024-05-01").size(), 1u);
  ASSERT_EQ(files_of(before, "2024-05-02").size(), 1u);

  // b0 lands inside b's session: b2 and b3 are renumbered. Their old versions
  // are deleted in b's file (which stays), a's file is untouched.
  AppendPayloads({R"({"type":"page","userId":"b","messageId":"b0","timestamp":"2024-05-02T10:10:00Z"})"},
                 1714730400000000LL);
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_EQ(r.silver_rewritten, 2);
  ASSERT_OK_AND_ASSIGN(delta::Snapshot after, table->LoadSnapshot());
  EXPECT_EQ(files_of(after, "2024-05-01"), files_of(before, "2024-05-01"));
  const auto b_before = files_of(before, "2024-05-02");
  const auto b_after = files_of(after, "2024-05-02");
  ASSERT_EQ(b_after.size(), 2u);  // the old file with a DV, one new file (b0, b2, b3)
  EXPECT_EQ(b_after.at(b_before.begin()->first), 2);
  ASSERT_OK_AND_ASSIGN(auto history, table->History(1));
  EXPECT_NE(history[0].operation_metrics_json.find("\"numOutputRows\":\"3\""), std::string::npos)
      << history[0].operation_metrics_json;
  EXPECT_NE(history[0].operation_metrics_json.find("\"numCopiedRows\":\"0\""), std::string::npos)
      << history[0].operation_metrics_json;
  auto rows = Query("SELECT event_id, session_event_index FROM silver.events WHERE user_key = 'b' ORDER BY event_ts");
  ASSERT_EQ(rows.row_count(), 4u);
  for (size_t i = 0; i < 4; i++) EXPECT_EQ(rows.GetInt64(i, 1), static_cast<int64_t>(i) + 1);
  EXPECT_EQ(Count("SELECT count(DISTINCT session_id) FROM silver.events WHERE user_key = 'b'"), 1);

  // An event continuing a's session at its end changes no existing row: no
  // deletion vector, one new file.
  AppendPayloads({R"({"type":"page","userId":"a","messageId":"a3","timestamp":"2024-05-01T10:30:00Z"})"},
                 1714730400000000LL);
  ASSERT_OK_AND_ASSIGN(r, runner->RunOnce());
  EXPECT_EQ(r.silver_rewritten, 0);
  ASSERT_OK_AND_ASSIGN(delta::Snapshot last, table->LoadSnapshot());
  EXPECT_EQ(files_of(last, "2024-05-02"), b_after);
  EXPECT_EQ(files_of(last, "2024-05-01").size(), 2u);
  ASSERT_OK_AND_ASSIGN(history, table->History(1));
  EXPECT_NE(history[0].operation_metrics_json.find("\"numUpdatedRows\":\"0\""), std::string::npos)
      << history[0].operation_metrics_json;
  rows = Query("SELECT session_id, session_event_index FROM silver.events WHERE user_key = 'a' ORDER BY event_ts");
  ASSERT_EQ(rows.row_count(), 3u);
  EXPECT_EQ(rows.GetString(2, 0), rows.GetString(0, 0));  // the seed's session continues
  EXPECT_EQ(rows.GetInt64(2, 1), 3);

  // Background compaction folds each slice's small files (purging the DV):
  // same rows, one file per slice, dataChange=false.
  const std::string all = "SELECT event_id, user_key, session_id, session_event_index FROM silver.events ORDER BY ALL";
  const std::string rows_before = Query(all).ToCsv();
  ASSERT_OK(runner->Compact(INT64_MAX));
  ASSERT_OK_AND_ASSIGN(delta::Snapshot compacted, table->LoadSnapshot());
  EXPECT_EQ(compacted.version, last.version + 1);
  EXPECT_EQ(files_of(compacted, "2024-05-01").size(), 1u);
  ASSERT_EQ(files_of(compacted, "2024-05-02").size(), 1u);
  EXPECT_EQ(files_of(compacted, "2024-05-02").begin()->second, 0);
  EXPECT_EQ(Query(all).ToCsv(), rows_before);
  ASSERT_OK_AND_ASSIGN(history, table->History(1));
  EXPECT_EQ(history[0].operation, "OPTIMIZE");
  ASSERT_OK(runner->Compact(INT64_MAX));  // nothing left to do: no commit
  ASSERT_OK_AND_ASSIGN(delta::Snapshot again, table->LoadSnapshot());
  EXPECT_EQ(again.version, compacted.version);
}

// A slice that gains a few rows per batch (late events into an earlier slice)
// is not rewritten after every batch: its small files are folded once the
// rows outside the largest reach half of it, or once there are 16 of them.
TEST_F(PipelineTest, CompactionWaitsUntilASliceHasGainedEnough) {
  auto page = [](const std::string& user, int minute) {
    return R"({"type":"page","userId":")" + user + R"(","messageId":")" + user + "-" + std::to_string(minute) +
           R"(","timestamp":"2024-05-01T10:)" + (minute < 10 ? "0" : "") + std::to_string(minute) + R"(:00Z"})";
  };
  std::vector<std::string> first;
  for (int i = 0; i < 40; i++) first.push_back(page("u" + std::to_string(i), i % 60));
  AppendPayloads(first, 1714730400000000LL);
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->Drain());
  ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open());
  ASSERT_OK_AND_ASSIGN(auto table, delta::Table::Open(JoinPath(dir_.path(), kSilverEventsTable), db.get()));
  auto files = [&]() {
    auto snap = table->LoadSnapshot();
    EXPECT_TRUE(snap.ok());
    return snap.ok() ? snap->files.size() : 0;
  };
  ASSERT_EQ(files(), 1u);
  // One new user's event per batch, in the same slice: no existing row changes.
  for (int b = 1; b < 15; b++) {
    SCOPED_TRACE("batch " + std::to_string(b));
    AppendPayloads({page("late" + std::to_string(b), 30)}, 1714730400000000LL);
    ASSERT_OK(runner->Drain());
    ASSERT_OK(runner->Compact(INT64_MAX));
    // 40 rows in the largest file; the others add up to b < 20: not yet.
    ASSERT_EQ(files(), static_cast<size_t>(b + 1));
  }
  // The 16th small file: folded into one.
  AppendPayloads({page("late15", 30)}, 1714730400000000LL);
  ASSERT_OK(runner->Drain());
  ASSERT_EQ(files(), 16u);
  ASSERT_OK(runner->Compact(INT64_MAX));
  EXPECT_EQ(files(), 1u);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events"), 55);

  // Rows outside the largest file reaching half of it (28 of 55): folded at once.
  std::vector<std::string> half;
  for (int i = 0; i < 28; i++) half.push_back(page("h" + std::to_string(i), 45));
  AppendPayloads(half, 1714730400000000LL);
  ASSERT_OK(runner->Drain());
  ASSERT_EQ(files(), 2u);
  ASSERT_OK(runner->Compact(INT64_MAX));
  EXPECT_EQ(files(), 1u);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events"), 83);
}

// A processor busy every trigger (no idle time before the next one) still
// compacts silver.events after its batches, bounded: small files do not pile up.
TEST_F(PipelineTest, BusyProcessorCompactsSilverAfterItsBatches) {
  AppendPayloads({
      R"({"type":"page","userId":"a","messageId":"a1","timestamp":"2024-05-01T10:00:00Z"})",
      R"({"type":"page","userId":"b","messageId":"b1","timestamp":"2024-05-01T10:01:00Z"})",
      R"({"type":"page","userId":"c","messageId":"c1","timestamp":"2024-05-01T10:02:00Z"})",
  }, 1714730400000000LL);
  options_.trigger_us = 1000;                       // every batch overruns its trigger
  options_.compaction_min_idle_us = 3'600'000'000;  // so the between-batches compaction never runs
  options_.max_batch_events = 1;                    // one event, one file per batch
  options_.gold = false;
  for (const int64_t budget : {int64_t{0}, options_.auto_compaction_bytes}) {
    SCOPED_TRACE("auto_compaction_bytes " + std::to_string(budget));
    TempDir lake;
    PipelineOptions o = options_;
    o.lake_dir = lake.path();
    o.auto_compaction_bytes = budget;
    ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(o, log_.get()));
    std::thread t([&] { EXPECT_OK(runner->Run()); });
    ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open());
    auto rows = [&]() -> int64_t {  // silver.events' live rows, -1 before it exists
      auto table = delta::Table::Open(JoinPath(lake.path(), kSilverEventsTable), db.get());
      if (!table.ok()) return -1;
      auto snap = (*table)->LoadSnapshot();
      if (!snap.ok()) return -1;
      int64_t n = 0;
      for (const auto& f : snap->files) {
        simdjson::dom::parser parser;
        int64_t records = 0;
        if (parser.parse(f.stats).get_object()["numRecords"].get(records)) return -1;
        n += records - (f.deletion_vector ? f.deletion_vector->cardinality : 0);
      }
      return n;
    };
    for (int i = 0; i < 1200 && rows() < 3; i++) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    runner->Stop();
    t.join();
    ASSERT_OK_AND_ASSIGN(auto table, delta::Table::Open(JoinPath(lake.path(), kSilverEventsTable), db.get()));
    ASSERT_OK_AND_ASSIGN(delta::Snapshot snap, table->LoadSnapshot());
    ASSERT_OK_AND_ASSIGN(auto history, table->History(100));
    int optimizes = 0;
    for (const auto& h : history) optimizes += h.operation == "OPTIMIZE";
    EXPECT_EQ(rows(), 3);
    if (budget == 0) {
      EXPECT_EQ(optimizes, 0);
      EXPECT_EQ(snap.files.size(), 3u);
    } else {
      EXPECT_GE(optimizes, 1);
      EXPECT_LE(snap.files.size(), 2u);
    }
  }
}

// lake.deletion_vectors = false: reader 1 / writer 2 tables; a change then
// rewrites the files holding changed rows (copy-on-write), same rows.
TEST_F(PipelineTest, DeletionVectorsOffKeepsCopyOnWriteTables) {
  options_.deletion_vectors = false;
  AppendPayloads({
      R"({"type":"page","userId":"b","messageId":"b1","timestamp":"2024-05-02T10:00:00Z"})",
      R"({"type":"page","userId":"b","messageId":"b2","timestamp":"2024-05-02T10:20:00Z"})",
  }, 1714730400000000LL);
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->Drain());
  AppendPayloads({R"({"type":"page","userId":"b","messageId":"b0","timestamp":"2024-05-02T09:50:00Z"})"},
                 1714730400000000LL);
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_EQ(r.silver_rewritten, 2);
  for (const char* t : {kSilverEventsTable, kBronzeTable}) {
    ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open());
    ASSERT_OK_AND_ASSIGN(auto table, delta::Table::Open(JoinPath(dir_.path(), t), db.get()));
    ASSERT_OK_AND_ASSIGN(delta::Snapshot snap, table->LoadSnapshot());
    EXPECT_EQ(snap.protocol.min_reader_version, 1) << t;
    EXPECT_EQ(snap.protocol.min_writer_version, 2) << t;
    for (const auto& f : snap.files) EXPECT_FALSE(f.deletion_vector.has_value()) << t;
  }
  auto rows = Query("SELECT event_id, session_event_index FROM silver.events ORDER BY event_ts");
  ASSERT_EQ(rows.row_count(), 3u);
  for (size_t i = 0; i < 3; i++) EXPECT_EQ(rows.GetInt64(i, 1), static_cast<int64_t>(i) + 1);
}

// Write amplification (issue: run all day): over 20 micro-batches of steady
// simulated traffic with duplicates, late and out-of-order events, every
// silver.events commit writes at most 2 × (new rows + rows whose values
// changed). Rows written are counted from the commit's new data files;
// changed rows by comparing the table before and after. Copy-on-write
// (rewriting the files holding changed rows) fails this: checked on
// 2026-12-07 with lake.deletion_vectors = false, e.g. 1,726 rows written for
// 293 new and 54 changed.
TEST_F(PipelineTest, SilverWritesAreProportionalToTheChange) {
  simulate::SimulatorOptions so;
  so.users = 300;
  so.seed = 5;
  so.start_time_us = 1714550400000000LL;
  so.duplicate_rate = 0.02;
  so.late_rate = 0.01;
  so.out_of_order_rate = 0.03;
  simulate::TrafficGenerator gen(so);
  options_.config.Set("silver.quarantine_min_batch", "1000000");
  options_.gold = false;
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open());
  ASSERT_OK_AND_ASSIGN(auto conn, db->Connect());
  std::unique_ptr<delta::Table> table;
  delta::Snapshot prev;
  std::string prev_rows_table;
  int64_t total_new = 0, total_written = 0;
  for (int b = 0; b < 20; b++) {
    for (int k = 0; k < 10; k++) {
      simulate::GeneratedBatch batch = gen.NextBatch();
      const int64_t sent = batch.DefaultSentAtMicros();
      std::vector<std::string> payloads;
      for (const auto& e : batch.events) payloads.push_back(batch.EventPayload(e, sent));
      AppendPayloads(payloads, sent + 80000);
    }
    ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
    ASSERT_GE(r.batch_id, 0);
    if (!table) {
      ASSERT_OK_AND_ASSIGN(table, delta::Table::Open(JoinPath(dir_.path(), kSilverEventsTable), db.get()));
    }
    ASSERT_OK_AND_ASSIGN(delta::Snapshot snap, table->LoadSnapshot());
    std::set<std::string> old_paths;
    for (const auto& f : prev.files) old_paths.insert(f.path);
    int64_t written = 0;
    for (const auto& f : snap.files) {
      if (old_paths.count(f.path)) continue;
      const size_t pos = f.stats.find("\"numRecords\":");
      ASSERT_NE(pos, std::string::npos);
      written += std::strtoll(f.stats.c_str() + pos + 13, nullptr, 10);
    }
    // Rows whose (user_key, session) changed, from the table itself.
    ASSERT_OK_AND_ASSIGN(std::string scan, delta::ScanSql(table->path(), snap));
    const std::string now = "rows_" + std::to_string(b);
    ASSERT_OK(conn->Execute("CREATE TABLE " + now + " AS SELECT event_id, user_key, session_id, "
                            "session_event_index FROM (" + scan + ")"));
    int64_t changed = 0;
    if (!prev_rows_table.empty()) {
      ASSERT_OK_AND_ASSIGN(auto c, conn->Query("SELECT count(*) FROM " + now + " n JOIN " + prev_rows_table +
                                               " o USING (event_id) WHERE n.user_key IS DISTINCT FROM o.user_key OR "
                                               "n.session_id IS DISTINCT FROM o.session_id OR n.session_event_index "
                                               "IS DISTINCT FROM o.session_event_index"));
      changed = c.GetInt64(0, 0);
    }
    EXPECT_LE(written, 2 * (r.silver_rows + changed))
        << "batch " << b << ": " << written << " rows written for " << r.silver_rows << " new and " << changed
        << " changed";
    EXPECT_EQ(r.silver_rewritten, changed) << "batch " << b;
    total_new += r.silver_rows;
    total_written += written;
    prev = std::move(snap);
    prev_rows_table = now;
  }
  EXPECT_GT(total_new, 2000);
  EXPECT_LT(total_written, 2 * total_new);
}

// Identity links come from the state store (dedup.h), written before the
// silver.events commit: a batch re-run after a crash between the two still
// re-keys what its first run did; a state store without identity state (a lake
// that predates it) is initialized from silver.events once.
TEST_F(PipelineTest, IdentityStateSurvivesReRunsAndIsBuiltForOldLakes) {
  for (int variant = 0; variant < 2; variant++) {
    SCOPED_TRACE(variant == 0 ? "re-run after the state write" : "state store rebuilt");
    TempDir lake;
    config_.Set("lake.dir", lake.path());
    OpenLog();
    options_.lake_dir = lake.path();
    AppendPayloads({
        R"({"type":"page","anonymousId":"a1","messageId":"p1","timestamp":"2024-05-01T10:00:00Z"})",
        R"({"type":"page","anonymousId":"a1","messageId":"p2","timestamp":"2024-05-01T10:10:00Z"})",
        R"({"type":"page","userId":"u9","anonymousId":"a9","messageId":"p9","timestamp":"2024-05-01T10:10:00Z"})",
    });
    {
      ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
      ASSERT_OK(runner->Drain());
    }
    if (variant == 1) std::filesystem::remove_all(JoinPath(lake.path(), "_clicklake/state/dedup"));
    AppendPayloads({
        R"({"type":"identify","userId":"u1","anonymousId":"a1","messageId":"i1","timestamp":"2024-05-01T10:20:00Z"})",
        R"({"type":"page","anonymousId":"a9","messageId":"q9","timestamp":"2024-05-01T10:30:00Z"})",
    });
    {
      ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
      ASSERT_OK(runner->Drain());
    }
    if (variant == 0) {
      // The process died after the state write, before silver.events' commit.
      DropLatestCommitIn(JoinPath(JoinPath(lake.path(), "silver/events"), "_delta_log"));
      ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
      EXPECT_EQ(runner->next_batch_id(), 1);
      ASSERT_OK(runner->Drain());
    }
    auto db = engine::Database::Open();
    auto conn = (*db)->Connect();
    ASSERT_OK(delta::RegisterLakeViews(conn->get(), lake.path(), std::nullopt));
    ASSERT_OK_AND_ASSIGN(auto rows, (*conn)->Query("SELECT event_id, user_key, session_event_index FROM silver.events "
                                                   "ORDER BY event_id"));
    ASSERT_EQ(rows.row_count(), 5u);  // i1 p1 p2 p9 q9
    EXPECT_EQ(rows.GetString(1, 1), "u1");
    EXPECT_EQ(rows.GetString(2, 1), "u1");
    EXPECT_EQ(rows.GetString(3, 1), "u9");
    EXPECT_EQ(rows.GetString(4, 1), "u9");  // a9's link from the first batch, looked up
    EXPECT_EQ(rows.GetInt64(4, 2), 2);       // continues p9's session
  }
}

// DESIGN.md §7: raw PII that the policy keeps (privacy.restricted_fields,
// default traits.email and traits.phone) goes only to restricted.pii,
// committed with the batch's txn; silver.events keeps only its HMAC.
TEST_F(PipelineTest, RestrictedFieldsGoOnlyToRestrictedPii) {
  AppendPayloads({
      R"({"type":"identify","userId":"u1","messageId":"i1","timestamp":"2024-05-01T10:00:00Z",
          "traits":{"email":"Ann@Example.com","phone":"+1 555 0100 200","plan":"pro"}})",
      R"({"type":"track","event":"Signed Up","userId":"u1","messageId":"t1","timestamp":"2024-05-01T10:01:00Z",
          "properties":{"email":"ann@example.com","coupon":"X1"}})",
  });
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->Drain());
  auto pii = Query("SELECT event_id, user_key, event_date::VARCHAR, field, value FROM restricted.pii ORDER BY field");
  ASSERT_EQ(pii.row_count(), 2u);
  EXPECT_EQ(pii.GetString(0, 0), "i1");
  EXPECT_EQ(pii.GetString(0, 1), "u1");
  EXPECT_EQ(pii.GetString(0, 2), "2024-05-01");
  EXPECT_EQ(pii.GetString(0, 3), "traits.email");
  EXPECT_EQ(pii.GetString(0, 4), "Ann@Example.com");
  EXPECT_EQ(pii.GetString(1, 3), "traits.phone");
  EXPECT_EQ(pii.GetString(1, 4), "+1 555 0100 200");
  // silver.events: the hash, never the raw value.
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE properties LIKE '%Ann@Example.com%' "
                  "OR properties LIKE '%555 0100%' OR properties ILIKE '%ann@example.com%'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE event_id = 'i1' AND "
                  "json_extract_string(properties, '$.email') LIKE 'hmac:%' AND "
                  "json_extract_string(properties, '$.phone') LIKE 'hmac:%' AND "
                  "json_extract_string(properties, '$.plan') = 'pro'"), 1);
  // Committed with the batch's txn, like the other tables.
  ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open());
  ASSERT_OK_AND_ASSIGN(auto table, delta::Table::Open(JoinPath(dir_.path(), kRestrictedPiiTable), db.get()));
  ASSERT_OK_AND_ASSIGN(delta::Snapshot snap, table->LoadSnapshot());
  EXPECT_EQ(snap.app_txn_versions.at(options_.app_id), 0);

  // A policy can restrict properties too; an unknown prefix is refused.
  PipelineOptions strict = options_;
  strict.config.Set("privacy.restricted_fields", "properties.coupon");
  AppendPayloads({R"({"type":"track","event":"Ordered","userId":"u2","messageId":"t2",
      "timestamp":"2024-05-01T11:00:00Z","properties":{"coupon":"SECRET-9"}})"});
  runner.reset();
  ASSERT_OK_AND_ASSIGN(runner, MicroBatchRunner::Create(strict, log_.get()));
  ASSERT_OK(runner->Drain());
  EXPECT_EQ(Count("SELECT count(*) FROM restricted.pii WHERE field = 'properties.coupon' AND value = 'SECRET-9'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE properties LIKE '%SECRET-9%'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE event_id = 't2' AND "
                  "json_extract_string(properties, '$.coupon') LIKE 'hmac:%'"), 1);
  strict.config.Set("privacy.restricted_fields", "context.ip");
  AppendPayloads({R"({"type":"track","event":"E","userId":"u3","messageId":"t3"})"});
  runner.reset();
  ASSERT_OK_AND_ASSIGN(runner, MicroBatchRunner::Create(strict, log_.get()));
  EXPECT_EQ(runner->RunOnce().status().code(), StatusCode::kInvalidArgument);
}

// The property of DESIGN.md §6: the same traffic (duplicates, late, out of
// order, malformed, PII, identity changes) delivered in any order and batch
// boundaries gives the same silver.events as one full rebuild.
TEST_F(PipelineTest, AnyDeliveryOrderEqualsFullRebuild) {
  simulate::SimulatorOptions so;
  so.users = 25;
  so.seed = 11;
  so.start_time_us = 1714550400000000LL;
  so.duplicate_rate = 0.03;
  so.malformed_rate = 0.005;
  so.pii_rate = 0.01;
  so.late_rate = 0.02;
  so.out_of_order_rate = 0.05;
  simulate::TrafficGenerator gen(so);
  std::vector<RawEvent> events;
  std::map<std::string, size_t> first;  // messageId → index of the original
  // The guarantee covers events within allowed_lateness of the newest event
  // time seen: in a shuffled delivery any event may come after the newest one,
  // so the simulator's events older than the lateness bound (its "one in ten
  // late events is older than 72 h") are left out here; their handling is
  // tested in LateIsMeasuredAgainstTheNewestEventTimeSeen.
  std::vector<simulate::GeneratedBatch> batches;
  int64_t newest = 0;
  for (int b = 0; b < 40; b++) {
    batches.push_back(gen.NextBatch());
    for (const auto& e : batches.back().events) newest = std::max(newest, e.true_time_us);
  }
  for (const auto& batch : batches) {
    int64_t sent = batch.DefaultSentAtMicros();
    for (const auto& e : batch.events) {
      if (e.true_time_us < newest - 70LL * 3600 * 1000000) continue;
      if (!e.duplicate_of.empty() && first.count(e.duplicate_of)) {
        events.push_back(events[first[e.duplicate_of]]);  // the same bytes again
        continue;
      }
      RawEvent raw;
      raw.received_at_us = sent + 80000;
      raw.source = "web";
      raw.protocol = "segment";
      raw.client_ip = "203.0.113.7";
      raw.payload = batch.EventPayload(e, sent);
      first.emplace(e.message_id, events.size());
      events.push_back(std::move(raw));
    }
  }
  const std::string columns =
      "event_id, event_type, event_name, CAST(event_ts AS TIMESTAMP), CAST(original_ts AS TIMESTAMP), "
      "CAST(sent_at AS TIMESTAMP), CAST(received_at AS TIMESTAMP), event_date, user_id, anonymous_id, user_key, "
      "session_id, session_event_index, platform, page_url, page_path, page_title, referrer_url, referrer_host, "
      "utm_source, utm_medium, utm_campaign, utm_term, utm_content, campaign_id, experiment_id, experiment_variant, "
      "device_type, device_family, browser_family, browser_version, os_family, os_version, geo_country, geo_region, "
      "geo_city, ip_hash, revenue, currency, properties, source, is_future_dated, is_late";
  // Delivers `order` in chunks of random size, a micro-batch (of a random cap) after each.
  auto deliver = [&](const std::vector<size_t>& order, std::mt19937* rng, int max_chunk) -> std::string {
    TempDir lake;
    Config config;
    config.Set("lake.dir", lake.path());
    config.Set("log.partitions", "3");
    auto log = log::OpenEventLog(config);
    EXPECT_TRUE(log.ok());
    PipelineOptions options;
    options.lake_dir = lake.path();
    options.config.Set("privacy.key_file", JoinPath(key_dir_.path(), "pii.key"));
    options.config.Set("silver.quarantine_min_batch", "1000000");
    auto runner = MicroBatchRunner::Create(options, log->get());
    EXPECT_TRUE(runner.ok()) << runner.status();
    size_t i = 0;
    while (i < order.size()) {
      size_t n = std::min(order.size() - i, static_cast<size_t>(1 + (*rng)() % max_chunk));
      std::vector<log::LogEntry> entries;
      for (size_t j = i; j < i + n; j++) {
        log::LogEntry entry;
        entry.key = std::to_string(order[j] % 7);
        EncodeRawEvent(events[order[j]], &entry.value);
        entries.push_back(std::move(entry));
      }
      EXPECT_OK((*log)->Append(std::move(entries)));
      i += n;
      EXPECT_OK((*runner)->Drain());
      // Background compaction between some batches: rows unchanged.
      if ((*rng)() % 3 == 0) EXPECT_OK((*runner)->Compact(INT64_MAX));
    }
    auto db = engine::Database::Open();
    auto conn = (*db)->Connect();
    EXPECT_OK(delta::RegisterLakeViews(conn->get(), lake.path(), std::nullopt));
    auto rows = (*conn)->Query("SELECT " + columns + " FROM silver.events ORDER BY ALL");
    EXPECT_TRUE(rows.ok()) << rows.status();
    auto sessions = (*conn)->Query("SELECT count(DISTINCT session_id) FROM silver.events");
    EXPECT_GT(sessions->GetInt64(0, 0), 10);
    return rows->ToCsv();
  };
  std::vector<size_t> in_order(events.size());
  for (size_t i = 0; i < events.size(); i++) in_order[i] = i;
  std::mt19937 rng(42);
  const std::string rebuild = deliver(in_order, &rng, static_cast<int>(events.size()));
  ASSERT_GT(rebuild.size(), 1000u);
  for (int trial = 0; trial < 2; trial++) {
    std::vector<size_t> order = in_order;
    std::shuffle(order.begin(), order.end(), rng);
    std::string incremental = deliver(order, &rng, 150);
    if (incremental != rebuild) {
      // Show the first rows that differ.
      std::istringstream a(rebuild), b(incremental);
      std::string la, lb;
      int shown = 0;
      while (shown < 3 && (static_cast<bool>(std::getline(a, la)) | static_cast<bool>(std::getline(b, lb)))) {
        if (la != lb) {
          ADD_FAILURE() << "rebuild:     " << la << "\nincremental: " << lb;
          shown++;
        }
      }
    }
    EXPECT_TRUE(incremental == rebuild) << "trial " << trial << ": silver.events differs from the full rebuild";
  }
}


// Flattening: other properties become prop_<snake_path> columns by schema
// evolution; a column keeps its first type and conflicting values stay only in
// `properties` (counted).
TEST_F(PipelineTest, PropertiesAreFlattenedWithSchemaEvolution) {
  AppendPayloads({R"({"type":"track","event":"Product Viewed","userId":"u","messageId":"m1",
      "properties":{"productId":"p-1","price":9.5,"in_stock":true,"dims":{"Width cm":3},"tags":["a"],"revenue":1}})"});
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->Drain());
  AppendPayloads({R"({"type":"track","event":"Product Viewed","userId":"u","messageId":"m2",
      "properties":{"productId":7,"price":10,"color":"red"}})"},
                 1714564900000000LL);
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_EQ(r.prop_type_conflicts, 1);  // productId: a number in a string column
  EXPECT_EQ(r.new_prop_columns, std::vector<std::string>{"prop_color (string)"});  // for the schema_drift check
  auto rows = Query("SELECT event_id, prop_product_id, prop_price, prop_in_stock, prop_dims_width_cm, prop_color, "
                    "properties FROM silver.events ORDER BY event_id");
  ASSERT_EQ(rows.row_count(), 2u);
  EXPECT_EQ(rows.GetString(0, 1), "p-1");
  EXPECT_DOUBLE_EQ(rows.GetDouble(0, 2), 9.5);
  EXPECT_EQ(rows.GetString(0, 3), "true");
  EXPECT_DOUBLE_EQ(rows.GetDouble(0, 4), 3);
  EXPECT_TRUE(rows.IsNull(0, 5));
  EXPECT_TRUE(rows.IsNull(1, 1));  // the conflicting value...
  EXPECT_NE(rows.GetString(1, 6).find("\"productId\":7"), std::string::npos);  // ...stays in properties
  EXPECT_DOUBLE_EQ(rows.GetDouble(1, 2), 10);
  EXPECT_EQ(rows.GetString(1, 5), "red");
  // Well-known fields and arrays are not flattened.
  EXPECT_EQ(Count("SELECT count(*) FROM (DESCRIBE silver.events) WHERE column_name IN ('prop_revenue', 'prop_tags')"),
            0);
  ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open());
  auto table = delta::Table::Open(JoinPath(dir_.path(), "silver/events"), db.get());
  ASSERT_OK(table.status());
  ASSERT_OK_AND_ASSIGN(delta::Snapshot snap, (*table)->LoadSnapshot());
  ASSERT_NE(snap.schema().Find("prop_price"), nullptr);
  EXPECT_EQ(snap.schema().Find("prop_price")->type, "double");
  EXPECT_EQ(snap.schema().Find("prop_product_id")->type, "string");
  EXPECT_EQ(Count("SELECT sum(prop_type_conflicts) FROM system.batches"), 1);
}


// A flattened column holds the value as `properties` stores it: scrubbed of
// PII, never the raw text (rows without PII take the parsed values as they are).
TEST_F(PipelineTest, FlattenedPropertiesAreScrubbed) {
  AppendPayloads({R"({"type":"track","event":"Note Left","userId":"u","messageId":"m1",
      "properties":{"note":"mail me: Jane.Doe@example.com","n":1}})",
                  R"({"type":"track","event":"Note Left","userId":"u","messageId":"m2",
      "properties":{"note":"no contact here","n":2}})"});
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->Drain());
  auto rows = Query("SELECT event_id, prop_note, prop_n FROM silver.events ORDER BY event_id");
  ASSERT_EQ(rows.row_count(), 2u);
  EXPECT_EQ(rows.GetString(0, 1).rfind("mail me: hmac:", 0), 0u) << rows.GetString(0, 1);
  EXPECT_EQ(rows.GetString(0, 1).find("Jane"), std::string::npos);
  EXPECT_DOUBLE_EQ(rows.GetDouble(0, 2), 1);
  EXPECT_EQ(rows.GetString(1, 1), "no contact here");
  EXPECT_DOUBLE_EQ(rows.GetDouble(1, 2), 2);
}

TEST_F(PipelineTest, SnowplowEventsLandInSilver) {
  AppendPayloads({R"({"e":"pv","eid":"sp-1","duid":"d-1","p":"web","url":"https://shop.example/a?utm_source=x&utm_medium=y&utm_campaign=z","page":"A","dtm":"1714564790000","stm":"1714564795000"})",
                  R"({"e":"se","eid":"sp-2","duid":"d-1","uid":"u-1","se_ca":"shop","se_ac":"Add To Basket","dtm":"1714564791000"})",
                  R"({"e":"tr","eid":"sp-3","uid":"u-1","tr_id":"o-1","tr_tt":"42.5","tr_cu":"EUR","dtm":"1714564792000"})",
                  R"({"e":"pv","eid":"sp-4","dtm":"1714564792000"})"},
                 1714564800000000LL, "snowplow");
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK_AND_ASSIGN(BatchResult r, runner->RunOnce());
  EXPECT_EQ(r.silver_rows, 3);
  EXPECT_EQ(r.quarantine_by_code, (std::map<std::string, int64_t>{{"no_identity", 1}}));
  auto rows = Query("SELECT event_id, event_name, user_key, utm_campaign, revenue, currency, "
                    "CAST(event_ts AS TIMESTAMP), session_id IS NOT NULL FROM silver.events ORDER BY event_id");
  ASSERT_EQ(rows.row_count(), 3u);
  EXPECT_EQ(rows.GetString(0, 1), "page_viewed");
  EXPECT_EQ(rows.GetString(0, 2), "u-1");  // d-1 is linked to u-1 by sp-2
  EXPECT_EQ(rows.GetString(0, 3), "z");
  EXPECT_EQ(rows.GetString(0, 6), "2024-05-01 11:59:55");  // collector − (stm − dtm)
  EXPECT_EQ(rows.GetString(1, 1), "add_to_basket");
  EXPECT_EQ(rows.GetString(2, 1), "order_completed");
  EXPECT_DOUBLE_EQ(rows.GetDouble(2, 4), 42.5);
  EXPECT_EQ(rows.GetString(2, 5), "EUR");
  EXPECT_EQ(rows.GetString(2, 7), "true");
}

// Backfill: rebuilding Silver from Bronze gives exactly the rows incremental
// processing produced (many small batches over 4 log partitions, with
// duplicates, late, out-of-order and malformed events), in one BACKFILL commit
// per table; it refuses while a processor holds the state lock.
TEST_F(PipelineTest, BackfillEqualsIncrementalProcessing) {
  simulate::SimulatorOptions so;
  so.users = 30;
  so.seed = 11;
  so.start_time_us = 1714550400000000LL;
  so.duplicate_rate = 0.05;
  so.malformed_rate = 0.02;
  so.late_rate = 0.03;
  so.out_of_order_rate = 0.05;
  so.pii_rate = 0.02;
  simulate::TrafficGenerator gen(so);
  for (int b = 0; b < 40; b++) {
    simulate::GeneratedBatch batch = gen.NextBatch();
    int64_t sent = batch.DefaultSentAtMicros();
    std::vector<std::string> payloads;
    for (const auto& e : batch.events) {
      payloads.push_back(batch.EventPayload(e, sent));
    }
    AppendPayloads(payloads, sent + 80000 + b * 3600000000LL);  // received over 40 hours: several dates
  }
  ASSERT_OK_AND_ASSIGN(options_.config, Config::Parse(R"([[contracts]]
event = "product_added"
version = 1
schema = '''{"properties":{"product_id":{"type":"string"},"price":{"type":"number"}}}'''
)"));
  options_.config.Set("privacy.key_file", JoinPath(key_dir_.path(), "pii.key"));
  options_.config.Set("silver.quarantine_min_batch", "1000000");
  options_.max_batch_events = 60;
  const std::string rows_sql = "SELECT string_agg(t::VARCHAR, '\n' ORDER BY t::VARCHAR) FROM silver.events t";
  const std::string quarantine_sql =
      "SELECT string_agg(q::VARCHAR, '\n' ORDER BY q::VARCHAR) FROM silver.quarantine q";
  BackfillOptions bo;
  bo.lake_dir = dir_.path();
  bo.config = options_.config;
  bo.from_date = "2024-04-01";
  bo.to_date = "2024-05-31";
  std::string incremental, incremental_q;
  {
    ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
    ASSERT_OK(runner->Drain());
    ASSERT_GT(Count("SELECT count(*) FROM system.batches"), 10);
    ASSERT_GT(Count("SELECT count(DISTINCT event_date) FROM silver.events"), 1);
    ASSERT_GT(Count("SELECT count(*) FROM silver.quarantine"), 0);
    incremental = Query(rows_sql).GetString(0, 0);
    incremental_q = Query(quarantine_sql).GetString(0, 0);
    // The running processor holds the state lock: the backfill refuses.
    auto refused = RunBackfill(bo);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status();
  }
  ASSERT_FALSE(incremental.empty());

  // Drop Silver's rows of one date first, to show the backfill restores them.
  const std::string some_date = Query("SELECT min(event_date)::VARCHAR FROM silver.events").GetString(0, 0);
  {
    ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open());
    ASSERT_OK_AND_ASSIGN(auto table, delta::Table::Open(JoinPath(dir_.path(), kSilverEventsTable), db.get()));
    auto txn = table->StartTransaction();
    for (const auto& f : txn->read_snapshot().files)
      if (f.partition_values.at("event_date") == some_date) txn->RemoveFile(f);
    txn->SetOperation("DELETE", {});
    ASSERT_OK(txn->Commit().status());
  }
  ASSERT_NE(Query(rows_sql).GetString(0, 0), incremental);

  std::vector<std::string> progress;
  bo.progress = [&](const std::string& line) { progress.push_back(line); };
  ASSERT_OK_AND_ASSIGN(BackfillResult result, RunBackfill(bo));
  EXPECT_EQ(Query(rows_sql).GetString(0, 0), incremental);
  EXPECT_EQ(Query(quarantine_sql).GetString(0, 0), incremental_q);
  EXPECT_EQ(result.silver_rows, Count("SELECT count(*) FROM silver.events"));
  EXPECT_EQ(result.quarantine_rows, Count("SELECT count(*) FROM silver.quarantine"));
  EXPECT_EQ(result.bronze_rows, Count("SELECT count(*) FROM bronze.events"));
  ASSERT_EQ(progress.size(), 4u);
  EXPECT_NE(progress[0].find("bronze rows"), std::string::npos) << progress[0];

  // One BACKFILL commit per table, the tables' newest.
  for (const char* t : {kSilverEventsTable, kQuarantineTable}) {
    ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open());
    ASSERT_OK_AND_ASSIGN(auto table, delta::Table::Open(JoinPath(dir_.path(), t), db.get()));
    ASSERT_OK_AND_ASSIGN(auto history, table->History(2));
    ASSERT_EQ(history.size(), 2u);
    EXPECT_EQ(history[0].operation, "BACKFILL") << t;
    EXPECT_NE(history[1].operation, "BACKFILL") << t;
    EXPECT_EQ(history[0].version, t == kSilverEventsTable ? result.silver_version : result.quarantine_version);
  }

  // A one-date backfill replaces only that date, with the same rows.
  bo.from_date = bo.to_date = some_date;
  ASSERT_OK_AND_ASSIGN(BackfillResult one, RunBackfill(bo));
  EXPECT_EQ(one.silver_rows, Count("SELECT count(*) FROM silver.events WHERE event_date = DATE '" + some_date + "'"));
  EXPECT_LT(one.silver_rows, result.silver_rows);
  EXPECT_EQ(Query(rows_sql).GetString(0, 0), incremental);

  bo.from_date = "2024-05-02";
  bo.to_date = "2024-05-01";
  EXPECT_EQ(RunBackfill(bo).status().code(), StatusCode::kInvalidArgument);

  // A batch committed to bronze but not yet to system.batches (a crash): refused
  // until the processor finishes it.
  DropLatestCommit("system/batches");
  bo.from_date = "2024-04-01";
  bo.to_date = "2024-05-31";
  auto half = RunBackfill(bo);
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(half.status().message().find("process --once"), std::string::npos) << half.status();
}

}  // namespace
}  // namespace clicklake::pipeline

// Erasure (`clicklake forget`) through the real processor: the acceptance
// tests of issue 18 — the person gone from every table, every retained
// version and the state; Gold equal to a rebuild without them; everyone else
// untouched; late events dropped; suppression; concurrency with processing.
#include "pipeline/erasure.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/sst_file_reader.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "common/test_util.h"
#include "delta/table.h"
#include "engine/engine.h"
#include "pipeline/gold/gold.h"
#include "pipeline/pipeline.h"
#include "pipeline/silver.h"
#include "pipeline/testing/person_lake.h"
#include "privacy/privacy.h"

namespace clicklake::pipeline {
namespace {

using clicklake::testing::TempDir;
using namespace clicklake::pipeline::testing;

class ErasureTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    config_.Set("lake.dir", dir_.path());
    config_.Set("log.partitions", "2");
    ASSERT_OK_AND_ASSIGN(log_, log::OpenEventLog(config_));
    options_.lake_dir = dir_.path();
    options_.deletion_vectors = GetParam();
    options_.compaction = false;
    options_.config.Set("lake.dir", dir_.path());
    options_.config.Set("privacy.key_file", key_dir_.path() + "/pii.key");
    options_.config.Set("lake.deletion_vectors", GetParam() ? "true" : "false");
    ASSERT_OK_AND_ASSIGN(db_, engine::Database::Open());
    ASSERT_OK_AND_ASSIGN(conn_, db_->Connect());
    ASSERT_OK(conn_->Execute("SET TimeZone = 'UTC'"));
  }

  void Views() { ASSERT_OK(delta::RegisterLakeViews(conn_.get(), dir_.path(), std::nullopt)); }
  int64_t Count(const std::string& sql) {
    Views();
    auto r = conn_->Query(engine::QualifySchemaReferences(sql, "system", "memory"));
    EXPECT_TRUE(r.ok()) << r.status() << "\n" << sql;
    return r.ok() ? r->GetInt64(0, 0, -1) : -1;
  }
  // The person's event and session ids (hashes: they do not carry the marker).
  std::vector<std::string> PersonIds() {
    Views();
    auto r = conn_->Query("SELECT DISTINCT event_id FROM silver.events t WHERE " + MentionsPerson({}) +
                          " UNION SELECT DISTINCT session_id FROM silver.events t WHERE session_id IS NOT NULL AND " +
                          MentionsPerson({}));
    EXPECT_OK(r.status());
    std::vector<std::string> ids;
    for (size_t i = 0; r.ok() && i < r->row_count(); i++) ids.push_back(r->GetString(i, 0));
    return ids;
  }
  // Per-person tables: hash of the others' rows.
  std::map<std::string, std::string> OthersHashes(const std::vector<std::string>& ids) {
    Views();
    std::map<std::string, std::string> out;
    for (const char* t : {"bronze.events", "silver.events", "silver.quarantine", "restricted.pii", "gold.fact_events",
                          "gold.fact_session_daily", "gold.dim_user", "gold.user_features_daily",
                          "gold.user_activity_daily"}) {
      out[t] = OthersHash(conn_.get(), t, ids);
    }
    return out;
  }
  std::map<std::string, std::string> GoldCsv(const std::string& lake) {
    auto conn = db_->Connect();
    EXPECT_OK(conn.status());
    EXPECT_OK((*conn)->Execute("SET TimeZone = 'UTC'"));
    EXPECT_OK(delta::RegisterLakeViews(conn->get(), lake, std::nullopt));
    std::map<std::string, std::string> out;
    for (const char* t : gold::kGoldTables) {
      std::string name = t;
      name[4] = '.';
      auto r = (*conn)->Query("SELECT * FROM " + name + " ORDER BY ALL");
      out[name] = r.ok() ? r->ToCsv() : "ERROR " + r.status().ToString();
    }
    return out;
  }

  // Every retained version of every table reads without them (or not at all: its files were purged).
  void ExpectNoVersionMentions(const std::vector<std::string>& tables, const std::vector<std::string>& ids) {
    int readable_versions = 0;
    for (const auto& t : tables) {
      ASSERT_OK_AND_ASSIGN(auto table, delta::Table::Open(dir_.Sub(t), db_.get()));
      ASSERT_OK_AND_ASSIGN(int64_t latest, table->LatestVersion());
      for (int64_t v = 0; v <= latest; v++) {
        auto snap = table->LoadSnapshot(v);
        if (!snap.ok()) continue;  // cleaned from the log
        auto scan = delta::ScanSql(dir_.Sub(t), *snap);
        ASSERT_OK(scan.status());
        auto r = conn_->Query("SELECT count(*) FROM (" + *scan + ") t WHERE " + MentionsPerson(ids));
        if (!r.ok()) {
          EXPECT_NE(r.status().message().find("No files found"), std::string::npos) << t << " v" << v << ": "
                                                                                     << r.status().ToString();
          continue;
        }
        readable_versions++;
        EXPECT_EQ(r->GetInt64(0, 0), 0) << t << " version " << v;
      }
    }
    EXPECT_GT(readable_versions, 0);
  }
  // The state store holds nothing of them.
  void ExpectNoStateEntries(const std::vector<std::string>& ids) {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options o;
    ASSERT_TRUE(rocksdb::DB::OpenForReadOnly(o, dir_.Sub("_clicklake/state/dedup"), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    int64_t entries = 0, theirs = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      entries++;
      const std::string k = it->key().ToString(), v = it->value().ToString();
      bool mentions = k.find(kPersonMarker) != std::string::npos || v.find(kPersonMarker) != std::string::npos;
      for (const auto& id : ids) mentions = mentions || k.find(id) != std::string::npos;
      theirs += mentions;
    }
    EXPECT_GT(entries, 20);
    EXPECT_EQ(theirs, 0);
    // Nor physically: forget compacts the range it deleted, so no SST file
    // and no write-ahead log still holds their ids (the MANIFEST may name a
    // deleted key as a file boundary until the store is next opened).
    auto mentions = [&](const std::string& bytes) {
      bool found = bytes.find(kPersonMarker) != std::string::npos;
      for (const auto& id : ids) found = found || bytes.find(id) != std::string::npos;
      return found;
    };
    int64_t sst_entries = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_.Sub("_clicklake/state/dedup"))) {
      const std::string ext = e.path().extension().string();
      if (ext == ".log") {  // write-ahead log records are not compressed
        ASSERT_OK_AND_ASSIGN(std::string bytes, FileSystem::Default()->ReadFile(e.path().string()));
        EXPECT_FALSE(mentions(bytes)) << e.path();
      } else if (ext == ".sst") {  // every entry of the file on its own (entries shadowed elsewhere too)
        rocksdb::SstFileReader reader(o);
        ASSERT_TRUE(reader.Open(e.path().string()).ok()) << e.path();
        std::unique_ptr<rocksdb::Iterator> entries(reader.NewIterator(rocksdb::ReadOptions()));
        for (entries->SeekToFirst(); entries->Valid(); entries->Next()) {
          sst_entries++;
          EXPECT_FALSE(mentions(entries->key().ToString() + "\n" + entries->value().ToString()))
              << e.path() << ": " << entries->key().ToString();
        }
      }
    }
    EXPECT_GT(sst_entries, 0);
  }
  // The processor executes the queued request (between batches); then no
  // data file of any table, no retained version and no state entry mentions them.
  void DrainAndExpectNoTrace(const std::string& request_id, const std::vector<std::string>& tables,
                             const std::vector<std::string>& ids) {
    {
      ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
      ASSERT_OK(runner->Drain());
    }
    EXPECT_FALSE(privacy::RequestQueue(dir_.path()).IsPending(request_id));
    for (const auto& t : tables) EXPECT_EQ(PhysicalHits(conn_.get(), dir_.Sub(t), ids), 0) << t;
    ExpectNoVersionMentions(tables, ids);
    ExpectNoStateEntries(ids);
  }
  // Gold equals a rebuild from the lake's Silver.
  void ExpectGoldEqualsRebuild() {
    TempDir copy;
    std::filesystem::create_directories(copy.path() + "/silver");
    std::filesystem::copy(dir_.Sub("silver/events"), copy.path() + "/silver/events",
                          std::filesystem::copy_options::recursive);
    ASSERT_OK_AND_ASSIGN(auto stage, gold::GoldStage::Open(options_.config, copy.path(), db_.get()));
    ASSERT_OK(stage->Rebuild(std::nullopt).status());
    auto rebuilt = GoldCsv(copy.path());
    auto incremental = GoldCsv(dir_.path());
    for (const auto& [name, csv] : rebuilt) EXPECT_EQ(incremental[name], csv) << name << " differs from a rebuild";
  }

  TempDir dir_, key_dir_;
  Config config_;
  PipelineOptions options_;
  std::unique_ptr<log::EventLog> log_;
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<engine::Connection> conn_;
};

TEST_P(ErasureTest, ForgetRemovesThePersonEverywhereAndNothingElse) {
  BuildPersonLake(options_, log_.get());
  const std::vector<std::string> ids = PersonIds();
  ASSERT_GE(ids.size(), 7u);  // 7 valid events (+ sessions)
  const auto tables = PersonalTables(dir_.path());
  // The person is there to begin with, in several tables and in older files.
  for (const char* t : {"bronze/events", "silver/events", "silver/quarantine", "restricted/pii", "gold/fact_events",
                        "gold/fact_session_daily", "gold/user_features_daily"}) {
    EXPECT_GT(PhysicalHits(conn_.get(), dir_.Sub(t), ids), 0) << t;
  }
  // The late batch's new user, and the day it adds to everyone's features.
  std::vector<std::string> ids_and_new = ids;
  ids_and_new.push_back("user-9");
  ids_and_new.push_back("2024-05-03");
  const auto others_before = OthersHashes(ids_and_new);

  // Forget by the user id alone: the anonymous ids and the email are found
  // through the identity links. The processor executes it between batches.
  privacy::PrivacyRequest request;
  request.subject.user_ids = {kPersonUser};
  request.reason = "GDPR Art. 17 request by mail";
  ASSERT_OK_AND_ASSIGN(std::string key, LoadPiiKey(SilverOptions::FromConfig(options_.config)));
  ASSERT_OK(SubmitPrivacyRequest(dir_.path(), key, &request));
  // A late event of the person (about a time before the request) and new
  // events of others arrive after the request.
  const std::vector<std::string> late = {
      R"({"type":"track","event":"Clicked","userId":"user-9","messageId":"late-1","timestamp":"2024-05-03T09:00:00Z"})",
      R"({"type":"track","event":"Order Completed","userId":"user-9","messageId":"late-2",
          "timestamp":"2024-05-03T09:05:00Z","properties":{"revenue":5}})",
      R"({"type":"track","userId":"user-9","messageId":"late-3"})",
      R"({"type":"track","event":"Product Viewed","anonymousId":"anon-zqx-2","messageId":"zqx-8",
          "timestamp":"2024-05-02T07:00:00Z"})"};
  AppendSegment(log_.get(), late, kDay1Us + 2 * kDayUs);
  // 1. No trace in any data file of any table (live, older versions,
  //    orphans), nor in any retained version (time travel), nor in the state.
  DrainAndExpectNoTrace(request.id, tables, ids);
  // 4. Gold equals a rebuild from the Silver without them; revenue reconciles.
  ExpectGoldEqualsRebuild();
  EXPECT_EQ(Count("SELECT round(sum(revenue))::BIGINT FROM gold.fact_session_daily"),
            Count("SELECT round(sum(revenue))::BIGINT FROM silver.events"));
  EXPECT_EQ(Count("SELECT round(sum(revenue))::BIGINT FROM silver.events"), 11 + 12 + 13 + 14 + 11 + 12 + 13 + 14 + 11 + 12 + 5);
  // 5. Everyone else untouched (the new user of the late batch aside); its events landed once.
  EXPECT_EQ(OthersHashes(ids_and_new), others_before);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE event_id LIKE 'late-%'"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM bronze.events WHERE json_extract_string(payload, '$.messageId') LIKE 'late-%'"), 3);
  // 6. The late event was dropped unstored and counted.
  EXPECT_EQ(Count("SELECT sum(suppressed) FROM system.batches"), 1);
  // 7. Receipts: system.erasures and the JSON receipt; no raw identifier in them or in the subject list.
  EXPECT_EQ(Count("SELECT count(*) FROM system.erasures WHERE request_id = '" + request.id +
                  "' AND status = 'completed' AND rows_removed > 0 AND files_purged > 0 AND "
                  "identifiers_resolved = 4 AND regulation_type = 'DELETE' AND reason = 'GDPR Art. 17 request by mail'"),
            1);
  ASSERT_OK_AND_ASSIGN(std::string receipt, ReadReceipt(dir_.path(), request.id));
  EXPECT_NE(receipt.find("\"silver.events\":{\"rows_removed\":"), std::string::npos) << receipt;
  EXPECT_NE(receipt.find("\"bronze.events\":{\"rows_removed\":7"), std::string::npos) << receipt;
  // Bronze only appends: every file of it is one resolution found holding
  // their rows or one it read clean, so the purge reads none of them again.
  const size_t bronze = receipt.find("\"bronze.events\":{");
  ASSERT_NE(bronze, std::string::npos);
  const std::string bronze_entry = receipt.substr(bronze, receipt.find('}', bronze) - bronze);
  EXPECT_NE(bronze_entry.find("\"files_read\":0"), std::string::npos) << bronze_entry;
  EXPECT_EQ(bronze_entry.find("\"files_purged\":0"), std::string::npos) << bronze_entry;
  EXPECT_EQ(Count("SELECT count(*) FROM system.erasures WHERE receipt_sha256 = '" + privacy::Sha256Hex(receipt) + "'"), 1);
  for (const std::string& text :
       {receipt, *FileSystem::Default()->ReadFile(privacy::SubjectList::Path(dir_.path()))}) {
    EXPECT_EQ(text.find(kPersonMarker), std::string::npos) << text;
  }
  ASSERT_OK_AND_ASSIGN(privacy::SubjectList list, privacy::SubjectList::Load(dir_.path()));
  EXPECT_EQ(list.entries().size(), 4u);  // the user id, both anonymous ids, the email: all resolved
  EXPECT_TRUE(std::filesystem::is_empty(privacy::RequestQueue(dir_.path()).dir()));

  // A second forget of the same person finds nothing and changes nothing.
  privacy::PrivacyRequest again;
  again.subject.emails = {"pat.zqx@example.com"};
  ASSERT_OK(SubmitPrivacyRequest(dir_.path(), key, &again));
  auto before_again = OthersHashes(ids);
  {
    ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
    ASSERT_OK(runner->Drain());
  }
  EXPECT_EQ(OthersHashes(ids), before_again);
  EXPECT_EQ(Count("SELECT rows_removed FROM system.erasures WHERE request_id = '" + again.id + "'"), 0);
}

// The other privacy operations, on the default (deletion vector) tables.
TEST_P(ErasureTest, AnonymizeKeepsTheRowsAndUnlinksThemFromThePerson) {
  BuildPersonLake(options_, log_.get());
  const std::vector<std::string> ids = PersonIds();
  ASSERT_GE(ids.size(), 7u);
  const auto tables = PersonalTables(dir_.path());
  const auto others_before = OthersHashes(ids);
  const char* kTotals =
      "SELECT (SELECT count(*) FROM bronze.events) || '/' || (SELECT count(*) FROM silver.events) || '/' || "
      "(SELECT count(*) FROM silver.quarantine) || '/' || (SELECT count(*) FROM gold.fact_events) || '/' || "
      "(SELECT round(sum(revenue), 2) FROM silver.events) || '/' || "
      "(SELECT round(sum(revenue), 2) FROM gold.fact_session_daily) || '/' || "
      "(SELECT count(DISTINCT session_id) FROM silver.events)";
  auto totals = [&] {
    Views();
    auto r = conn_->Query(kTotals);
    EXPECT_OK(r.status());
    return r.ok() ? r->GetString(0, 0) : "error";
  };
  const std::string totals_before = totals();
  const int64_t person_rows = Count("SELECT count(*) FROM silver.events t WHERE " + MentionsPerson({}));
  const int64_t person_sessions =
      Count("SELECT count(DISTINCT session_id) FROM silver.events t WHERE " + MentionsPerson({}));
  const int64_t person_identified =
      Count("SELECT count(*) FROM silver.events t WHERE user_id IS NOT NULL AND " + MentionsPerson({}));
  ASSERT_EQ(person_rows, 6);  // 7 events, one of them quarantined
  ASSERT_GE(person_identified, 2);
  ASSERT_GE(person_sessions, 2);
  const int64_t person_session_days = Count("SELECT count(*) FROM gold.fact_session_daily t WHERE " + MentionsPerson(ids));
  ASSERT_GE(person_session_days, 2);

  privacy::PrivacyRequest request;
  request.subject.user_ids = {kPersonUser};
  request.mode = privacy::ErasureMode::kAnonymize;
  ASSERT_OK_AND_ASSIGN(std::string key, LoadPiiKey(SilverOptions::FromConfig(options_.config)));
  ASSERT_OK(SubmitPrivacyRequest(dir_.path(), key, &request));
  // 1. No identifier of theirs in any data file of any table, nor in any retained version or the state.
  DrainAndExpectNoTrace(request.id, tables, ids);
  // 2. Their rows are still there, under one pseudonym, their sessions kept apart as before.
  Views();
  ASSERT_OK_AND_ASSIGN(auto pseudonyms,
                       conn_->Query("SELECT DISTINCT user_key FROM silver.events WHERE user_key LIKE 'anon-%'"));
  ASSERT_EQ(pseudonyms.row_count(), 1u);
  const std::string pseudonym = pseudonyms.GetString(0, 0);
  EXPECT_EQ(pseudonym.size(), 37u);  // anon- + 128 random bits
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE user_key = '" + pseudonym + "' AND user_id = '" +
                  pseudonym + "' AND ip_hash IS NULL"),
            person_identified);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE user_key = '" + pseudonym + "'"), person_rows);
  EXPECT_EQ(Count("SELECT count(DISTINCT session_id) FROM silver.events WHERE user_key = '" + pseudonym + "'"),
            person_sessions);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE user_key = '" + pseudonym +
                  "' AND (properties LIKE '%hmac:%' OR properties LIKE '%@%')"),
            0);
  // The raw payloads too: the identifiers replaced, traits and free-text PII gone, the revenue kept.
  EXPECT_EQ(Count("SELECT count(*) FROM bronze.events WHERE contains(payload, '" + pseudonym + "')"), 7);
  EXPECT_EQ(Count("SELECT count(*) FROM bronze.events WHERE contains(payload, '" + pseudonym +
                  "') AND (payload LIKE '%@%' OR payload LIKE '%555 0100%' OR payload LIKE '%\"traits\"%')"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM bronze.events WHERE contains(payload, '" + pseudonym +
                  "') AND json_extract_string(payload, '$.properties.revenue') = '99'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM bronze.events WHERE contains(payload, '" + pseudonym + "') AND " +
                  "json_extract_string(payload, '$.properties.note') = 'call me: [redacted] or [redacted]'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.quarantine WHERE contains(payload, '" + pseudonym + "')"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM restricted.pii t WHERE " + MentionsPerson(ids)), 0);
  // 3. Row counts, revenue and the session count unchanged; Gold equals a rebuild; the others untouched.
  EXPECT_EQ(totals(), totals_before);
  ExpectGoldEqualsRebuild();
  std::vector<std::string> ids_and_pseudonym = ids;
  ids_and_pseudonym.push_back(pseudonym);
  EXPECT_EQ(OthersHashes(ids_and_pseudonym), others_before);
  // Gold rows keyed by them are re-keyed to the pseudonym.
  EXPECT_EQ(Count("SELECT count(*) FROM gold.fact_session_daily WHERE user_key = '" + pseudonym + "'"),
            person_session_days);
  // 4. The pseudonym is stored nowhere but in the rows: no file outside the
  //    tables (data files and their logs' statistics) holds it.
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.path())) {
    if (!e.is_regular_file() || e.path().extension() == ".parquet" ||
        e.path().string().find("/_delta_log/") != std::string::npos) {
      continue;
    }
    ASSERT_OK_AND_ASSIGN(std::string text, FileSystem::Default()->ReadFile(e.path().string()));
    EXPECT_EQ(text.find(pseudonym), std::string::npos) << e.path();
  }
  // 5. The receipt says what was done.
  ASSERT_OK_AND_ASSIGN(std::string receipt, ReadReceipt(dir_.path(), request.id));
  EXPECT_NE(receipt.find("\"mode\":\"anonymize\""), std::string::npos) << receipt;
  EXPECT_NE(receipt.find("\"nature\":\"anonymized\""), std::string::npos) << receipt;
  EXPECT_NE(receipt.find("\"silver.events\":{\"rows_removed\":0,\"rows_anonymized\":" + std::to_string(person_rows)), std::string::npos) << receipt;
  EXPECT_EQ(Count("SELECT count(*) FROM system.erasures WHERE request_id = '" + request.id +
                  "' AND mode = 'anonymize' AND status = 'completed' AND files_purged > 0"),
            1);
}

TEST_P(ErasureTest, ForgetFindsRawEventsByTheirEventIdsAlone) {
  BuildPersonLake(options_, log_.get());
  // The person with more events than a payload is tested for as substrings,
  // and a raw event that names one of them only by its event id (sent again
  // without identifiers: Bronze keeps it).
  std::vector<std::string> many;
  for (int i = 0; i < 24; i++) {
    const std::string minute = (i < 10 ? "0" : "") + std::to_string(i);
    many.push_back(R"({"type":"track","event":"Clicked","userId":"person-zqx","messageId":"zqx-many-)" +
                   std::to_string(i) + R"(","timestamp":"2024-05-03T08:)" + minute + R"(:00Z"})");
  }
  AppendSegment(log_.get(), many, kDay1Us + 2 * kDayUs);
  AppendSegment(log_.get(),
                {R"({"type":"track","event":"Clicked","messageId":"zqx-many-3","timestamp":"2024-05-03T09:00:00Z"})"},
                kDay1Us + 2 * kDayUs + 60'000'000);
  {
    ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
    ASSERT_OK(runner->Drain());
  }
  const std::vector<std::string> ids = PersonIds();
  ASSERT_GT(ids.size(), 30u);
  EXPECT_EQ(Count("SELECT count(*) FROM bronze.events WHERE json_extract_string(payload, '$.messageId') = 'zqx-many-3' "
                  "AND json_extract_string(payload, '$.userId') IS NULL"),
            1);

  privacy::PrivacyRequest request;
  request.subject.user_ids = {kPersonUser};
  ASSERT_OK_AND_ASSIGN(std::string key, LoadPiiKey(SilverOptions::FromConfig(options_.config)));
  ASSERT_OK(SubmitPrivacyRequest(dir_.path(), key, &request));
  DrainAndExpectNoTrace(request.id, PersonalTables(dir_.path()), ids);
  EXPECT_EQ(Count("SELECT count(*) FROM bronze.events WHERE payload LIKE '%zqx-many-%'"), 0);
}

TEST_P(ErasureTest, PurgeDeletesTheFilesAKilledWriteLeft) {
  BuildPersonLake(options_, log_.get());
  // A write killed mid-way leaves a data file without a footer that no
  // version names: one from an hour ago (its writer is gone) and one from now
  // (perhaps still being written).
  std::string whole, partition;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.Sub("silver/events"))) {
    if (e.path().extension() == ".parquet") {
      ASSERT_OK_AND_ASSIGN(whole, FileSystem::Default()->ReadFile(e.path().string()));
      partition = e.path().parent_path().string();
      break;
    }
  }
  ASSERT_GT(whole.size(), 100u);
  const std::string old_torn = partition + "/part-00000-killed-an-hour-ago.c000.zstd.parquet";
  const std::string fresh_torn = partition + "/part-00000-being-written.c000.zstd.parquet";
  ASSERT_OK(FileSystem::Default()->WriteFile(old_torn, whole.substr(0, whole.size() / 2)));
  ASSERT_OK(FileSystem::Default()->WriteFile(fresh_torn, whole.substr(0, whole.size() / 2)));
  std::filesystem::last_write_time(old_torn, std::filesystem::file_time_type::clock::now() - std::chrono::hours(1));

  privacy::PrivacyRequest request;
  request.subject.user_ids = {kPersonUser};
  ASSERT_OK_AND_ASSIGN(std::string key, LoadPiiKey(SilverOptions::FromConfig(options_.config)));
  ASSERT_OK(SubmitPrivacyRequest(dir_.path(), key, &request));
  DrainAndExpectNoTrace(request.id, PersonalTables(dir_.path()), PersonIds());
  EXPECT_EQ(
      Count("SELECT count(*) FROM system.erasures WHERE request_id = '" + request.id + "' AND status = 'completed'"),
      1);
  EXPECT_FALSE(std::filesystem::exists(old_torn));
  EXPECT_TRUE(std::filesystem::exists(fresh_torn));
  ASSERT_OK_AND_ASSIGN(std::string receipt, ReadReceipt(dir_.path(), request.id));
  EXPECT_NE(receipt.find("silver.events: 1 file(s) without a Parquet footer"), std::string::npos) << receipt;
}

class PrivacyOpsTest : public ErasureTest {};

TEST_P(PrivacyOpsTest, SuppressionDropsNewEventsUntilLifted) {
  BuildPersonLake(options_, log_.get());
  ASSERT_OK_AND_ASSIGN(std::string key, LoadPiiKey(SilverOptions::FromConfig(options_.config)));
  privacy::PrivacyRequest suppress;
  suppress.type = privacy::RegulationType::kSuppress;
  suppress.subject.user_ids = {"user-2"};
  ASSERT_OK(SubmitPrivacyRequest(dir_.path(), key, &suppress));
  const int64_t rows_before = Count("SELECT count(*) FROM silver.events WHERE user_key = 'user-2'");
  ASSERT_GT(rows_before, 0);
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->Drain());  // executes the request: nothing deleted, anon-o2 suppressed too
  // Day 3 traffic: user-2's events (by user id, and by its anonymous id alone) are dropped.
  const int64_t day3 = kDay1Us + 2 * kDayUs;
  auto traffic = [](const std::string& tag) {
    return std::vector<std::string>{
        R"({"type":"track","event":"Clicked","userId":"user-2","messageId":"s2-)" + tag + R"(","timestamp":"2024-05-03T09:00:00Z"})",
        R"({"type":"page","anonymousId":"anon-o2","messageId":"s2a-)" + tag + R"(","timestamp":"2024-05-03T09:01:00Z"})",
        R"({"type":"track","event":"Clicked","userId":"user-3","messageId":"s3-)" + tag + R"(","timestamp":"2024-05-03T09:00:00Z"})",
    };
  };
  AppendSegment(log_.get(), traffic("a"), day3);
  ASSERT_OK(runner->Drain());
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE user_key = 'user-2'"), rows_before);
  EXPECT_EQ(Count("SELECT count(*) FROM bronze.events WHERE payload LIKE '%s2%-a%'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE event_id = 's3-a'"), 1);
  EXPECT_EQ(Count("SELECT sum(suppressed) FROM system.batches"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM system.erasures WHERE regulation_type = 'SUPPRESS' AND rows_removed = 0"), 1);
  // UNSUPPRESS lifts it (the anonymous id found by resolution too).
  privacy::PrivacyRequest lift;
  lift.type = privacy::RegulationType::kUnsuppress;
  lift.subject.user_ids = {"user-2"};
  ASSERT_OK(SubmitPrivacyRequest(dir_.path(), key, &lift));
  ASSERT_OK(runner->Drain());
  AppendSegment(log_.get(), traffic("b"), day3 + 3600000000LL);
  ASSERT_OK(runner->Drain());
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE event_id IN ('s2-b', 's2a-b', 's3-b')"), 3);
  EXPECT_EQ(Count("SELECT sum(suppressed) FROM system.batches"), 2);
}

TEST_P(PrivacyOpsTest, PurgeWaitsForTheSla) {
  BuildPersonLake(options_, log_.get());
  const std::vector<std::string> ids = PersonIds();
  options_.config.Set("privacy.erasure_sla", "30d");
  ASSERT_OK_AND_ASSIGN(std::string key, LoadPiiKey(SilverOptions::FromConfig(options_.config)));
  privacy::PrivacyRequest request;
  request.subject.anonymous_ids = {"anon-zqx-2"};
  ASSERT_OK(SubmitPrivacyRequest(dir_.path(), key, &request));
  {
    ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
    ASSERT_OK(runner->Drain());
  }
  // Deleted from the current versions at once; the old files wait for the SLA.
  Views();
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events t WHERE " + MentionsPerson(ids)), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM bronze.events t WHERE " + MentionsPerson(ids)), 0);
  EXPECT_GT(PhysicalHits(conn_.get(), dir_.Sub("silver/events"), ids), 0);
  EXPECT_TRUE(privacy::RequestQueue(dir_.path()).IsPending(request.id));
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("restricted/_privacy/receipts/" + request.id + ".pending.json")));
  // A day before it is due, nothing more happens; once due, the processor purges and completes it.
  FakeClock clock(SystemClock()->NowMicros() + 29 * kDayUs);
  {
    ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get(), FileSystem::Default(), &clock));
    ASSERT_OK(runner->Drain());
  }
  EXPECT_GT(PhysicalHits(conn_.get(), dir_.Sub("silver/events"), ids), 0);
  EXPECT_TRUE(privacy::RequestQueue(dir_.path()).IsPending(request.id));
  clock.Advance(kDayUs + 60'000'000);
  {
    ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get(), FileSystem::Default(), &clock));
    ASSERT_OK(runner->Drain());
  }
  for (const auto& t : PersonalTables(dir_.path())) EXPECT_EQ(PhysicalHits(conn_.get(), dir_.Sub(t), ids), 0) << t;
  EXPECT_FALSE(privacy::RequestQueue(dir_.path()).IsPending(request.id));
  EXPECT_OK(ReadReceipt(dir_.path(), request.id).status());
}

TEST_P(PrivacyOpsTest, ForgetWhileProcessingLosesAndDoublesNothing) {
  BuildPersonLake(options_, log_.get());
  options_.trigger_us = 50'000;
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  Status run_status;
  std::thread processor([&] { run_status = runner->Run(); });
  ASSERT_OK_AND_ASSIGN(std::string key, LoadPiiKey(SilverOptions::FromConfig(options_.config)));
  privacy::PrivacyRequest request;
  request.subject.user_ids = {kPersonUser};
  int appended = 0;
  for (int round = 0; round < 30; round++) {
    std::vector<std::string> batch;
    for (int i = 0; i < 5; i++) {
      const std::string id = "c" + std::to_string(round) + "-" + std::to_string(i);
      batch.push_back(R"({"type":"track","event":"Clicked","userId":"user-)" + std::to_string(i % 3 + 1) +
                      R"(","messageId":")" + id + R"(","timestamp":"2024-05-03T09:)" +
                      (round < 10 ? "0" : "") + std::to_string(round) + R"(:00Z"})");
      appended++;
    }
    AppendSegment(log_.get(), batch, kDay1Us + 2 * kDayUs + round * 1000000LL);
    if (round == 10) ASSERT_OK(SubmitPrivacyRequest(dir_.path(), key, &request));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int i = 0; i < 600 && privacy::RequestQueue(dir_.path()).IsPending(request.id); i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  runner->Stop();
  processor.join();
  ASSERT_OK(run_status);
  EXPECT_FALSE(privacy::RequestQueue(dir_.path()).IsPending(request.id));
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE event_id LIKE 'c%-%'"), appended);
  EXPECT_EQ(Count("SELECT count(DISTINCT event_id) FROM silver.events WHERE event_id LIKE 'c%-%'"), appended);
  EXPECT_EQ(Count("SELECT count(*) FROM bronze.events WHERE json_extract_string(payload, '$.messageId') LIKE 'c%-%'"),
            appended);
  const std::vector<std::string> no_ids;
  for (const auto& t : PersonalTables(dir_.path())) EXPECT_EQ(PhysicalHits(conn_.get(), dir_.Sub(t), no_ids), 0) << t;
  EXPECT_EQ(Count("SELECT count(*) FROM system.erasures WHERE request_id = '" + request.id + "'"), 1);
}

TEST_P(PrivacyOpsTest, RetentionRemovesExactlyTheExpiredPartitions) {
  BuildPersonLake(options_, log_.get());
  auto per_date = [&](const std::string& table, const std::string& column) {
    Views();
    auto r = conn_->Query("SELECT string_agg(d || ':' || n, ' ' ORDER BY d) FROM (SELECT " + column +
                          "::VARCHAR AS d, count(*) AS n FROM " + table + " GROUP BY ALL)");
    EXPECT_OK(r.status());
    return r.ok() ? r->GetString(0, 0) : "";
  };
  const std::string silver_before = per_date("silver.events", "event_date");
  const std::string pii_before = per_date("restricted.pii", "event_date");
  ASSERT_EQ(per_date("bronze.events", "event_date"), "2024-05-01:24 2024-05-02:33");
  ASSERT_EQ(per_date("silver.quarantine", "received_date"), "2024-05-01:5 2024-05-02:6");
  options_.config.Set("retention.bronze.events", "1d");
  options_.config.Set("retention.silver.quarantine", "36h");
  // 2024-05-03T12:00Z: partitions before 2024-05-02 (1 day) and 2024-05-02 (36 h → cut-off 2024-05-02) expire.
  FakeClock clock(kDay1Us + 2 * kDayUs + 2 * 3600'000'000LL);
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get(), FileSystem::Default(), &clock));
  ASSERT_OK(runner->Drain());
  EXPECT_EQ(per_date("bronze.events", "event_date"), "2024-05-02:33");
  EXPECT_EQ(per_date("silver.quarantine", "received_date"), "2024-05-02:6");
  EXPECT_EQ(per_date("silver.events", "event_date"), silver_before);
  EXPECT_EQ(per_date("restricted.pii", "event_date"), pii_before);
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("bronze/events/event_date=2024-05-01")));
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("bronze/events/event_date=2024-05-02")));
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("silver/quarantine/received_date=2024-05-01")));
  EXPECT_EQ(Count("SELECT count(*) FROM system.erasures WHERE regulation_type = 'RETENTION' AND mode = 'retention' "
                  "AND rows_removed = 29 AND files_purged >= 2 AND reason = 'bronze/events 1d, silver/quarantine 36h'"),
            1);
  // Within the interval (and with nothing more expired) it does not run again.
  ASSERT_OK(runner->Drain());
  EXPECT_EQ(Count("SELECT count(*) FROM system.erasures"), 1);
  // A TTL that is not a duration is refused.
  options_.config.Set("retention.bronze.events", "forever");
  EXPECT_EQ(RetentionRulesFromConfig(options_.config).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(PrivacyOpsTest, TokenizedFieldsLiveOnlyInTheVaultAndForgetRemovesTheMapping) {
  options_.config.Set("privacy.tokenize_fields", "traits.name");
  AppendSegment(log_.get(),
                {R"({"type":"identify","userId":"person-zqx","messageId":"t1","timestamp":"2024-05-01T09:00:00Z",
                    "traits":{"name":"Pat Zqx","plan":"pro"}})",
                 R"({"type":"identify","userId":"user-1","messageId":"t2","timestamp":"2024-05-01T09:00:00Z",
                    "traits":{"name":"Olga One"}})",
                 R"({"type":"identify","userId":"user-1","messageId":"t3","timestamp":"2024-05-01T09:30:00Z",
                    "traits":{"name":"Olga One"}})"},
                kDay1Us);
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options_, log_.get()));
  ASSERT_OK(runner->Drain());
  Views();
  ASSERT_OK_AND_ASSIGN(auto tokens, conn_->Query("SELECT event_id, json_extract_string(properties, '$.name') "
                                                 "FROM silver.events ORDER BY event_id"));
  ASSERT_EQ(tokens.row_count(), 3u);
  for (size_t i = 0; i < 3; i++) EXPECT_EQ(tokens.GetString(i, 1).substr(0, 4), "tok_") << tokens.GetString(i, 1);
  EXPECT_EQ(tokens.GetString(1, 1).size(), 36u);
  // Random: the same value gets a new token each time (no dictionary to guess from).
  EXPECT_NE(tokens.GetString(1, 1), tokens.GetString(2, 1));
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE properties LIKE '%Olga%' OR properties LIKE '%Pat%'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM silver.events WHERE json_extract_string(properties, '$.plan') = 'pro'"), 1);
  ASSERT_OK_AND_ASSIGN(auto values, Detokenize(dir_.path(), db_.get(),
                                               {tokens.GetString(0, 1), tokens.GetString(1, 1), "tok_unknown"}));
  ASSERT_EQ(values.size(), 2u);
  EXPECT_EQ(values[tokens.GetString(0, 1)], std::make_pair(std::string("traits.name"), std::string("Pat Zqx")));
  EXPECT_EQ(values[tokens.GetString(1, 1)], std::make_pair(std::string("traits.name"), std::string("Olga One")));
  // Forget removes the person's mappings, not the others'.
  ASSERT_OK_AND_ASSIGN(std::string key, LoadPiiKey(SilverOptions::FromConfig(options_.config)));
  privacy::PrivacyRequest request;
  request.subject.user_ids = {kPersonUser};
  ASSERT_OK(SubmitPrivacyRequest(dir_.path(), key, &request));
  ASSERT_OK(runner->Drain());
  ASSERT_OK_AND_ASSIGN(values, Detokenize(dir_.path(), db_.get(), {tokens.GetString(0, 1), tokens.GetString(1, 1)}));
  EXPECT_EQ(values.size(), 1u);
  EXPECT_EQ(values.count(tokens.GetString(1, 1)), 1u);
  EXPECT_EQ(PhysicalHits(conn_.get(), dir_.Sub("restricted/pii"), {}), 0);
}

INSTANTIATE_TEST_SUITE_P(DeletionVectors, ErasureTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "WithDeletionVectors" : "CopyOnWrite"; });
INSTANTIATE_TEST_SUITE_P(DeletionVectors, PrivacyOpsTest, ::testing::Values(true));

}  // namespace
}  // namespace clicklake::pipeline

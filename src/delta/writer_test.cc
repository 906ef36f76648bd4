// Writer tests: tables clicklake writes pass the independent validator and
// read back exactly; conflicts, txn, checkpoints, cleanup and operations.

#include <zlib.h>

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "common/clock.h"
#include "common/test_util.h"
#include "delta/deletion_vector.h"
#include "delta/internal.h"
#include "delta/table.h"
#include "delta/testing/validator.h"

namespace clicklake::delta {
namespace {

namespace fs = std::filesystem;

Schema EventSchema() {
  Schema s;
  s.fields = {{"event_id", "string", false},  {"n", "long"},          {"i", "integer"},
              {"x", "double"},                {"flag", "boolean"},    {"ts", "timestamp"},
              {"event_date", "date"},         {"amount", "decimal(10,2)"},
              {"src", "string"},
              {"props", R"({"type":"struct","fields":[{"name":"a","type":"string","nullable":true,"metadata":{}},{"name":"b","type":"long","nullable":true,"metadata":{}}]})"}};
  return s;
}

class WriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = engine::Database::Open();
    ASSERT_OK(db.status());
    db_ = std::move(*db);
    auto conn = db_->Connect();
    ASSERT_OK(conn.status());
    conn_ = std::move(*conn);
    path_ = tmp_.Sub("events");
  }

  std::unique_ptr<Table> Create(std::map<std::string, std::string> config = {},
                                std::vector<std::string> partitions = {"event_date", "src"}, Clock* clock = SystemClock()) {
    auto t = Table::OpenOrCreate(path_, EventSchema(), partitions, config, db_.get(), FileSystem::Default(), clock);
    EXPECT_OK(t.status());
    return t.ok() ? std::move(*t) : nullptr;
  }

  // Rows with id prefix `tag`, `count` of them, spread over a few partitions.
  std::string Rows(const std::string& tag, int count) {
    return "SELECT '" + tag + "-' || i AS event_id, i::BIGINT AS n, (i % 7)::INTEGER AS i, i / 3.0 AS x, i % 2 = 0 AS flag, "
           "TIMESTAMPTZ '2024-05-01 12:00:00.123456+00' + to_seconds(i) AS ts, DATE '2024-05-01' + (i % 3)::INTEGER AS event_date, "
           "(i * 1.25)::DECIMAL(10,2) AS amount, CASE i % 4 WHEN 0 THEN 'web' WHEN 1 THEN 'a:b/c=d%e f' WHEN 2 THEN NULL "
           "ELSE 'ios' END AS src, {'a': 'v' || i, 'b': i::BIGINT} AS props FROM range(" + std::to_string(count) + ") t(i)";
  }

  Result<int64_t> Append(Table* t, const std::string& query, bool blind = true) {
    auto tx = t->StartTransaction();
    auto files = tx->WriteFiles(conn_.get(), query);
    if (!files.ok()) return files.status();
    tx->SetBlindAppend(blind);
    tx->SetOperation("WRITE", {{"mode", "Append"}});
    return tx->Commit();
  }

  int64_t Count(Table* t, std::optional<int64_t> version = std::nullopt) {
    auto snap = t->LoadSnapshot(version);
    EXPECT_OK(snap.status());
    auto sql = ScanSql(t->path(), *snap);
    EXPECT_OK(sql.status());
    auto r = conn_->Query("SELECT count(*) FROM (" + *sql + ")");
    EXPECT_OK(r.status());
    return r.ok() ? r->GetInt64(0, 0) : -1;
  }

  // The latest snapshot of a copy of the table without its checkpoints
  // (replayed from the JSON commits alone).
  Result<Snapshot> ReplayedWithoutCheckpoints() {
    std::string copy = tmp_.Sub("replayed");
    fs::copy(path_, copy, fs::copy_options::recursive);
    for (auto& e : fs::directory_iterator(copy + "/_delta_log")) {
      if (e.path().string().find("checkpoint") != std::string::npos) fs::remove(e.path());
    }
    return LoadSnapshotAt(copy, nullptr, std::nullopt);
  }

  void ExpectValid() {
    test::LogValidator v(path_, conn_.get());
    auto problems = v.Validate();
    for (const auto& p : problems) ADD_FAILURE() << p;
  }

  testing::TempDir tmp_;
  std::string path_;
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<engine::Connection> conn_;
};

TEST_F(WriterTest, CreateAppendValidateAndReadBack) {
  auto t = Create();
  ASSERT_NE(t, nullptr);
  ASSERT_OK_AND_ASSIGN(int64_t v, Append(t.get(), Rows("a", 50)));
  EXPECT_EQ(v, 1);
  ASSERT_OK_AND_ASSIGN(v, Append(t.get(), Rows("b", 30)));
  EXPECT_EQ(v, 2);
  ExpectValid();
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  EXPECT_EQ(snap.files.size(), 24u);  // 12 partitions x 2 appends
  ASSERT_OK_AND_ASSIGN(std::string sql, ScanSql(path_, snap));
  // Every row reads back exactly (both directions of EXCEPT are empty).
  ASSERT_OK(conn_->Execute("SET TimeZone='UTC'; CREATE TABLE expected AS " + Rows("a", 50) + " UNION ALL " + Rows("b", 30)));
  auto diff = conn_->Query("SELECT count(*) FROM ((SELECT * FROM expected EXCEPT ALL SELECT * FROM (" + sql +
                           ")) UNION ALL (SELECT * FROM (" + sql + ") EXCEPT ALL SELECT * FROM expected))");
  ASSERT_OK(diff.status());
  EXPECT_EQ(diff->GetInt64(0, 0), 0);
  EXPECT_EQ(Count(t.get()), 80);
  EXPECT_EQ(Count(t.get(), 1), 50);
  EXPECT_EQ(Count(t.get(), 0), 0);  // empty table: right columns, no rows
  // Partition values are strings; the special characters are escaped once in
  // the directory and once more in add.path.
  bool found = false;
  for (const auto& f : snap.files) {
    auto it = f.partition_values.find("src");
    if (it->second == "a:b/c=d%e f") {
      found = true;
      EXPECT_NE(f.path.find("src=a%253Ab%252Fc%253Dd%2525e%20f/"), std::string::npos) << f.path;
    }
  }
  EXPECT_TRUE(found);
}

// `SELECT * FROM <table>`: one partition is written straight from the table,
// several are split; either way every row lands in its partition.
TEST_F(WriterTest, TableRowsOfOneOrSeveralPartitions) {
  auto t = Create();
  ASSERT_NE(t, nullptr);
  ASSERT_OK(conn_->Execute("SET TimeZone='UTC'; CREATE TABLE one AS SELECT * FROM (" + Rows("o", 40) +
                           ") WHERE event_date = DATE '2024-05-02' AND src = 'web'; CREATE TABLE many AS " +
                           Rows("m", 40)));
  ASSERT_OK(Append(t.get(), "SELECT * FROM one").status());
  ASSERT_OK_AND_ASSIGN(Snapshot one, t->LoadSnapshot());
  ASSERT_EQ(one.files.size(), 1u);
  EXPECT_EQ(one.files[0].partition_values.at("event_date"), "2024-05-02");
  EXPECT_EQ(one.files[0].partition_values.at("src"), "web");
  ASSERT_OK(Append(t.get(), "SELECT * FROM many").status());
  ExpectValid();
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  EXPECT_EQ(snap.files.size(), 13u);  // + 12 partitions
  ASSERT_OK_AND_ASSIGN(std::string sql, ScanSql(path_, snap));
  auto diff = conn_->Query("SELECT count(*) FROM ((SELECT * FROM one UNION ALL SELECT * FROM many) EXCEPT ALL "
                           "SELECT * FROM (" + sql + "))");
  ASSERT_OK(diff.status());
  EXPECT_EQ(diff->GetInt64(0, 0), 0);
  EXPECT_EQ(Count(t.get()), 43);  // 40 + the 3 rows of `one` (i = 4, 16, 28)
}

// WriteFileGroups: one pass, a file per group with rows, each in its group's
// partition with exact stats; a row outside every group stages nothing and
// leaves no file behind.
TEST_F(WriterTest, FileGroupsSplitRowsInOnePass) {
  auto t = Create({}, {"event_date"});
  ASSERT_NE(t, nullptr);
  ASSERT_OK(conn_->Execute("SET TimeZone='UTC'; CREATE TABLE rows AS " + Rows("g", 90)));
  std::vector<std::map<std::string, std::optional<std::string>>> groups;
  for (const char* date : {"2024-05-01", "2024-05-02", "2024-05-03"}) {
    groups.push_back({{"event_date", date}});  // n < 45
    groups.push_back({{"event_date", date}});  // n >= 45
  }
  groups.push_back({{"event_date", "2024-05-04"}});  // no rows: no file
  const std::string by_date_and_half = "(event_date - DATE '2024-05-01') * 2 + (n >= 45)::INTEGER";
  {
    auto tx = t->StartTransaction();
    ASSERT_OK_AND_ASSIGN(auto files, tx->WriteFileGroups(conn_.get(), "SELECT * FROM rows", by_date_and_half, groups));
    ASSERT_EQ(files.size(), 6u);
    for (const auto& f : files) {
      EXPECT_NE(f.stats.find("\"numRecords\":15"), std::string::npos) << f.stats;
      EXPECT_EQ(f.path.rfind("event_date=" + *f.partition_values.at("event_date") + "/part-", 0), 0u) << f.path;
    }
    tx->SetOperation("WRITE", {{"mode", "Append"}});
    ASSERT_OK(tx->Commit().status());
  }
  ExpectValid();
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  ASSERT_OK_AND_ASSIGN(std::string sql, ScanSql(path_, snap));
  auto diff = conn_->Query("SELECT count(*) FROM ((SELECT * FROM rows EXCEPT ALL SELECT * FROM (" + sql +
                           ")) UNION ALL (SELECT * FROM (" + sql + ") EXCEPT ALL SELECT * FROM rows))");
  ASSERT_OK(diff.status());
  EXPECT_EQ(diff->GetInt64(0, 0), 0);
  // A row of each date in the other half's group: its partition is still right.
  auto halves = conn_->Query("SELECT count(DISTINCT filename) FROM read_parquet('" + path_ +
                             "/*/*.parquet', filename = true) WHERE n >= 45");
  ASSERT_OK(halves.status());
  EXPECT_EQ(halves->GetInt64(0, 0), 3);

  // Rows outside every group: refused, nothing staged, no file left.
  auto tx = t->StartTransaction();
  auto refused = tx->WriteFileGroups(conn_.get(), "SELECT * FROM rows", "CASE WHEN n < 80 THEN 0 END", groups);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << refused.status();
  EXPECT_TRUE(tx->staged_adds().empty());
  int parquet_files = 0;
  for (const auto& e : fs::recursive_directory_iterator(path_)) {
    parquet_files += e.path().extension() == ".parquet" && e.path().string().find("_delta_log") == std::string::npos;
    EXPECT_EQ(e.path().string().find("staging"), std::string::npos) << e.path();
  }
  EXPECT_EQ(parquet_files, 6);
}

TEST_F(WriterTest, StringStatsUseThe32CharacterRule) {
  auto t = Create({}, {});
  ASSERT_NE(t, nullptr);
  std::string long_a(40, 'a'), long_z = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";  // 38
  std::string q = "SELECT * REPLACE (CASE n WHEN 0 THEN '" + long_a + "' WHEN 1 THEN '" + long_z +
                  "' ELSE 'm' END AS event_id) FROM (" + Rows("s", 3) + ")";
  ASSERT_OK(Append(t.get(), q).status());
  ExpectValid();
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  ASSERT_EQ(snap.files.size(), 1u);
  const std::string& stats = snap.files[0].stats;
  EXPECT_NE(stats.find("\"event_id\":\"" + std::string(32, 'a') + "\""), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"event_id\":\"" + std::string(32, 'z') + "\xEF\xBF\xBF\""), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"ts\":\"2024-05-01T12:00:00.123Z\""), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"props\":{\"a\":\"v0\""), std::string::npos) << stats;
}

// Every column type clicklake writes, with NULLs, NaN, infinities, strings
// past the writer's 256-byte stats limit (ASCII, and CJK it cannot cut),
// timestamps before 1970 and a quoted column name.
Schema AllTypesSchema() {
  Schema s;
  s.fields = {{"id", "string", false},   {"s", "string"},         {"s_cjk", "string"},      {"s_null", "string"},
              {"l", "long"},             {"i", "integer"},        {"sh", "short"},          {"b", "byte"},
              {"f", "float"},            {"d", "double"},         {"d_nan", "double"},      {"flag", "boolean"},
              {"ts", "timestamp"},       {"ts_ntz", "timestamp_ntz"}, {"day", "date"},      {"amount", "decimal(10,2)"},
              {"big", "decimal(38,6)"},  {"bin", "binary"},       {"we\"ird col", "long"},
              {"st", R"({"type":"struct","fields":[{"name":"a","type":"string","nullable":true,"metadata":{}},{"name":"b","type":"long","nullable":true,"metadata":{}}]})"},
              {"arr", R"({"type":"array","elementType":"long","containsNull":true})"},
              {"m", R"({"type":"map","keyType":"string","valueType":"long","valueContainsNull":true})"},
              {"part", "string"}};
  return s;
}

std::string AllTypesRows(int count) {
  return "SELECT 'id-' || i AS id, CASE WHEN i % 5 = 0 THEN NULL WHEN i = 7 THEN repeat('z', 300) WHEN i = 11 THEN "
         "'\u00e9' || repeat('x', 40) ELSE 'v' || (i % 97) END AS s, CASE WHEN i % 3 = 0 THEN repeat('\u6f22', 100) "
         "ELSE '\u5b57' || i END AS s_cjk, NULL::VARCHAR AS s_null, (i - 1000)::BIGINT * 1000003 AS l, "
         "(i % 1000 - 500)::INTEGER AS i, (i % 300)::SMALLINT AS sh, (i % 100 - 50)::TINYINT AS b, (i / 7.0)::FLOAT AS f, "
         "CASE WHEN i = 13 THEN 'NaN'::DOUBLE WHEN i = 14 THEN 'inf'::DOUBLE ELSE i * 0.1 - 3 END AS d, "
         "'NaN'::DOUBLE AS d_nan, CASE WHEN i % 4 = 0 THEN NULL ELSE i % 2 = 0 END AS flag, "
         "TIMESTAMPTZ '1969-12-31 23:59:59.999999+00' + to_microseconds(i * 1234567) AS ts, "
         "TIMESTAMP '2024-02-29 01:02:03.456789' + to_microseconds(i * 1000) AS ts_ntz, DATE '1960-01-01' + i::INTEGER AS day, "
         "(i * 1.25 - 100)::DECIMAL(10,2) AS amount, (i * 12345.678901)::DECIMAL(38,6) AS big, "
         "encode('b' || i) AS bin, i::BIGINT AS \"we\"\"ird col\", {'a': 'x' || i, 'b': i::BIGINT} AS st, "
         "CASE WHEN i % 6 = 0 THEN NULL ELSE [i, i + 1] END AS arr, MAP {'k': i::BIGINT} AS m, "
         "CASE i % 3 WHEN 0 THEN 'a' WHEN 1 THEN 'b' END AS part FROM range(" + std::to_string(count) + ") t(i)";
}

// Stats taken from the Parquet writer (COPY … RETURN_STATS) equal the stats
// read back from the files, for every type, in files of one and of several
// row groups, written by WriteFiles (one and several partitions) and by
// WriteFileGroups. (The validator, which knows no timestamp_ntz and no NaN,
// checks the writer's stats in the other tests.)
TEST_F(WriterTest, StatsFromTheWriterEqualAReadBack) {
  if (std::getenv("DEBUG_LOG")) spdlog::set_level(spdlog::level::debug);
  ASSERT_OK(conn_->Execute("SET TimeZone='UTC'; CREATE TABLE all_types AS " + AllTypesRows(130000)));
  auto check = [&](const std::string& path) {
    ASSERT_OK_AND_ASSIGN(auto table, Table::Open(path, db_.get(), FileSystem::Default(), SystemClock()));
    ASSERT_OK_AND_ASSIGN(Snapshot snap, table->LoadSnapshot());
    ASSERT_FALSE(snap.files.empty());
    for (const auto& f : snap.files) {
      ASSERT_OK_AND_ASSIGN(std::string expected, internal::ReadBackStats(conn_.get(), DataFilePath(path, f.path),
                                                                        snap.metadata));
      EXPECT_EQ(f.stats, expected) << f.path;
    }
  };
  {
    auto t = Table::OpenOrCreate(path_, AllTypesSchema(), {"part"}, {}, db_.get(), FileSystem::Default(), SystemClock());
    ASSERT_OK(t.status());
    ASSERT_OK(Append(t->get(), "SELECT * FROM all_types WHERE l < 2000::BIGINT * 1000003").status());  // three partitions
    ASSERT_OK(Append(t->get(), "SELECT * FROM all_types WHERE part = 'a'").status()); // one, 43K rows
    ASSERT_OK_AND_ASSIGN(Snapshot snap, (*t)->LoadSnapshot());
    EXPECT_EQ(snap.files.size(), 4u);
    // The CJK column is past what the writer can cut: its stats were read back.
    EXPECT_NE(snap.files[0].stats.find("\"s_cjk\":\"\u5b57"), std::string::npos) << snap.files[0].stats;
    check(path_);
  }
  {
    const std::string path = tmp_.Sub("groups");
    auto t = Table::OpenOrCreate(path, AllTypesSchema(), {}, {}, db_.get(), FileSystem::Default(), SystemClock());
    ASSERT_OK(t.status());
    auto tx = (*t)->StartTransaction();
    // 124K rows in one file: more than one row group (122,880 rows each).
    ASSERT_OK_AND_ASSIGN(auto files, tx->WriteFileGroups(conn_.get(), "SELECT * FROM all_types",
                                                         "CASE WHEN l < 124000::BIGINT * 1000003 THEN 0 ELSE 1 END", {{}, {}}));
    ASSERT_EQ(files.size(), 2u);
    tx->SetOperation("WRITE", {{"mode", "Append"}});
    ASSERT_OK(tx->Commit().status());
    auto groups = conn_->Query("SELECT count(*) FROM parquet_metadata('" + path +
                               "/*.parquet') WHERE path_in_schema = 'id' GROUP BY file_name ORDER BY 1 DESC");
    ASSERT_OK(groups.status());
    EXPECT_GE(groups->GetInt64(0, 0), 2);
    check(path);
  }
}

TEST_F(WriterTest, SchemaViolationsRefused) {
  auto t = Create();
  ASSERT_NE(t, nullptr);
  auto tx = t->StartTransaction();
  EXPECT_STATUS(tx->WriteFiles(conn_.get(), "SELECT 1 AS nope").status(), kInvalidArgument);
  EXPECT_STATUS(tx->WriteFiles(conn_.get(), "SELECT * REPLACE (NULL::VARCHAR AS event_id) FROM (" + Rows("x", 2) + ")")
                    .status(),
                kInvalidArgument);
  EXPECT_STATUS(tx->WriteFiles(conn_.get(), "SELECT * EXCLUDE (event_date) FROM (" + Rows("x", 2) + ")").status(),
                kInvalidArgument);
}

TEST_F(WriterTest, TxnVersionsAndReplaySkip) {
  auto t = Create();
  ASSERT_NE(t, nullptr);
  for (int64_t batch = 0; batch < 3; batch++) {
    auto tx = t->StartTransaction();
    ASSERT_OK(tx->WriteFiles(conn_.get(), Rows("t" + std::to_string(batch), 4)).status());
    tx->SetAppTransaction("pipeline", batch);
    tx->SetBlindAppend(true);
    tx->SetCommitInfoField("clicklake", "{\"batch_id\":" + std::to_string(batch) + ",\"offsets\":{\"0\":" +
                                            std::to_string(batch * 10) + "}}");
    ASSERT_OK(tx->Commit().status());
  }
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  EXPECT_EQ(snap.app_txn_versions.at("pipeline"), 2);
  ASSERT_OK_AND_ASSIGN(std::string info, ReadCommitInfo(path_, snap.version));
  EXPECT_NE(info.find("\"clicklake\":{\"batch_id\":2,\"offsets\":{\"0\":20}}"), std::string::npos) << info;
  // A replayed batch is skipped by the caller: batch 2 <= the txn version.
  EXPECT_LE(2, snap.app_txn_versions.at("pipeline"));
  // Two writers racing with the same app id: the loser gets Conflict.
  auto a = t->StartTransaction();
  auto b = t->StartTransaction();
  ASSERT_OK(a->WriteFiles(conn_.get(), Rows("ra", 2)).status());
  ASSERT_OK(b->WriteFiles(conn_.get(), Rows("rb", 2)).status());
  a->SetAppTransaction("pipeline", 3);
  b->SetAppTransaction("pipeline", 3);
  a->SetBlindAppend(true);
  b->SetBlindAppend(true);
  ASSERT_OK(a->Commit().status());
  EXPECT_STATUS(b->Commit().status(), kConflict);
  ExpectValid();
}

TEST_F(WriterTest, ConflictRules) {
  auto t = Create();
  ASSERT_NE(t, nullptr);
  ASSERT_OK(Append(t.get(), Rows("base", 8)).status());
  // Blind appends from the same read version never conflict.
  auto a = t->StartTransaction();
  auto b = t->StartTransaction();
  ASSERT_OK(a->WriteFiles(conn_.get(), Rows("a", 4)).status());
  ASSERT_OK(b->WriteFiles(conn_.get(), Rows("b", 4)).status());
  a->SetBlindAppend(true);
  b->SetBlindAppend(true);
  ASSERT_OK_AND_ASSIGN(int64_t va, a->Commit());
  ASSERT_OK_AND_ASSIGN(int64_t vb, b->Commit());
  EXPECT_EQ(vb, va + 1);

  // Both removing one file: the second conflicts.
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  auto r1 = t->StartTransaction(snap);
  auto r2 = t->StartTransaction(snap);
  r1->RemoveFile(snap.files[0]);
  r2->RemoveFile(snap.files[0]);
  ASSERT_OK(r1->Commit().status());
  EXPECT_STATUS(r2->Commit().status(), kConflict);

  // A metadata change conflicts with a concurrent append, and vice versa.
  ASSERT_OK_AND_ASSIGN(snap, t->LoadSnapshot());
  auto m = t->StartTransaction(snap);
  Metadata md = snap.metadata;
  md.configuration["k"] = "v";
  m->UpdateMetadata(md);
  auto ap = t->StartTransaction(snap);
  ASSERT_OK(ap->WriteFiles(conn_.get(), Rows("c", 2)).status());
  ap->SetBlindAppend(true);
  ASSERT_OK(ap->Commit().status());
  EXPECT_STATUS(m->Commit().status(), kConflict);
  auto m2 = t->StartTransaction();
  m2->UpdateMetadata(md);
  auto ap2 = t->StartTransaction();
  ASSERT_OK(ap2->WriteFiles(conn_.get(), Rows("d", 2)).status());
  ap2->SetBlindAppend(true);
  ASSERT_OK(m2->Commit().status());
  EXPECT_STATUS(ap2->Commit().status(), kConflict);

  // A non-blind write that read a partition conflicts with a non-blind add there.
  ASSERT_OK_AND_ASSIGN(snap, t->LoadSnapshot());
  std::map<std::string, std::optional<std::string>> part = {{"event_date", "2024-05-01"}, {"src", "web"}};
  auto w1 = t->StartTransaction(snap);
  w1->ReadPartition(part);
  ASSERT_OK(w1->WriteFiles(conn_.get(), "SELECT * FROM (" + Rows("w1", 1) + ")").status());
  auto w2 = t->StartTransaction(snap);
  w2->ReadPartition(part);
  ASSERT_OK(w2->WriteFiles(conn_.get(), "SELECT * FROM (" + Rows("w2", 1) + ")").status());
  ASSERT_OK(w1->Commit().status());
  EXPECT_STATUS(w2->Commit().status(), kConflict);
  ExpectValid();
}

TEST_F(WriterTest, AppendRacingOptimize) {
  auto t = Create({}, {"event_date"});
  ASSERT_NE(t, nullptr);
  for (int i = 0; i < 5; i++) ASSERT_OK(Append(t.get(), Rows("o" + std::to_string(i), 20)).status());
  // An append that read before the optimize commits after it, and vice versa.
  auto ap = t->StartTransaction();
  ASSERT_OK(ap->WriteFiles(conn_.get(), Rows("late", 10)).status());
  ap->SetBlindAppend(true);
  ASSERT_OK_AND_ASSIGN(OptimizeResult opt, t->Optimize({.sort_by = {"event_id"}}));
  EXPECT_EQ(opt.files_removed, 15);
  EXPECT_EQ(opt.files_added, 3);
  EXPECT_EQ(opt.rows, 100);
  ASSERT_OK(ap->Commit().status());
  EXPECT_EQ(Count(t.get()), 110);
  ASSERT_OK_AND_ASSIGN(auto history, t->History(1));
  EXPECT_EQ(history[0].operation, "WRITE");
  ASSERT_OK_AND_ASSIGN(history, t->History());
  EXPECT_EQ(history[1].operation, "OPTIMIZE");
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot(history[1].version));
  for (const auto& f : snap.files) EXPECT_FALSE(f.data_change);
  ExpectValid();
}

// The checkpoint's JSON reader is sized by the longest action, not a fixed
// worst case: it fits a processor run with a small memory_limit.
TEST_F(WriterTest, CheckpointFitsASmallMemoryLimit) {
  ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open({.memory_limit = "256MB"}));
  ASSERT_OK_AND_ASSIGN(auto conn, db->Connect());
  auto t = Table::OpenOrCreate(path_, EventSchema(), {"event_date"}, {{"delta.checkpointInterval", "2"}}, db.get(),
                               FileSystem::Default(), SystemClock());
  ASSERT_OK(t.status());
  for (int i = 0; i < 2; i++) {
    auto tx = (*t)->StartTransaction();
    ASSERT_OK(tx->WriteFiles(conn.get(), Rows("m" + std::to_string(i), 3)).status());
    ASSERT_OK(tx->Commit().status());
  }
  EXPECT_TRUE(fs::exists(path_ + "/_delta_log/00000000000000000002.checkpoint.parquet"));
}

TEST_F(WriterTest, CheckpointsEveryIntervalAndReadBack) {
  auto t = Create({{"delta.checkpointInterval", "5"}}, {"event_date"});
  ASSERT_NE(t, nullptr);
  for (int i = 0; i < 11; i++) {
    auto tx = t->StartTransaction();
    ASSERT_OK(tx->WriteFiles(conn_.get(), Rows("c" + std::to_string(i), 3)).status());
    tx->SetAppTransaction("app", i);
    tx->SetBlindAppend(true);
    ASSERT_OK(tx->Commit().status());
    if (i == 6) {
      ASSERT_OK_AND_ASSIGN(Snapshot s, t->LoadSnapshot());
      auto tx2 = t->StartTransaction(s);
      tx2->RemoveFile(s.files[0]);
      ASSERT_OK(tx2->Commit().status());
    }
  }
  // Versions: 0 create, 1..7 appends, 8 remove, 9..12 appends -> checkpoints at 5 and 10.
  std::string log = path_ + "/_delta_log/";
  EXPECT_TRUE(fs::exists(log + "00000000000000000005.checkpoint.parquet"));
  EXPECT_TRUE(fs::exists(log + "00000000000000000010.checkpoint.parquet"));
  std::ifstream in(log + "_last_checkpoint");
  std::string last((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(last.rfind("{\"version\":10,\"size\":", 0), 0u) << last;
  EXPECT_EQ(last.find("parts"), std::string::npos);
  // The checkpoint's columns are nullable structs; absent ones are NULL structs.
  std::string ck = engine::QuoteLiteral(log + "00000000000000000010.checkpoint.parquet");
  auto r = conn_->Query("SELECT count(*) FILTER (WHERE add IS NOT NULL), count(*) FILTER (WHERE remove IS NOT NULL), "
                        "count(*) FILTER (WHERE txn IS NOT NULL), count(*) FILTER (WHERE metaData IS NOT NULL), "
                        "count(*) FILTER (WHERE protocol IS NOT NULL), "
                        "count(*) FILTER (WHERE add IS NOT NULL AND add.path IS NULL), count(*), "
                        "max(add.partitionValues['event_date']) FROM read_parquet(" + ck + ")");
  ASSERT_OK(r.status());
  EXPECT_EQ(r->GetInt64(0, 0), 26);  // 9 appends x 3 partitions - 1 removed
  EXPECT_EQ(r->GetInt64(0, 1), 1);
  EXPECT_EQ(r->GetInt64(0, 2), 1);
  EXPECT_EQ(r->GetInt64(0, 3), 1);
  EXPECT_EQ(r->GetInt64(0, 4), 1);
  EXPECT_EQ(r->GetInt64(0, 5), 0);
  EXPECT_EQ(r->GetInt64(0, 6), 30);
  EXPECT_EQ(r->GetString(0, 7), "2024-05-03");
  auto kv = conn_->Query("SELECT name, repetition_type FROM parquet_schema(" + ck + ") WHERE name IN ('key_value', 'key')");
  ASSERT_OK(kv.status());
  EXPECT_GT(kv->row_count(), 0u);
  // The snapshot from the checkpoint equals one replayed from the JSON log.
  ASSERT_OK_AND_ASSIGN(Snapshot with_ck, t->LoadSnapshot());
  ASSERT_OK_AND_ASSIGN(Snapshot without, ReplayedWithoutCheckpoints());
  ASSERT_EQ(with_ck.files.size(), without.files.size());
  for (size_t i = 0; i < with_ck.files.size(); i++) {
    EXPECT_EQ(with_ck.files[i].path, without.files[i].path);
    EXPECT_EQ(with_ck.files[i].stats, without.files[i].stats);
    EXPECT_EQ(with_ck.files[i].size, without.files[i].size);
    EXPECT_EQ(with_ck.files[i].partition_values, without.files[i].partition_values);
  }
  EXPECT_EQ(with_ck.app_txn_versions, without.app_txn_versions);
  EXPECT_EQ(with_ck.metadata.schema_string, without.metadata.schema_string);
  EXPECT_EQ(with_ck.metadata.id, without.metadata.id);
  EXPECT_EQ(Count(t.get()), 32);  // 33 rows minus the removed file's
  ExpectValid();
}

TEST_F(WriterTest, LogCleanupAfterRetention) {
  auto t = Create({{"delta.checkpointInterval", "4"}, {"delta.logRetentionDuration", "interval 1 days"}}, {});
  ASSERT_NE(t, nullptr);
  for (int i = 0; i < 4; i++) ASSERT_OK(Append(t.get(), Rows("l" + std::to_string(i), 2)).status());
  // Versions 0..4 and checkpoint 4 were written two days ago.
  std::string log = path_ + "/_delta_log/";
  for (auto& e : fs::directory_iterator(log)) {
    auto n = internal::ParseLogFileName(e.path().filename().string());
    if (n.kind != internal::LogFileKind::kOther && n.version <= 4) {
      fs::last_write_time(e.path(), fs::last_write_time(e.path()) - std::chrono::hours(48));
    }
  }
  for (int i = 0; i < 4; i++) ASSERT_OK(Append(t.get(), Rows("m" + std::to_string(i), 2)).status());
  // Checkpoint 8 ran cleanup: versions before 4 (the newest expired checkpoint) are gone.
  EXPECT_FALSE(fs::exists(log + CommitFileName(0)));
  EXPECT_FALSE(fs::exists(log + CommitFileName(3)));
  EXPECT_TRUE(fs::exists(log + CommitFileName(4)));
  EXPECT_EQ(Count(t.get()), 16);
  EXPECT_EQ(Count(t.get(), 4), 8);
  EXPECT_STATUS(t->LoadSnapshot(2).status(), kNotFound);
  // Leftover commit temp files are ignored by readers and cleaned up.
  { std::ofstream(log + ".deadbeef.tmp") << "{garbage"; }
  EXPECT_EQ(Count(t.get()), 16);
  ASSERT_OK(t->CleanupLog(0));
  EXPECT_FALSE(fs::exists(log + ".deadbeef.tmp"));
}

TEST_F(WriterTest, VacuumDeletesOnlyUnreferencedOldFiles) {
  FakeClock clock(SystemClock()->NowMicros());
  auto t = Create({}, {"event_date"}, &clock);
  ASSERT_NE(t, nullptr);
  for (int i = 0; i < 3; i++) ASSERT_OK(Append(t.get(), Rows("v" + std::to_string(i), 9)).status());
  ASSERT_OK(t->Optimize().status());
  EXPECT_STATUS(t->Vacuum({.retain_hours = 1}).status(), kInvalidArgument);
  // Within the default retention nothing goes.
  ASSERT_OK_AND_ASSIGN(VacuumResult none, t->Vacuum({}));
  EXPECT_TRUE(none.deleted.empty());
  clock.Advance(8LL * 86400 * 1000 * 1000);
  ASSERT_OK_AND_ASSIGN(VacuumResult dry, t->Vacuum({.dry_run = true}));
  EXPECT_EQ(dry.deleted.size(), 9u);
  ASSERT_OK_AND_ASSIGN(VacuumResult res, t->Vacuum({}));
  EXPECT_EQ(res.deleted.size(), 9u);
  EXPECT_EQ(Count(t.get()), 27);
  ASSERT_OK_AND_ASSIGN(auto history, t->History(2));
  EXPECT_EQ(history[0].operation, "VACUUM END");
  EXPECT_EQ(history[1].operation, "VACUUM START");
  ASSERT_OK_AND_ASSIGN(VacuumResult forced, t->Vacuum({.retain_hours = 0, .force = true}));
  EXPECT_TRUE(forced.deleted.empty());
  ExpectValid();
}

TEST_F(WriterTest, ReplacePartitionsAndDeleteWhere) {
  auto t = Create({}, {"event_date"});
  ASSERT_NE(t, nullptr);
  ASSERT_OK(Append(t.get(), Rows("r", 30)).status());
  ASSERT_OK_AND_ASSIGN(
      int64_t v, t->ReplacePartitions(conn_.get(), "SELECT * FROM (" + Rows("new", 6) + ") WHERE event_date = DATE '2024-05-02'",
                                      {{{"event_date", "2024-05-02"}}}));
  EXPECT_EQ(v, 2);
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  ASSERT_OK_AND_ASSIGN(std::string sql, ScanSql(path_, snap));
  auto r = conn_->Query("SELECT count(*), count(*) FILTER (WHERE event_id LIKE 'new-%') FROM (" + sql + ")");
  ASSERT_OK(r.status());
  EXPECT_EQ(r->GetInt64(0, 0), 22);  // 30 - 10 + 2
  EXPECT_EQ(r->GetInt64(0, 1), 2);
  // Rows outside the replaced partitions are refused.
  EXPECT_STATUS(t->ReplacePartitions(conn_.get(), Rows("bad", 3), {{{"event_date", "2024-05-02"}}}).status(),
                kInvalidArgument);
  EXPECT_STATUS(t->ReplacePartitions(conn_.get(), Rows("bad", 3), {{{"nope", "1"}}}).status(), kInvalidArgument);

  ASSERT_OK_AND_ASSIGN(int64_t deleted, t->DeleteWhere(conn_.get(), "src = 'web' OR n = 1"));
  // web (n % 4 == 0): old rows 0, 8, 12, 20, 24 and new row 4; n = 1: new row 1.
  EXPECT_EQ(deleted, 7);
  ASSERT_OK_AND_ASSIGN(int64_t none, t->DeleteWhere(conn_.get(), "n > 1000"));
  EXPECT_EQ(none, 0);
  ASSERT_OK_AND_ASSIGN(auto history, t->History(1));
  EXPECT_EQ(history[0].operation, "DELETE");
  EXPECT_NE(history[0].operation_metrics_json.find("\"numDeletedRows\":\"7\""), std::string::npos);
  EXPECT_EQ(Count(t.get()), 22 - 7);
  ExpectValid();
}

TEST_F(WriterTest, SchemaEvolution) {
  auto t = Create({}, {"event_date"});
  ASSERT_NE(t, nullptr);
  ASSERT_OK(Append(t.get(), Rows("e", 4)).status());
  Schema wider = EventSchema();
  wider.fields.push_back({"added", "string"});
  ASSERT_OK_AND_ASSIGN(int64_t v, t->EvolveSchema(wider));
  EXPECT_EQ(v, 2);
  ASSERT_OK_AND_ASSIGN(int64_t same, t->EvolveSchema(wider));
  EXPECT_EQ(same, 2);
  ASSERT_OK(Append(t.get(), "SELECT *, 'new' AS added FROM (" + Rows("f", 4) + ")").status());
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  ASSERT_OK_AND_ASSIGN(std::string sql, ScanSql(path_, snap));
  auto r = conn_->Query("SELECT count(*), count(added) FROM (" + sql + ")");
  ASSERT_OK(r.status());
  EXPECT_EQ(r->GetInt64(0, 0), 8);
  EXPECT_EQ(r->GetInt64(0, 1), 4);
  Schema changed = wider;
  changed.fields[1].type = "string";
  EXPECT_STATUS(t->EvolveSchema(changed).status(), kInvalidArgument);
  Schema dropped = wider;
  dropped.fields.pop_back();
  EXPECT_STATUS(t->EvolveSchema(dropped).status(), kInvalidArgument);
  Schema required = wider;
  required.fields.push_back({"must", "long", false});
  EXPECT_STATUS(t->EvolveSchema(required).status(), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(auto history, t->History(2));
  EXPECT_EQ(history[1].operation, "ADD COLUMNS");
  ExpectValid();
}

TEST_F(WriterTest, DescribeAndLakeViews) {
  std::string lake = tmp_.Sub("lake");
  path_ = lake + "/bronze/events";
  auto t = Create();
  ASSERT_NE(t, nullptr);
  ASSERT_OK(Append(t.get(), Rows("d", 10)).status());
  ASSERT_OK(Append(t.get(), Rows("e", 5)).status());
  ASSERT_OK_AND_ASSIGN(TableDescription d, t->Describe());
  EXPECT_EQ(d.version, 2);
  EXPECT_EQ(d.num_records, 15);
  EXPECT_GT(d.size_bytes, 0);
  EXPECT_EQ(d.metadata.partition_columns, (std::vector<std::string>{"event_date", "src"}));
  fs::create_directories(lake + "/_clicklake/log");
  fs::create_directories(lake + "/gold/not_a_table");
  ASSERT_OK(RegisterLakeViews(conn_.get(), lake, std::nullopt));
  EXPECT_OK(RegisterLakeViews(conn_.get(), tmp_.Sub("no-lake"), std::nullopt));
  auto r = conn_->Query("SELECT count(*) FROM bronze.events");
  ASSERT_OK(r.status());
  EXPECT_EQ(r->GetInt64(0, 0), 15);
  ASSERT_OK(RegisterLakeViews(conn_.get(), lake, 1));
  r = conn_->Query("SELECT count(*) FROM bronze.events");
  ASSERT_OK(r.status());
  EXPECT_EQ(r->GetInt64(0, 0), 10);
  ASSERT_OK(AttachTable(conn_.get(), "ev", path_, std::nullopt));
  r = conn_->Query("SELECT count(*) FROM ev WHERE src IS NULL");
  ASSERT_OK(r.status());
  EXPECT_EQ(r->GetInt64(0, 0), 2 + 1);
  EXPECT_STATUS(AttachTable(conn_.get(), "nope", tmp_.Sub("missing"), std::nullopt), kNotFound);
  // Pruned scan: one partition value and a stats range.
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  EXPECT_EQ(PruneFiles(snap, {{"src", "=", "web"}}).size(), 5u);  // (date, web) files: 3 + 2
  EXPECT_EQ(PruneFiles(snap, {{"n", ">", "100"}}).size(), 0u);
  ASSERT_OK_AND_ASSIGN(std::string pruned, ScanSql(path_, snap, {{"src", "=", "web"}, {"n", ">=", "4"}}));
  r = conn_->Query("SELECT count(*) FROM (" + pruned + ")");
  ASSERT_OK(r.status());
  EXPECT_EQ(r->GetInt64(0, 0), 3);  // n 4 and 8 of the first append, 4 of the second
}

TEST_F(WriterTest, UnknownWriterFeatureRefused) {
  auto t = Create();
  ASSERT_NE(t, nullptr);
  std::string log = path_ + "/_delta_log/";
  {
    std::ofstream out(log + CommitFileName(1));
    out << "{\"commitInfo\":{\"timestamp\":1,\"operation\":\"UPGRADE\"}}\n"
        << "{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":7,\"writerFeatures\":[\"changeDataFeed\"]}}\n";
  }
  EXPECT_OK(t->LoadSnapshot().status());
  auto tx = t->StartTransaction();
  EXPECT_STATUS(tx->WriteFiles(conn_.get(), Rows("u", 1)).status(), kUnsupported);
  EXPECT_STATUS(tx->Commit().status(), kUnsupported);
  {
    std::ofstream out(log + CommitFileName(2));
    out << "{\"protocol\":{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"variantType\"],"
           "\"writerFeatures\":[\"variantType\"]}}\n";
  }
  auto snap = t->LoadSnapshot();
  EXPECT_STATUS(snap.status(), kUnsupported);
  EXPECT_NE(snap.status().message().find("variantType"), std::string::npos);
}

// Reading column-mapped tables is dvread's; writing them stays refused.
TEST_F(WriterTest, ColumnMappedTablesAreNotWritten) {
  Metadata md;
  md.schema = EventSchema();
  md.configuration = {{"delta.columnMapping.mode", "name"}};
  Protocol p = internal::NewTableProtocol({});
  EXPECT_OK(internal::CheckWritable(p, Metadata{}));
  EXPECT_STATUS(internal::CheckWritable(p, md), kUnsupported);
}

TEST_F(WriterTest, OpenOrCreateRaceAndOpenMissing) {
  EXPECT_STATUS(Table::Open(tmp_.Sub("missing"), db_.get()).status(), kNotFound);
  auto a = Create();
  auto b = Create();  // opens the existing table
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_OK_AND_ASSIGN(Snapshot sa, a->LoadSnapshot());
  ASSERT_OK_AND_ASSIGN(Snapshot sb, b->LoadSnapshot());
  EXPECT_EQ(sa.metadata.id, sb.metadata.id);
  EXPECT_EQ(sa.version, 0);
  // A lost creation race (version 0 already linked by someone else) opens theirs.
  std::string other = tmp_.Sub("other");
  ASSERT_OK(FileSystem::Default()->CreateDirs(other + "/_delta_log"));
  ASSERT_OK(internal::PutIfAbsent(FileSystem::Default(), other + "/_delta_log", 0,
                                  internal::SerializeProtocol({}) + "\n" +
                                      internal::SerializeMetadata([] {
                                        Metadata m;
                                        m.id = "00000000-0000-4000-8000-000000000000";
                                        m.schema = EventSchema();
                                        m.schema_string = m.schema.ToJson();
                                        return m;
                                      }()) + "\n"));
  EXPECT_STATUS(internal::PutIfAbsent(FileSystem::Default(), other + "/_delta_log", 0, "x"), kAlreadyExists);
}

}  // namespace
}  // namespace clicklake::delta

namespace clicklake::delta {
namespace {

TEST_F(WriterTest, ValidatorCatchesTampering) {
  auto t = Create();
  ASSERT_NE(t, nullptr);
  ASSERT_OK(Append(t.get(), Rows("v", 8)).status());
  std::string commit = path_ + "/_delta_log/" + CommitFileName(1);
  std::ifstream in(commit);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  size_t pos = text.find("numRecords\\\":");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos + 13, 1, "9");
  pos = text.find("\"size\":");
  text.replace(pos + 7, 1, "9");
  { std::ofstream(commit, std::ios::trunc) << text; }
  test::LogValidator v(path_, conn_.get());
  auto problems = v.Validate();
  bool records = false, size = false;
  for (const auto& p : problems) {
    records |= p.find("numRecords wrong") != std::string::npos;
    size |= p.find("size mismatch") != std::string::npos;
  }
  EXPECT_TRUE(records);
  EXPECT_TRUE(size);
}

}  // namespace
}  // namespace clicklake::delta

namespace clicklake::delta {
namespace {

TEST_F(WriterTest, SnapshotCacheNoticesARewrittenVersion) {
  auto t = Create({}, {});
  ASSERT_NE(t, nullptr);
  ASSERT_OK(Append(t.get(), Rows("a", 2)).status());
  EXPECT_EQ(Count(t.get()), 2);  // caches version 1
  // A crash lost version 1; another writer then committed a different version 1.
  fs::remove(path_ + "/_delta_log/" + CommitFileName(1));
  EXPECT_EQ(Count(t.get()), 0);
  ASSERT_OK(Append(t.get(), Rows("b", 5)).status());
  EXPECT_EQ(Count(t.get()), 5);
  ASSERT_OK(Append(t.get(), Rows("c", 1)).status());
  EXPECT_EQ(Count(t.get()), 6);  // incremental from the cached version 2
  EXPECT_EQ(Count(t.get(), 1), 5);
}

}  // namespace
}  // namespace clicklake::delta

// ---- deletion vectors, the writing side ----

namespace clicklake::delta {
namespace {

void PutLE16(std::string* s, uint16_t v) {
  for (int i = 0; i < 2; i++) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutLE32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; i++) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutLE64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; i++) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutBE32(std::string* s, uint32_t v) {
  for (int i = 3; i >= 0; i--) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::string Hex(const std::string& bytes) {
  std::string out;
  char b[4];
  for (unsigned char c : bytes) {
    std::snprintf(b, sizeof b, "%02x ", c);
    out += b;
  }
  return out;
}

// RoaringBitmapArray bytes built by hand from the Roaring format spec: the
// magic, the count of 32-bit bitmaps (8 bytes), then per bitmap its key (the
// high 32 bits) and the portable 32-bit Roaring serialization.
std::vector<uint64_t> ArrayCase() { return {0, 2, 4, 100000}; }
std::string ArrayCaseBytes() {
  std::string e;
  PutLE32(&e, 1681511377);
  PutLE64(&e, 1);
  PutLE32(&e, 0);
  PutLE32(&e, 12346);  // cookie without run containers
  PutLE32(&e, 2);      // containers
  PutLE16(&e, 0);      // key 0 (values 0, 2, 4), cardinality - 1
  PutLE16(&e, 2);
  PutLE16(&e, 1);  // key 1 (100000 = 1 << 16 | 34464)
  PutLE16(&e, 0);
  PutLE32(&e, 24);  // offsets of the containers from the 32-bit bitmap's start
  PutLE32(&e, 30);
  for (uint16_t v : {0, 2, 4}) PutLE16(&e, v);  // array container
  PutLE16(&e, 34464);
  return e;
}
std::vector<uint64_t> RunCase() {
  std::vector<uint64_t> v;
  for (uint64_t i = 5; i <= 1004; i++) v.push_back(i);
  v.push_back(100000);
  return v;
}
std::string RunCaseBytes() {
  std::string e;
  PutLE32(&e, 1681511377);
  PutLE64(&e, 1);
  PutLE32(&e, 0);
  PutLE16(&e, 12347);  // cookie with run containers, then containers - 1
  PutLE16(&e, 1);
  e.push_back(0x01);  // run bitset: container 0 is a run
  PutLE16(&e, 0);
  PutLE16(&e, 999);
  PutLE16(&e, 1);
  PutLE16(&e, 0);
  // fewer than 4 containers: no offsets
  PutLE16(&e, 1);  // one run: start 5, length - 1 = 999
  PutLE16(&e, 5);
  PutLE16(&e, 999);
  PutLE16(&e, 34464);
  return e;
}
std::vector<uint64_t> WideCase() { return {1, (1ULL << 32) + 7}; }
std::string WideCaseBytes() {
  std::string e;
  PutLE32(&e, 1681511377);
  PutLE64(&e, 2);
  for (uint32_t key : {0u, 1u}) {
    PutLE32(&e, key);
    PutLE32(&e, 12346);
    PutLE32(&e, 1);
    PutLE16(&e, 0);
    PutLE16(&e, 0);
    PutLE32(&e, 16);
    PutLE16(&e, key == 0 ? 1 : 7);
  }
  return e;
}

TEST(DeletionVectorCodecTest, Z85EncodesTheRfcVector) {
  EXPECT_EQ(internal::Z85Encode(std::string("\x86\x4F\xD2\x6F\xB5\x59\xF7\x5B", 8)), "HelloWorld");
  EXPECT_EQ(internal::Z85Encode(std::string(4, '\0')), "00000");
  EXPECT_EQ(internal::Z85Encode(std::string(4, '\xff')), "%nSc0");
  std::string bytes;
  for (int i = 0; i < 64; i++) bytes.push_back(static_cast<char>(i * 37));
  ASSERT_OK_AND_ASSIGN(std::string back, internal::Z85Decode(internal::Z85Encode(bytes)));
  EXPECT_EQ(back, bytes);
}

TEST(DeletionVectorCodecTest, RowPositionsSerialiseInThePortableFormat) {
  EXPECT_EQ(Hex(internal::SerializeRowPositions(ArrayCase())), Hex(ArrayCaseBytes()));
  EXPECT_EQ(Hex(internal::SerializeRowPositions(RunCase())), Hex(RunCaseBytes()));
  EXPECT_EQ(Hex(internal::SerializeRowPositions(WideCase())), Hex(WideCaseBytes()));
  ASSERT_OK_AND_ASSIGN(auto rows, internal::DeserializeRowPositions(internal::SerializeRowPositions(RunCase())));
  EXPECT_EQ(rows, RunCase());
}

TEST(DeletionVectorCodecTest, DeletionVectorFileLayout) {
  testing::TempDir tmp;
  std::string dir = tmp.Sub("t");
  fs::create_directories(dir);
  ASSERT_OK_AND_ASSIGN(auto dvs, internal::WriteDeletionVectorFile(FileSystem::Default(), dir, {ArrayCase(), RunCase()}));
  ASSERT_EQ(dvs.size(), 2u);
  std::vector<std::string> files;
  for (auto& e : fs::directory_iterator(dir)) files.push_back(e.path().filename().string());
  ASSERT_EQ(files.size(), 1u);  // one file for every DV of the call, no temp left
  // The name holds the UUID whose 16 bytes the descriptors carry in Z85.
  ASSERT_EQ(dvs[0].path_or_inline_dv.size(), 20u);
  ASSERT_OK_AND_ASSIGN(std::string uuid, internal::Z85Decode(dvs[0].path_or_inline_dv));
  std::string hex;
  for (unsigned char c : uuid) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", c);
    hex += b;
  }
  std::string name = files[0];
  std::string expected_name = "deletion_vector_" + hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) +
                              "-" + hex.substr(16, 4) + "-" + hex.substr(20) + ".bin";
  EXPECT_EQ(name, expected_name);
  EXPECT_EQ(hex[12], '4') << "a version 4 UUID";
  // Version byte, then per DV: big-endian size, the bitmap, big-endian CRC-32.
  std::string expected(1, '\x01');
  for (const std::string& bitmap : {ArrayCaseBytes(), RunCaseBytes()}) {
    PutBE32(&expected, static_cast<uint32_t>(bitmap.size()));
    expected += bitmap;
    PutBE32(&expected, static_cast<uint32_t>(::crc32(0L, reinterpret_cast<const Bytef*>(bitmap.data()),
                                                      static_cast<uInt>(bitmap.size()))));
  }
  std::ifstream in(dir + "/" + name, std::ios::binary);
  std::string actual((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(Hex(actual), Hex(expected));
  EXPECT_EQ(dvs[0].storage_type, "u");
  EXPECT_EQ(dvs[0].offset, 1);
  EXPECT_EQ(dvs[0].size_in_bytes, static_cast<int32_t>(ArrayCaseBytes().size()));
  EXPECT_EQ(dvs[0].cardinality, 4);
  EXPECT_EQ(dvs[1].path_or_inline_dv, dvs[0].path_or_inline_dv);
  EXPECT_EQ(dvs[1].offset, static_cast<int32_t>(1 + 4 + ArrayCaseBytes().size() + 4));
  EXPECT_EQ(dvs[1].cardinality, 1001);
  ASSERT_OK_AND_ASSIGN(auto rows, internal::LoadDeletionVector(FileSystem::Default(), dir, dvs[1]));
  EXPECT_EQ(rows, RunCase());
  // Inline: the padded bitmap in Z85, sizeInBytes its own length.
  DeletionVector inl = internal::InlineDeletionVector(ArrayCase());
  EXPECT_EQ(inl.storage_type, "i");
  EXPECT_FALSE(inl.offset.has_value());
  EXPECT_EQ(inl.size_in_bytes, static_cast<int32_t>(ArrayCaseBytes().size()));
  ASSERT_OK_AND_ASSIGN(std::string inline_bytes, internal::Z85Decode(inl.path_or_inline_dv));
  EXPECT_EQ(Hex(inline_bytes.substr(0, inl.size_in_bytes)), Hex(ArrayCaseBytes()));
  ASSERT_OK_AND_ASSIGN(rows, internal::LoadDeletionVector(FileSystem::Default(), dir, inl));
  EXPECT_EQ(rows, ArrayCase());
}

// A rows query for DeleteRows: (add.path, position) pairs.
std::string Addresses(const std::vector<std::pair<std::string, std::vector<int64_t>>>& rows) {
  std::string sql;
  for (const auto& [path, positions] : rows) {
    for (int64_t p : positions) {
      sql += (sql.empty() ? "SELECT * FROM (VALUES " : ", ") + std::string("(") + engine::QuoteLiteral(path) + ", " +
             std::to_string(p) + ")";
    }
  }
  return sql + ") t(f, r)";
}

class DeletionVectorWriteTest : public WriterTest {
 protected:
  // DeleteRows + commit.
  Result<int64_t> Delete(Table* t, const std::string& rows_query) {
    auto tx = t->StartTransaction();
    auto n = tx->DeleteRows(conn_.get(), rows_query);
    if (!n.ok()) return n.status();
    tx->SetOperation("DELETE", {});
    RETURN_IF_ERROR(tx->Commit().status());
    return n;
  }

  // The event_ids a scan of the latest snapshot returns, sorted.
  std::vector<std::string> Ids(Table* t) {
    std::vector<std::string> out;
    auto snap = t->LoadSnapshot();
    EXPECT_OK(snap.status());
    if (!snap.ok()) return out;
    auto sql = ScanSql(t->path(), *snap);
    EXPECT_OK(sql.status());
    auto r = conn_->Query("SELECT event_id FROM (" + *sql + ") ORDER BY 1");
    EXPECT_OK(r.status());
    for (size_t i = 0; r.ok() && i < r->row_count(); i++) out.push_back(r->GetString(i, 0));
    return out;
  }

  // The event_ids at `positions` of a data file, read from the Parquet file itself.
  std::vector<std::string> IdsAt(Table* t, const AddFile& f, const std::vector<int64_t>& positions) {
    std::string list;
    for (int64_t p : positions) list += (list.empty() ? "" : ",") + std::to_string(p);
    auto r = conn_->Query("SELECT event_id FROM read_parquet(" + engine::QuoteLiteral(DataFilePath(t->path(), f.path)) +
                          ", file_row_number = true) WHERE file_row_number IN (" + list + ") ORDER BY 1");
    EXPECT_OK(r.status());
    std::vector<std::string> out;
    for (size_t i = 0; r.ok() && i < r->row_count(); i++) out.push_back(r->GetString(i, 0));
    return out;
  }

  std::string MetricsOf(Table* t) {
    auto h = t->History(1);
    EXPECT_OK(h.status());
    return h.ok() ? (*h)[0].operation_metrics_json : "";
  }

  int DvFiles(const std::string& dir) {
    int n = 0;
    for (auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().rfind("deletion_vector_", 0) == 0;
    return n;
  }
};

std::vector<std::string> Minus(std::vector<std::string> all, const std::vector<std::string>& gone) {
  std::set<std::string> g(gone.begin(), gone.end());
  all.erase(std::remove_if(all.begin(), all.end(), [&](const std::string& s) { return g.count(s) > 0; }), all.end());
  return all;
}

TEST_F(DeletionVectorWriteTest, NewTablesUseDeletionVectorsUnlessSwitchedOff) {
  auto t = Create({}, {"event_date"});
  ASSERT_NE(t, nullptr);
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  EXPECT_EQ(snap.protocol.min_reader_version, 3);
  EXPECT_EQ(snap.protocol.min_writer_version, 7);
  EXPECT_EQ(snap.protocol.reader_features, (std::vector<std::string>{"deletionVectors"}));
  EXPECT_EQ(snap.protocol.writer_features, (std::vector<std::string>{"deletionVectors"}));
  EXPECT_EQ(snap.Config("delta.enableDeletionVectors", ""), "true");
  ASSERT_OK(Append(t.get(), Rows("a", 6)).status());
  ExpectValid();

  path_ = tmp_.Sub("old_readers");
  auto old = Create({{"delta.enableDeletionVectors", "false"}}, {"event_date"});
  ASSERT_NE(old, nullptr);
  ASSERT_OK_AND_ASSIGN(snap, old->LoadSnapshot());
  EXPECT_EQ(snap.protocol.min_reader_version, 1);
  EXPECT_EQ(snap.protocol.min_writer_version, 2);
  EXPECT_FALSE(snap.protocol.reader_features.has_value());
  EXPECT_FALSE(snap.protocol.writer_features.has_value());
  ASSERT_OK(Append(old.get(), Rows("a", 6)).status());
  ExpectValid();
  // A hand-made DV on it is refused at commit: the table lacks the feature.
  auto tx = old->StartTransaction();
  AddFile f = tx->read_snapshot().files[0];
  f.deletion_vector = internal::InlineDeletionVector({0});
  tx->RemoveFile(tx->read_snapshot().files[0]);
  tx->AddFiles({f});
  EXPECT_STATUS(tx->Commit().status(), kInvalidArgument);
}

TEST_F(DeletionVectorWriteTest, DeleteRowsMarksRowsAndReadsBack) {
  auto t = Create({}, {"event_date"});
  ASSERT_NE(t, nullptr);
  ASSERT_OK(Append(t.get(), Rows("a", 30)).status());  // 3 files of 10 rows
  const std::vector<std::string> all = Ids(t.get());
  ASSERT_EQ(all.size(), 30u);
  ASSERT_OK_AND_ASSIGN(Snapshot before, t->LoadSnapshot());
  const AddFile f0 = before.files[0], f1 = before.files[1], f2 = before.files[2];

  // Two calls in one transaction: the same file's rows are unioned.
  auto tx = t->StartTransaction();
  ASSERT_OK_AND_ASSIGN(int64_t n, tx->DeleteRows(conn_.get(), Addresses({{f0.path, {1, 3}}, {f1.path, {0}}})));
  EXPECT_EQ(n, 3);
  ASSERT_OK_AND_ASSIGN(n, tx->DeleteRows(conn_.get(), Addresses({{f0.path, {3, 5}}})));
  EXPECT_EQ(n, 1);
  tx->SetOperation("DELETE", {});
  ASSERT_OK(tx->Commit().status());
  ExpectValid();
  ASSERT_OK_AND_ASSIGN(Snapshot after, t->LoadSnapshot());
  ASSERT_EQ(after.files.size(), 3u);
  std::map<std::string, AddFile> by_path;
  for (const auto& f : after.files) by_path[f.path] = f;
  ASSERT_TRUE(by_path.count(f0.path));
  const AddFile& g0 = by_path[f0.path];
  ASSERT_TRUE(g0.deletion_vector.has_value());
  EXPECT_EQ(g0.deletion_vector->storage_type, "u");
  EXPECT_EQ(g0.deletion_vector->cardinality, 3);
  EXPECT_EQ(g0.size, f0.size);
  EXPECT_EQ(g0.modification_time, f0.modification_time);
  EXPECT_EQ(g0.partition_values, f0.partition_values);
  EXPECT_NE(g0.stats.find("\"numRecords\":10"), std::string::npos) << g0.stats;
  EXPECT_NE(g0.stats.find("\"tightBounds\":false"), std::string::npos) << g0.stats;
  ASSERT_OK_AND_ASSIGN(auto rows, ReadDeletedRows(path_, g0));
  EXPECT_EQ(rows, (std::vector<uint64_t>{1, 3, 5}));
  ASSERT_OK_AND_ASSIGN(rows, ReadDeletedRows(path_, by_path[f1.path]));
  EXPECT_EQ(rows, (std::vector<uint64_t>{0}));
  EXPECT_FALSE(by_path[f2.path].deletion_vector.has_value());
  std::string metrics = MetricsOf(t.get());
  EXPECT_NE(metrics.find("\"numDeletedRows\":\"4\""), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\"numDeletionVectorsAdded\":\"2\""), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\"numRemovedFiles\":\"0\""), std::string::npos) << metrics;
  std::vector<std::string> gone = IdsAt(t.get(), f0, {1, 3, 5});
  for (const auto& id : IdsAt(t.get(), f1, {0})) gone.push_back(id);
  EXPECT_EQ(Ids(t.get()), Minus(all, gone));

  // A later transaction: the old DV's rows stay deleted, the remove names it.
  ASSERT_OK_AND_ASSIGN(n, Delete(t.get(), Addresses({{f0.path, {5, 7}}})));
  EXPECT_EQ(n, 1);
  metrics = MetricsOf(t.get());
  EXPECT_NE(metrics.find("\"numDeletionVectorsUpdated\":\"1\""), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\"numDeletionVectorsRemoved\":\"1\""), std::string::npos) << metrics;
  ASSERT_OK_AND_ASSIGN(std::string commit, FileSystem::Default()->ReadFile(path_ + "/_delta_log/" + CommitFileName(3)));
  EXPECT_NE(commit.find("\"remove\":{\"path\":\"" + f0.path), std::string::npos);
  EXPECT_NE(commit.find(g0.deletion_vector->path_or_inline_dv), std::string::npos) << "the remove carries the old DV";
  ASSERT_OK_AND_ASSIGN(after, t->LoadSnapshot());
  for (const auto& f : after.files) {
    if (f.path == f0.path) {
      EXPECT_EQ(f.deletion_vector->cardinality, 4);
    }
  }
  gone.push_back(IdsAt(t.get(), f0, {7})[0]);
  EXPECT_EQ(Ids(t.get()), Minus(all, gone));
  // Rows already deleted: nothing to do.
  tx = t->StartTransaction();
  ASSERT_OK_AND_ASSIGN(n, tx->DeleteRows(conn_.get(), Addresses({{f0.path, {1, 7}}})));
  EXPECT_EQ(n, 0);
  EXPECT_TRUE(tx->staged_adds().empty());

  // Every row of a file: the file is just removed.
  ASSERT_OK_AND_ASSIGN(n, Delete(t.get(), Addresses({{f1.path, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}})));
  EXPECT_EQ(n, 9);
  ASSERT_OK_AND_ASSIGN(commit, FileSystem::Default()->ReadFile(path_ + "/_delta_log/" + CommitFileName(4)));
  EXPECT_EQ(commit.find("\"add\""), std::string::npos) << commit;
  metrics = MetricsOf(t.get());
  EXPECT_NE(metrics.find("\"numRemovedFiles\":\"1\""), std::string::npos) << metrics;
  ASSERT_OK_AND_ASSIGN(after, t->LoadSnapshot());
  EXPECT_EQ(after.files.size(), 2u);
  for (const auto& id : IdsAt(t.get(), f1, {1, 2, 3, 4, 5, 6, 7, 8, 9})) gone.push_back(id);
  EXPECT_EQ(Ids(t.get()), Minus(all, gone));
  ExpectValid();

  // Bad addresses: a file that is not live, a position past numRecords.
  tx = t->StartTransaction();
  EXPECT_STATUS(tx->DeleteRows(conn_.get(), Addresses({{f1.path, {0}}})).status(), kInvalidArgument);
  EXPECT_STATUS(tx->DeleteRows(conn_.get(), Addresses({{f2.path, {10}}})).status(), kInvalidArgument);
  EXPECT_STATUS(tx->DeleteRows(conn_.get(), Addresses({{f2.path, {-1}}})).status(), kInvalidArgument);
  EXPECT_STATUS(tx->DeleteRows(conn_.get(), Addresses({{"nope.parquet", {0}}})).status(), kInvalidArgument);
  EXPECT_TRUE(tx->staged_adds().empty());
}

TEST_F(DeletionVectorWriteTest, ConcurrentDeletesOfOneFileConflict) {
  auto t = Create({}, {"event_date"});
  ASSERT_NE(t, nullptr);
  ASSERT_OK(Append(t.get(), Rows("c", 30)).status());
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  auto a = t->StartTransaction(snap);
  auto b = t->StartTransaction(snap);
  ASSERT_OK(a->DeleteRows(conn_.get(), Addresses({{snap.files[0].path, {1}}})).status());
  ASSERT_OK(b->DeleteRows(conn_.get(), Addresses({{snap.files[0].path, {2}}})).status());
  ASSERT_OK(a->Commit().status());
  EXPECT_STATUS(b->Commit().status(), kConflict);
  // Files of different partitions, and a blind append: no conflict.
  ASSERT_OK_AND_ASSIGN(snap, t->LoadSnapshot());
  auto c = t->StartTransaction(snap);
  auto d = t->StartTransaction(snap);
  auto e = t->StartTransaction(snap);
  ASSERT_OK(c->DeleteRows(conn_.get(), Addresses({{snap.files[1].path, {1}}})).status());
  ASSERT_OK(d->DeleteRows(conn_.get(), Addresses({{snap.files[2].path, {1}}})).status());
  ASSERT_OK(e->WriteFiles(conn_.get(), Rows("e", 6)).status());
  e->SetBlindAppend(true);
  ASSERT_OK(e->Commit().status());
  ASSERT_OK(c->Commit().status());
  ASSERT_OK(d->Commit().status());
  EXPECT_EQ(Ids(t.get()).size(), 30u - 3 + 6);
  // A DeleteRows racing an optimize that rewrote its file conflicts (the rows
  // it addressed no longer exist under that path); the optimize itself, at
  // snapshot isolation, does not conflict with deletes of other files.
  ASSERT_OK(Append(t.get(), Rows("f", 30)).status());
  ASSERT_OK_AND_ASSIGN(snap, t->LoadSnapshot());
  auto late = t->StartTransaction(snap);
  ASSERT_OK(late->DeleteRows(conn_.get(), Addresses({{snap.files[0].path, {0}}})).status());
  ASSERT_OK_AND_ASSIGN(OptimizeResult opt, t->Optimize());
  EXPECT_GT(opt.files_removed, 0);
  EXPECT_STATUS(late->Commit().status(), kConflict);
  ExpectValid();
}

TEST_F(DeletionVectorWriteTest, DeleteWhereOnDvAndCopyOnWriteTables) {
  auto dv = Create({}, {"event_date"});
  ASSERT_NE(dv, nullptr);
  path_ = tmp_.Sub("cow");
  auto cow = Create({{"delta.enableDeletionVectors", "false"}}, {"event_date"});
  ASSERT_NE(cow, nullptr);
  for (Table* t : {dv.get(), cow.get()}) ASSERT_OK(Append(t, Rows("w", 30)).status());
  ASSERT_OK_AND_ASSIGN(Snapshot dv_before, dv->LoadSnapshot());
  ASSERT_OK_AND_ASSIGN(int64_t a, dv->DeleteWhere(conn_.get(), "src = 'web' OR n = 1"));
  ASSERT_OK_AND_ASSIGN(int64_t b, cow->DeleteWhere(conn_.get(), "src = 'web' OR n = 1"));
  EXPECT_EQ(a, 9);  // n % 4 == 0 below 30 (8 rows) and n = 1
  EXPECT_EQ(b, 9);
  EXPECT_EQ(Ids(dv.get()), Ids(cow.get()));
  EXPECT_EQ(Ids(dv.get()).size(), 21u);
  // The DV table kept its data files, now with DVs; the other rewrote them.
  ASSERT_OK_AND_ASSIGN(Snapshot dv_after, dv->LoadSnapshot());
  ASSERT_EQ(dv_after.files.size(), dv_before.files.size());
  for (size_t i = 0; i < dv_after.files.size(); i++) {
    EXPECT_EQ(dv_after.files[i].path, dv_before.files[i].path);
    EXPECT_TRUE(dv_after.files[i].deletion_vector.has_value());
  }
  ASSERT_OK_AND_ASSIGN(Snapshot cow_after, cow->LoadSnapshot());
  for (const auto& f : cow_after.files) EXPECT_FALSE(f.deletion_vector.has_value());
  EXPECT_EQ(DvFiles(path_), 0);
  std::string metrics = MetricsOf(cow.get());
  EXPECT_NE(metrics.find("\"numCopiedRows\":\"21\""), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\"numDeletedRows\":\"9\""), std::string::npos) << metrics;
  ASSERT_OK_AND_ASSIGN(auto history, dv->History(1));
  EXPECT_EQ(history[0].operation, "DELETE");
  // Deleting again deletes nothing new.
  ASSERT_OK_AND_ASSIGN(a, dv->DeleteWhere(conn_.get(), "src = 'web'"));
  EXPECT_EQ(a, 0);
  ExpectValid();
  path_ = dv->path();
  ExpectValid();
}

TEST_F(DeletionVectorWriteTest, OptimizePurgesDeletionVectors) {
  auto t = Create({}, {"event_date"});
  ASSERT_NE(t, nullptr);
  ASSERT_OK(Append(t.get(), Rows("p", 60)).status());  // 3 files of 20 rows
  ASSERT_OK_AND_ASSIGN(int64_t deleted, t->DeleteWhere(conn_.get(), "n % 5 = 0"));
  EXPECT_EQ(deleted, 12);
  const std::vector<std::string> before = Ids(t.get());
  // 20% deleted: not past a 50% threshold, and single small files are not merged.
  ASSERT_OK_AND_ASSIGN(OptimizeResult none, t->Optimize({.purge_deleted_fraction = 0.5}));
  EXPECT_EQ(none.version, -1);
  ASSERT_OK_AND_ASSIGN(OptimizeResult opt, t->Optimize());
  EXPECT_EQ(opt.files_removed, 3);
  EXPECT_EQ(opt.files_added, 3);
  EXPECT_EQ(opt.deletion_vectors_purged, 3);
  EXPECT_EQ(opt.deleted_rows_purged, 12);
  EXPECT_EQ(opt.rows, 48);
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  for (const auto& f : snap.files) {
    EXPECT_FALSE(f.deletion_vector.has_value());
    EXPECT_NE(f.stats.find("\"numRecords\":16"), std::string::npos) << f.stats;
    EXPECT_FALSE(f.data_change);
  }
  EXPECT_EQ(Ids(t.get()), before);
  std::string metrics = MetricsOf(t.get());
  EXPECT_NE(metrics.find("\"numDeletionVectorsRemoved\":\"3\""), std::string::npos) << metrics;
  ExpectValid();
  // A threshold of 0 purges any DV.
  ASSERT_OK(Delete(t.get(), Addresses({{snap.files[0].path, {0}}})).status());
  ASSERT_OK_AND_ASSIGN(none, t->Optimize({.min_file_size = 1, .purge_deleted_fraction = 0.1}));
  EXPECT_EQ(none.version, -1);  // 1 of 16 rows: under 10%, and the file counts as big
  ASSERT_OK_AND_ASSIGN(opt, t->Optimize({.min_file_size = 1, .purge_deleted_fraction = 0}));
  EXPECT_EQ(opt.deletion_vectors_purged, 1);
  EXPECT_EQ(Ids(t.get()).size(), before.size() - 1);
  ExpectValid();
}

TEST_F(DeletionVectorWriteTest, OptimizeDoesBoundedWorkWorstFirst) {
  auto t = Create({}, {"event_date"});
  ASSERT_NE(t, nullptr);
  for (int i = 0; i < 3; i++) ASSERT_OK(Append(t.get(), Rows("b" + std::to_string(i), 30)).status());
  // One file of 2024-05-03 loses half its rows: that partition goes first.
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  const AddFile* target = nullptr;
  for (const auto& f : snap.files) {
    if (f.partition_values.at("event_date") == "2024-05-03") target = &f;
  }
  ASSERT_NE(target, nullptr);
  ASSERT_OK(Delete(t.get(), Addresses({{target->path, {0, 1, 2, 3, 4}}})).status());
  const std::vector<std::string> before = Ids(t.get());
  ASSERT_OK_AND_ASSIGN(OptimizeResult first, t->Optimize({.max_input_bytes = 1}));
  EXPECT_TRUE(first.more_work);
  EXPECT_EQ(first.files_removed, 3);  // one partition's three files
  EXPECT_EQ(first.deletion_vectors_purged, 1);
  ASSERT_OK_AND_ASSIGN(snap, t->LoadSnapshot());
  int merged = 0;
  for (const auto& f : snap.files) merged += f.partition_values.at("event_date") == "2024-05-03";
  EXPECT_EQ(merged, 1);
  ASSERT_OK_AND_ASSIGN(OptimizeResult second, t->Optimize({.max_input_bytes = 1}));
  EXPECT_TRUE(second.more_work);
  ASSERT_OK_AND_ASSIGN(OptimizeResult third, t->Optimize({.max_input_bytes = 1}));
  EXPECT_FALSE(third.more_work);
  EXPECT_EQ(third.files_removed, 3);
  ASSERT_OK_AND_ASSIGN(OptimizeResult done, t->Optimize({.max_input_bytes = 1}));
  EXPECT_EQ(done.version, -1);
  ASSERT_OK_AND_ASSIGN(snap, t->LoadSnapshot());
  EXPECT_EQ(snap.files.size(), 3u);
  EXPECT_EQ(Ids(t.get()), before);
  EXPECT_STATUS(t->Optimize({.max_input_bytes = 0}).status(), kInvalidArgument);
  EXPECT_STATUS(t->Optimize({.purge_deleted_fraction = 2}).status(), kInvalidArgument);
  ExpectValid();
}

TEST_F(DeletionVectorWriteTest, VacuumDeletesUnreferencedDeletionVectorFiles) {
  FakeClock clock(SystemClock()->NowMicros());
  auto t = Create({}, {}, &clock);
  ASSERT_NE(t, nullptr);
  ASSERT_OK(Append(t.get(), Rows("v", 20)).status());
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  const std::string file = snap.files[0].path;
  // Two calls in one transaction: the first call's DV file ends up unreferenced.
  auto tx = t->StartTransaction();
  ASSERT_OK(tx->DeleteRows(conn_.get(), Addresses({{file, {1}}})).status());
  ASSERT_OK(tx->DeleteRows(conn_.get(), Addresses({{file, {2}}})).status());
  ASSERT_OK(tx->Commit().status());
  EXPECT_EQ(DvFiles(path_), 2);
  ASSERT_OK_AND_ASSIGN(VacuumResult none, t->Vacuum({}));
  EXPECT_TRUE(none.deleted.empty());  // within the retention
  clock.Advance(8LL * 86400 * 1000 * 1000);
  // Replaced a week later: its old DV file is held by an unexpired tombstone.
  ASSERT_OK(Delete(t.get(), Addresses({{file, {3}}})).status());
  EXPECT_EQ(DvFiles(path_), 3);
  ASSERT_OK_AND_ASSIGN(VacuumResult dry, t->Vacuum({.dry_run = true}));
  ASSERT_EQ(dry.deleted.size(), 1u);
  EXPECT_EQ(dry.deletion_vector_files, 1);
  EXPECT_EQ(DvFiles(path_), 3);
  ASSERT_OK_AND_ASSIGN(VacuumResult res, t->Vacuum({}));
  EXPECT_EQ(res.deleted, dry.deleted);
  EXPECT_EQ(res.deletion_vector_files, 1);
  EXPECT_EQ(DvFiles(path_), 2);
  EXPECT_EQ(Ids(t.get()).size(), 17u);
  ASSERT_OK_AND_ASSIGN(VacuumResult history_kept, t->Vacuum({}));
  EXPECT_TRUE(history_kept.deleted.empty());
  ASSERT_OK_AND_ASSIGN(auto older, t->LoadSnapshot(2));
  ASSERT_OK(ReadDeletedRows(path_, older.files[0]).status());  // time travel still has its DV
  // Once the tombstone expires, only the live DV file remains.
  clock.Advance(8LL * 86400 * 1000 * 1000);
  ASSERT_OK_AND_ASSIGN(res, t->Vacuum({}));
  EXPECT_EQ(res.deletion_vector_files, 1);
  EXPECT_EQ(DvFiles(path_), 1);
  EXPECT_EQ(Ids(t.get()).size(), 17u);
  ExpectValid();
}

// A file named by its add.path and by the decoded path in one call is one
// change (one remove, one add).
TEST_F(DeletionVectorWriteTest, OneFileUnderBothSpellingsOfItsPath) {
  auto t = Create({}, {"src"});
  ASSERT_NE(t, nullptr);
  ASSERT_OK(Append(t.get(), Rows("s", 16)).status());
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  const AddFile* special = nullptr;
  for (const auto& f : snap.files) {
    if (f.partition_values.at("src") == "a:b/c=d%e f") special = &f;
  }
  ASSERT_NE(special, nullptr);
  ASSERT_NE(special->path, DecodePath(special->path));
  ASSERT_OK_AND_ASSIGN(int64_t n, Delete(t.get(), Addresses({{special->path, {0}}, {DecodePath(special->path), {1, 0}}})));
  EXPECT_EQ(n, 2);
  ASSERT_OK_AND_ASSIGN(Snapshot after, t->LoadSnapshot());
  for (const auto& f : after.files) {
    if (f.path == special->path) {
      ASSERT_TRUE(f.deletion_vector.has_value());
      EXPECT_EQ(f.deletion_vector->cardinality, 2);
    }
  }
  EXPECT_EQ(Ids(t.get()).size(), 14u);
  ExpectValid();
}

// DVs written across checkpoints: the checkpoint's state equals the replayed
// one, DV for DV, and reads back the same rows.
TEST_F(DeletionVectorWriteTest, DeletionVectorsSurviveCheckpoints) {
  auto t = Create({{"delta.checkpointInterval", "3"}}, {"event_date"});
  ASSERT_NE(t, nullptr);
  ASSERT_OK(Append(t.get(), Rows("k", 30)).status());
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  ASSERT_OK(Delete(t.get(), Addresses({{snap.files[0].path, {0, 4}}, {snap.files[1].path, {9}}})).status());
  ASSERT_OK(Delete(t.get(), Addresses({{snap.files[0].path, {5}}})).status());  // version 3: a checkpoint
  ASSERT_OK(Delete(t.get(), Addresses({{snap.files[2].path, {1, 2, 3}}})).status());
  EXPECT_TRUE(fs::exists(path_ + "/_delta_log/00000000000000000003.checkpoint.parquet"));
  internal::ClearSnapshotCache();
  ASSERT_OK_AND_ASSIGN(Snapshot with_ck, t->LoadSnapshot());
  ASSERT_OK_AND_ASSIGN(Snapshot replayed, ReplayedWithoutCheckpoints());
  ASSERT_EQ(with_ck.files.size(), replayed.files.size());
  int with_dv = 0;
  for (size_t i = 0; i < with_ck.files.size(); i++) {
    EXPECT_EQ(with_ck.files[i].path, replayed.files[i].path);
    ASSERT_EQ(with_ck.files[i].deletion_vector.has_value(), replayed.files[i].deletion_vector.has_value());
    if (!with_ck.files[i].deletion_vector) continue;
    with_dv++;
    EXPECT_EQ(with_ck.files[i].deletion_vector->UniqueId(), replayed.files[i].deletion_vector->UniqueId());
    EXPECT_EQ(with_ck.files[i].deletion_vector->cardinality, replayed.files[i].deletion_vector->cardinality);
    EXPECT_EQ(with_ck.files[i].stats, replayed.files[i].stats);
  }
  EXPECT_EQ(with_dv, 3);
  EXPECT_EQ(Ids(t.get()).size(), 30u - 7);
  ExpectValid();
}

TEST_F(DeletionVectorWriteTest, ValidatorCatchesBrokenDeletionVectors) {
  auto t = Create({}, {});
  ASSERT_NE(t, nullptr);
  ASSERT_OK(Append(t.get(), Rows("x", 10)).status());
  ASSERT_OK_AND_ASSIGN(Snapshot snap, t->LoadSnapshot());
  ASSERT_OK(Delete(t.get(), Addresses({{snap.files[0].path, {2, 4}}})).status());
  ExpectValid();
  auto problems = [&]() {
    test::LogValidator v(path_, conn_.get());
    std::string all;
    for (const auto& p : v.Validate()) all += p + "\n";
    return all;
  };
  std::string commit = path_ + "/_delta_log/" + CommitFileName(2);
  std::ifstream in(commit);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  // A wrong cardinality.
  std::string tampered = text;
  size_t pos = tampered.find("\"cardinality\":2");
  ASSERT_NE(pos, std::string::npos) << text;
  tampered.replace(pos, 15, "\"cardinality\":3");
  { std::ofstream(commit, std::ios::trunc) << tampered; }
  EXPECT_NE(problems().find("DV cardinality 3"), std::string::npos);
  { std::ofstream(commit, std::ios::trunc) << text; }
  EXPECT_EQ(problems(), "");
  // A flipped bit in the DV file.
  std::string dv_file;
  for (auto& e : fs::directory_iterator(path_)) {
    if (e.path().filename().string().rfind("deletion_vector_", 0) == 0) dv_file = e.path().string();
  }
  ASSERT_FALSE(dv_file.empty());
  {
    std::fstream f(dv_file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('\x7f');
  }
  EXPECT_NE(problems().find("CRC-32 mismatch"), std::string::npos);
  // A live DV whose file is gone.
  fs::remove(dv_file);
  EXPECT_NE(problems().find("deletion vector file of live"), std::string::npos);
}

}  // namespace
}  // namespace clicklake::delta

// Reads every table of ../shared/data/delta-golden (written by Spark) and
// checks what each should read as, at every version it has.

#include <filesystem>
#include <fstream>

#include "common/test_util.h"
#include "delta/internal.h"
#include "delta/table.h"
#include "delta/testing/golden_table_test.h"

namespace clicklake::delta {
namespace {

namespace fs = std::filesystem;

class GoldenTest : public test::GoldenTableTest {
 protected:
  GoldenTest() : GoldenTableTest("delta-golden") {}

  std::vector<std::string> FilePaths(const Snapshot& s) {
    std::vector<std::string> out;
    for (const auto& f : s.files) out.push_back(f.path);
    return out;
  }

  // Rows of the snapshot through ScanSql, as one string per row (ordered).
  std::vector<std::string> Rows(const std::string& path, const Snapshot& snap, const std::string& columns,
                                const std::string& order) {
    auto sql = ScanSql(path, snap);
    EXPECT_OK(sql.status());
    if (!sql.ok()) return {};
    auto r = Query("SELECT concat_ws('|', " + columns + ") FROM (" + *sql + ") ORDER BY " + order);
    std::vector<std::string> out;
    for (size_t i = 0; i < r.row_count(); i++) out.push_back(r.GetString(i, 0));
    return out;
  }

  // Total rows of the snapshot's files read directly (the independent expectation).
  int64_t DirectCount(const std::string& path, const Snapshot& snap) {
    int64_t n = 0;
    for (const auto& f : snap.files) {
      auto r = Query("SELECT count(*) FROM read_parquet(" + engine::QuoteLiteral(path + "/" + DecodePath(f.path)) + ")");
      n += r.GetInt64(0, 0);
    }
    return n;
  }

  int64_t ScanCount(const std::string& path, const Snapshot& snap) {
    auto sql = ScanSql(path, snap);
    EXPECT_OK(sql.status());
    if (!sql.ok()) return -1;
    return Query("SELECT count(*) FROM (" + *sql + ")").GetInt64(0, 0, -1);
  }
};

TEST_F(GoldenTest, EveryTableReadsOrIsRefused) {
  int tables = 0;
  for (auto& e : fs::directory_iterator(golden_)) {
    if (!e.is_directory()) continue;
    tables++;
    std::string name = e.path().filename().string();
    auto table = Table::Open(e.path().string(), db_.get());
    ASSERT_OK(table.status());
    auto snap = (*table)->LoadSnapshot();
    if (name == "deltalog-invalid-protocol-version") {
      EXPECT_STATUS(snap.status(), kUnsupported);
      EXPECT_NE(snap.status().message().find("reader version 99"), std::string::npos) << snap.status();
      continue;
    }
    ASSERT_TRUE(snap.ok()) << name << ": " << snap.status();
    // Every version in the log loads.
    for (int64_t v = 0; v <= snap->version; v++) {
      auto sv = (*table)->LoadSnapshot(v);
      EXPECT_TRUE(sv.ok()) << name << " v" << v << ": " << sv.status();
    }
    // Tables whose files exist: the scan agrees with reading the files directly.
    bool files_exist = true;
    for (const auto& f : snap->files) files_exist &= fs::exists(e.path().string() + "/" + DecodePath(f.path));
    if (files_exist) {
      EXPECT_EQ(ScanCount(e.path().string(), *snap), DirectCount(e.path().string(), *snap)) << name;
    }
  }
  EXPECT_EQ(tables, 12);
}

TEST_F(GoldenTest, BasicDecimalTable) {
  std::string path = Path("basic-decimal-table");
  Snapshot s = Load(path);
  EXPECT_EQ(s.version, 0);
  EXPECT_EQ(s.files.size(), 4u);
  EXPECT_EQ(s.partition_columns(), std::vector<std::string>{"part"});
  ASSERT_EQ(s.schema().fields.size(), 4u);
  EXPECT_EQ(s.schema().fields[3].type, "decimal(20,10)");
  EXPECT_EQ(Rows(path, s, "part, col1, col2, col3", "part"),
            (std::vector<std::string>{"-2342342.23423|-999.99|-99999.99999|-9999999999.9999999999",
                                      "0.00004|0.00|0.00000|0.0000000000", "234.00000|1.00|2.00000|3.0000000000",
                                      "2342222.23454|111.11|22222.22222|3333333333.3333333333"}));
}

TEST_F(GoldenTest, CheckpointTableAtEveryVersion) {
  std::string path = Path("checkpoint");
  for (int64_t v = 0; v <= 14; v++) {
    Snapshot s = Load(path, v);
    EXPECT_EQ(FilePaths(s), std::vector<std::string>{std::to_string(v + 1)}) << "v" << v;
    EXPECT_EQ(s.schema().fields[0].name, "intCol");
  }
  // The latest snapshot starts from the checkpoint at 10: same answer.
  Snapshot latest = Load(path);
  EXPECT_EQ(latest.version, 14);
  EXPECT_EQ(FilePaths(latest), std::vector<std::string>{"15"});
  EXPECT_EQ(latest.tombstones.size(), 14u);  // 10 from the checkpoint's tombstones... plus 4 later removes
}

TEST_F(GoldenTest, CheckpointMissingOrCorruptLastCheckpoint) {
  std::string path = Copy("checkpoint");
  {
    std::ofstream out(path + "/_delta_log/_last_checkpoint", std::ios::trunc);
    out << "{not json";
  }
  EXPECT_EQ(FilePaths(Load(path)), std::vector<std::string>{"15"});
  fs::remove(path + "/_delta_log/_last_checkpoint");
  EXPECT_EQ(FilePaths(Load(path)), std::vector<std::string>{"15"});
  EXPECT_EQ(FilePaths(Load(path, 10)), std::vector<std::string>{"11"});
}

TEST_F(GoldenTest, CheckpointOnlyLogAfterCleanup) {
  // Commits before the checkpoint gone: versions >= 10 still load, older ones are NotFound.
  std::string path = Copy("checkpoint");
  for (int v = 0; v < 10; v++) fs::remove(path + "/_delta_log/" + CommitFileName(v));
  EXPECT_EQ(FilePaths(Load(path)), std::vector<std::string>{"15"});
  EXPECT_EQ(FilePaths(Load(path, 10)), std::vector<std::string>{"11"});
  auto table = Table::Open(path, db_.get());
  ASSERT_OK(table.status());
  EXPECT_STATUS((*table)->LoadSnapshot(5).status(), kNotFound);
}

TEST_F(GoldenTest, MultiPartCheckpoint) {
  std::string path = Copy("checkpoint");
  std::string log = path + "/_delta_log/";
  std::string single = log + "00000000000000000010.checkpoint.parquet";
  // Split the Spark checkpoint into two parts.
  ASSERT_OK(conn_->Execute("COPY (SELECT * FROM read_parquet(" + engine::QuoteLiteral(single) +
                           ") WHERE add IS NULL) TO " +
                           engine::QuoteLiteral(log + "00000000000000000010.checkpoint.0000000001.0000000002.parquet") +
                           " (FORMAT parquet)"));
  ASSERT_OK(conn_->Execute("COPY (SELECT * FROM read_parquet(" + engine::QuoteLiteral(single) +
                           ") WHERE add IS NOT NULL) TO " +
                           engine::QuoteLiteral(log + "00000000000000000010.checkpoint.0000000002.0000000002.parquet") +
                           " (FORMAT parquet)"));
  fs::remove(single);
  fs::remove(log + "_last_checkpoint");
  for (int v = 0; v < 10; v++) fs::remove(log + CommitFileName(v));
  EXPECT_EQ(FilePaths(Load(path)), std::vector<std::string>{"15"});
  EXPECT_EQ(FilePaths(Load(path, 10)), std::vector<std::string>{"11"});
  // An incomplete set is ignored: with part 2 gone nothing can rebuild v10.
  fs::remove(log + "00000000000000000010.checkpoint.0000000002.0000000002.parquet");
  internal::ClearSnapshotCache();  // else the cached v14 answers without the checkpoint
  auto table = Table::Open(path, db_.get());
  ASSERT_OK(table.status());
  EXPECT_STATUS((*table)->LoadSnapshot().status(), kNotFound);
}

TEST_F(GoldenTest, PartitionValuesFromTheLog) {
  std::string path = Path("data-reader-partition-values");
  Snapshot s = Load(path);
  EXPECT_EQ(s.files.size(), 3u);
  EXPECT_EQ(s.partition_columns().size(), 12u);
  auto rows = Rows(path, s,
                   "value, coalesce(as_int::VARCHAR,'N'), coalesce(as_long::VARCHAR,'N'), coalesce(as_byte::VARCHAR,'N'), "
                   "coalesce(as_boolean::VARCHAR,'N'), coalesce(as_float::VARCHAR,'N'), coalesce(as_string,'N'), "
                   "coalesce(as_string_lit_null,'N'), coalesce(as_date::VARCHAR,'N'), "
                   "coalesce(strftime(as_timestamp, '%Y-%m-%d %H:%M:%S'),'N'), coalesce(as_big_decimal::VARCHAR,'N'), "
                   "coalesce(as_nested_struct.aa, 'N')",
                   "value");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], "0|0|0|0|true|0.0|0|null|2021-09-08|2021-09-08 11:11:11|0|0");
  EXPECT_EQ(rows[1], "1|1|1|1|false|1.0|1|null|2021-09-08|2021-09-08 11:11:11|1|1");
  EXPECT_EQ(rows[2], "2|N|N|N|N|N|N|N|N|N|N|2");
  // Special characters: add.path is decoded exactly once.
  bool found = false;
  for (const auto& f : s.files) {
    if (f.partition_values.at("as_int") == "0") {
      found = true;
      EXPECT_NE(DecodePath(f.path).find("as_timestamp=2021-09-08 11%3A11%3A11/"), std::string::npos);
      EXPECT_EQ(f.partition_values.at("as_timestamp"), "2021-09-08 11:11:11");
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(GoldenTest, Primitives) {
  std::string path = Path("data-reader-primitives");
  Snapshot s = Load(path);
  auto r = Query("SELECT count(*), count(as_int), sum(as_long), sum(as_byte), sum(as_short), "
                 "count(*) FILTER (WHERE as_boolean), sum(as_float), sum(as_double), max(as_string), "
                 "max(as_binary)::VARCHAR, sum(as_big_decimal) FROM (" + *ScanSql(path, s) + ")");
  ASSERT_EQ(r.row_count(), 1u);
  EXPECT_EQ(r.GetInt64(0, 0), 11);
  EXPECT_EQ(r.GetInt64(0, 1), 10);
  EXPECT_EQ(r.GetInt64(0, 2), 45);
  EXPECT_EQ(r.GetInt64(0, 3), 45);
  EXPECT_EQ(r.GetInt64(0, 4), 45);
  EXPECT_EQ(r.GetInt64(0, 5), 5);
  EXPECT_DOUBLE_EQ(r.GetDouble(0, 6), 45.0);
  EXPECT_DOUBLE_EQ(r.GetDouble(0, 7), 45.0);
  EXPECT_EQ(r.GetString(0, 8), "9");
  EXPECT_EQ(r.GetString(0, 9), "\\x09\\x09");
  EXPECT_EQ(r.GetString(0, 10), "45");
}

TEST_F(GoldenTest, StatsOfAllTypes) {
  std::string path = Path("data-skipping-basic-stats-all-types");
  Snapshot s = Load(path);
  ASSERT_EQ(s.files.size(), 1u);
  EXPECT_NE(s.files[0].stats.find("\"numRecords\":1"), std::string::npos);
  EXPECT_EQ(ScanCount(path, s), 1);
  auto r = Query("SELECT as_timestamp::VARCHAR, as_date::VARCHAR FROM (" + *ScanSql(path, s) + ")");
  EXPECT_EQ(r.GetString(0, 0), "2000-01-01 08:00:00+00");
  EXPECT_EQ(r.GetString(0, 1), "2000-01-01");
  // Stats-based pruning keeps the file for a matching value and drops it otherwise.
  EXPECT_EQ(PruneFiles(s, {{"as_int", "=", "0"}}).size(), 1u);
  EXPECT_EQ(PruneFiles(s, {{"as_int", ">", "0"}}).size(), 0u);
  EXPECT_EQ(PruneFiles(s, {{"as_string", "=", "1"}}).size(), 0u);
  EXPECT_EQ(PruneFiles(s, {{"as_date", "<", "2000-01-01"}}).size(), 0u);
  EXPECT_EQ(PruneFiles(s, {{"as_timestamp", "=", "2000-01-01T08:00:00Z"}}).size(), 1u);
}

TEST_F(GoldenTest, DeleteReAddSameFile) {
  std::string path = Path("delete-re-add-same-file-different-transactions");
  EXPECT_EQ(FilePaths(Load(path, 0)), std::vector<std::string>{"foo"});
  EXPECT_EQ(FilePaths(Load(path, 1)), std::vector<std::string>{});
  Snapshot v2 = Load(path, 2);
  ASSERT_EQ(FilePaths(v2), std::vector<std::string>{"foo"});
  EXPECT_EQ(v2.files[0].modification_time, 1700000000000);
  EXPECT_EQ(FilePaths(Load(path, 3)), (std::vector<std::string>{"bar", "foo"}));
  EXPECT_TRUE(Load(path, 3).tombstones.empty());
}

TEST_F(GoldenTest, SpecialCharacterPaths) {
  Snapshot a0 = Load(Path("log-replay-special-characters-a"), 0);
  ASSERT_EQ(a0.files.size(), 1u);
  EXPECT_EQ(DecodePath(a0.files[0].path), "special p@#h");
  EXPECT_TRUE(Load(Path("log-replay-special-characters-a"), 1).files.empty());
  EXPECT_EQ(Load(Path("log-replay-special-characters-b")).files.size(), 1u);
}

TEST_F(GoldenTest, InvalidProtocolRefused) {
  auto table = Table::Open(Path("deltalog-invalid-protocol-version"), db_.get());
  ASSERT_OK(table.status());
  EXPECT_STATUS((*table)->LoadSnapshot().status(), kUnsupported);
  EXPECT_STATUS((*table)->LoadSnapshot(0).status(), kUnsupported);
  EXPECT_STATUS((*table)->StartTransaction()->Commit().status(), kUnsupported);
}

TEST_F(GoldenTest, TimeTravelByVersion) {
  std::string path = Path("time-travel-start-start20-start40");
  for (int64_t v = 0; v <= 2; v++) {
    Snapshot s = Load(path, v);
    auto r = Query("SELECT count(*), min(id), max(id), count(DISTINCT id) FROM (" + *ScanSql(path, s) + ")");
    EXPECT_EQ(r.GetInt64(0, 0), 10 * (v + 1));
    EXPECT_EQ(r.GetInt64(0, 1), 0);
    EXPECT_EQ(r.GetInt64(0, 2), 10 * (v + 1) - 1);
    EXPECT_EQ(r.GetInt64(0, 3), 10 * (v + 1));
  }
  auto table = Table::Open(path, db_.get());
  ASSERT_OK(table.status());
  EXPECT_STATUS((*table)->LoadSnapshot(3).status(), kNotFound);

  std::string p2 = Path("time-travel-partition-changes-a");
  Snapshot s = Load(p2);
  auto r = Query("SELECT count(*), count(*) FILTER (WHERE part5 = id % 5) FROM (" + *ScanSql(p2, s) + ")");
  EXPECT_EQ(r.GetInt64(0, 0), 10);
  EXPECT_EQ(r.GetInt64(0, 1), 10);
  // Partition pruning.
  auto pruned = ScanSql(p2, s, {{"part5", "=", "3"}});
  ASSERT_OK(pruned.status());
  EXPECT_EQ(PruneFiles(s, {{"part5", "=", "3"}}).size(), 2u);
  auto r2 = Query("SELECT count(*), min(id), max(id) FROM (" + *pruned + ")");
  EXPECT_EQ(r2.GetInt64(0, 0), 2);
  EXPECT_EQ(r2.GetInt64(0, 1), 3);
  EXPECT_EQ(r2.GetInt64(0, 2), 8);

  std::string p3 = Path("time-travel-schema-changes-a");
  EXPECT_EQ(ScanCount(p3, Load(p3)), 10);
}

TEST_F(GoldenTest, TimeTravelByTimestamp) {
  std::string path = Path("time-travel-start-start20-start40");
  auto table = Table::Open(path, db_.get());
  ASSERT_OK(table.status());
  auto listing = internal::ListLog(FileSystem::Default(), path + "/_delta_log");
  ASSERT_OK(listing.status());
  auto times = internal::CommitTimestamps(*listing);
  ASSERT_EQ(times.size(), 3u);
  EXPECT_LT(times[0], times[1]);
  EXPECT_LT(times[1], times[2]);
  for (int64_t v = 0; v <= 2; v++) {
    auto s = (*table)->LoadSnapshotAsOf(times[v]);
    ASSERT_OK(s.status());
    EXPECT_EQ(s->version, v);
    EXPECT_EQ(s->timestamp_ms, times[v]);
  }
  auto late = (*table)->LoadSnapshotAsOf(times[2] + 100000);
  ASSERT_OK(late.status());
  EXPECT_EQ(late->version, 2);
  EXPECT_STATUS((*table)->LoadSnapshotAsOf(times[0] - 1).status(), kInvalidArgument);
}

TEST_F(GoldenTest, ReadCommitInfoAndHistory) {
  auto info = ReadCommitInfo(Path("time-travel-start-start20-start40"), 1);
  ASSERT_OK(info.status());
  EXPECT_NE(info->find("\"readVersion\":0"), std::string::npos);
  EXPECT_STATUS(ReadCommitInfo(Path("time-travel-start-start20-start40"), 7).status(), kNotFound);
  auto table = Table::Open(Path("checkpoint"), db_.get());
  ASSERT_OK(table.status());
  auto history = (*table)->History();
  ASSERT_OK(history.status());
  ASSERT_EQ(history->size(), 15u);
  EXPECT_EQ((*history)[0].version, 14);
  EXPECT_EQ((*history)[0].operation, "Manual Update");
  EXPECT_EQ((*history)[0].timestamp_ms, 1697495786458);
}

TEST(DeltaPaths, EscapingRoundTrips) {
  EXPECT_EQ(HiveEscape("a:b"), "a%3Ab");
  EXPECT_EQ(UriEncodePath("p=" + HiveEscape("a:b")), "p=a%253Ab");
  EXPECT_EQ(DecodePath(UriEncodePath("p=" + HiveEscape("a:b"))), "p=a%3Ab");
  EXPECT_EQ(HiveEscape("x/y=z?#[]{}^*'\"\\%"), "x%2Fy%3Dz%3F%23%5B%5D%7B}%5E%2A%27%22%5C%25");
  EXPECT_EQ(HiveEscape(std::string("\x01") + "é"), "%01é");
  EXPECT_EQ(UriEncodePath("d=2021-09-08 11%3A11"), "d=2021-09-08%2011%253A11");
}

}  // namespace
}  // namespace clicklake::delta

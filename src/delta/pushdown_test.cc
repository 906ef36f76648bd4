// Query-time file pruning for `clicklake sql`: PushdownPredicates finds the
// simple filters a query applies to a table, and views built with them list only
// the files that can match. The tests delete the files that must not be read:
// a query that still touched them would fail.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "delta/table.h"
#include "engine/engine.h"

namespace clicklake::delta {
namespace {

using clicklake::testing::TempDir;

class PushdownTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, engine::Database::Open());
    ASSERT_OK_AND_ASSIGN(conn_, db_->Connect());
  }

  // bronze.t partitioned by d, two days; within day 1 two files with disjoint user ranges.
  void MakeTable() {
    Schema schema;
    schema.fields = {{"d", "date", true}, {"user_key", "string", true}, {"n", "long", true}};
    ASSERT_OK_AND_ASSIGN(auto table, Table::OpenOrCreate(dir_.Sub("bronze/t"), schema, {"d"}, {}, db_.get()));
    for (const char* q : {"SELECT DATE '2024-05-01' AS d, 'a' || range AS user_key, range AS n FROM range(10)",
                          "SELECT DATE '2024-05-01' AS d, 'm' || range AS user_key, range + 100 AS n FROM range(10)",
                          "SELECT DATE '2024-05-02' AS d, 'a' || range AS user_key, range + 200 AS n FROM range(10)"}) {
      auto txn = table->StartTransaction();
      ASSERT_OK_AND_ASSIGN(auto adds, txn->WriteFiles(conn_.get(), q));
      ASSERT_EQ(adds.size(), 1u);
      files_.push_back(adds[0]);
      ASSERT_OK(txn->Commit());
    }
  }

  void DeleteDataFile(int i) {
    ASSERT_OK(FileSystem::Default()->DeleteFile(dir_.Sub("bronze/t/" + DecodePath(files_[i].path))));
  }

  Result<int64_t> Count(const std::string& sql) {
    ASSIGN_OR_RETURN(auto conn, db_->Connect());
    TablePredicates pushdown = PushdownPredicates(conn.get(), sql);
    RETURN_IF_ERROR(RegisterLakeViews(conn.get(), dir_.path(), std::nullopt, pushdown));
    ASSIGN_OR_RETURN(auto r, conn->Query(sql));
    return r.GetInt64(0, 0);
  }

  TempDir dir_;
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<engine::Connection> conn_;
  std::vector<AddFile> files_;
};

TEST_F(PushdownTest, ExtractsSimpleConjuncts) {
  auto p = PushdownPredicates(conn_.get(),
                              "SELECT count(*) FROM bronze.events e WHERE event_date = DATE '2024-05-01' "
                              "AND e.user_key >= 'abc' AND 5 < log_offset AND (a = 1 OR b = 2) AND lower(x) = 'y'");
  ASSERT_EQ(p.size(), 1u);
  const auto& preds = p["bronze.events"];
  ASSERT_EQ(preds.size(), 3u);
  EXPECT_EQ(preds[0].column, "event_date");
  EXPECT_EQ(preds[0].op, "=");
  EXPECT_EQ(preds[0].literal, "2024-05-01");
  EXPECT_EQ(preds[1].column, "user_key");
  EXPECT_EQ(preds[1].op, ">=");
  EXPECT_EQ(preds[2].column, "log_offset");
  EXPECT_EQ(preds[2].op, ">");  // flipped: 5 < log_offset
  EXPECT_EQ(preds[2].literal, "5");
}

TEST_F(PushdownTest, ConservativeWhereUnsure) {
  // Referenced twice, joined, or no WHERE: nothing is pushed.
  EXPECT_TRUE(PushdownPredicates(conn_.get(), "SELECT * FROM s.t WHERE x = 1 UNION ALL SELECT * FROM s.t").empty());
  EXPECT_TRUE(PushdownPredicates(conn_.get(), "SELECT * FROM s.t JOIN s.u USING (k) WHERE x = 1").empty());
  EXPECT_TRUE(PushdownPredicates(conn_.get(), "SELECT * FROM s.t").empty());
  EXPECT_TRUE(PushdownPredicates(conn_.get(), "SELEKT garbage").empty());
  EXPECT_TRUE(PushdownPredicates(conn_.get(), "SELECT 1; SELECT 2").empty());
  // A subquery's own filter applies to its own single table.
  auto p = PushdownPredicates(conn_.get(), "SELECT * FROM (SELECT * FROM s.t WHERE d = 3) JOIN s.u USING (k)");
  ASSERT_EQ(p.count("s.t"), 1u);
  EXPECT_EQ(p.count("s.u"), 0u);
}

TEST_F(PushdownTest, PartitionFilterReadsOnlyThatPartition) {
  MakeTable();
  DeleteDataFile(2);  // day 2
  ASSERT_OK_AND_ASSIGN(int64_t n, Count("SELECT count(*) FROM bronze.t WHERE d = DATE '2024-05-01'"));
  EXPECT_EQ(n, 20);
  // Without a filter the deleted file is needed, and the query says so.
  EXPECT_FALSE(Count("SELECT count(*) FROM bronze.t").ok());
}

TEST_F(PushdownTest, StatsSkipFilesOutsideTheRange) {
  MakeTable();
  DeleteDataFile(1);  // day 1, users m0..m9
  ASSERT_OK_AND_ASSIGN(int64_t n,
                       Count("SELECT count(*) FROM bronze.t WHERE user_key = 'a3' AND d = DATE '2024-05-01'"));
  EXPECT_EQ(n, 1);
  ASSERT_OK_AND_ASSIGN(int64_t below, Count("SELECT count(*) FROM bronze.t WHERE user_key < 'b'"));
  EXPECT_EQ(below, 20);  // a0..a9 on both days
  EXPECT_FALSE(Count("SELECT count(*) FROM bronze.t WHERE user_key > 'b'").ok());
}

TEST_F(PushdownTest, OuterReferencesAreIgnored) {
  MakeTable();
  // `zz` is not a column of bronze.t: the filter belongs to another scope.
  ASSERT_OK_AND_ASSIGN(int64_t n, Count("SELECT count(*) FROM (SELECT 1 AS zz) o WHERE EXISTS "
                                        "(SELECT 1 FROM bronze.t WHERE zz = 1 AND d = DATE '2024-05-02')"));
  EXPECT_EQ(n, 1);
}

TEST_F(PushdownTest, ResultsEqualUnprunedQueries) {
  MakeTable();
  for (const char* q : {"SELECT count(*) FROM bronze.t WHERE n >= 105", "SELECT count(*) FROM bronze.t WHERE n != 3",
                        "SELECT count(*) FROM bronze.t WHERE d > '2024-05-01'",
                        "SELECT count(*) FROM bronze.t WHERE d = '2024-05-01 10:00:00'",
                        "SELECT count(*) FROM bronze.t WHERE d < TIMESTAMP '2024-05-01 10:00:00'",
                        "SELECT sum(n) FROM bronze.t WHERE user_key <= 'a5' AND n < 250"}) {
    ASSERT_OK_AND_ASSIGN(auto conn, db_->Connect());
    ASSERT_OK(RegisterLakeViews(conn.get(), dir_.path(), std::nullopt));
    ASSERT_OK_AND_ASSIGN(auto full, conn->Query(q));
    ASSERT_OK_AND_ASSIGN(int64_t pruned, Count(q));
    EXPECT_EQ(pruned, full.GetInt64(0, 0)) << q;
  }
}

}  // namespace
}  // namespace clicklake::delta

// `clicklake table ...` end to end on a small lake.

#include <sstream>

#include "cli/table_command.h"
#include "common/test_util.h"
#include "delta/table.h"

namespace clicklake::delta {
namespace {

class TableCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = engine::Database::Open();
    ASSERT_OK(db.status());
    db_ = std::move(*db);
    auto conn = db_->Connect();
    ASSERT_OK(conn.status());
    Schema s;
    s.fields = {{"id", "long"}, {"day", "date"}};
    auto t = Table::OpenOrCreate(dir_.Sub("lake/gold/t"), s, {"day"}, {{"delta.clicklake.sortBy", "id"}}, db_.get());
    ASSERT_OK(t.status());
    for (int i = 0; i < 3; i++) {
      auto tx = (*t)->StartTransaction();
      ASSERT_OK(tx->WriteFiles(conn->get(), "SELECT range AS id, DATE '2024-01-01' + (range % 2)::INTEGER AS day FROM range(" +
                                                std::to_string(i * 10) + ", " + std::to_string(i * 10 + 10) + ")")
                    .status());
      tx->SetBlindAppend(true);
      ASSERT_OK(tx->Commit().status());
    }
  }

  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    return cli::RunTableCommand(args, out_, err_);
  }

  testing::TempDir dir_;
  std::unique_ptr<engine::Database> db_;
  std::ostringstream out_, err_;
};

TEST_F(TableCommandTest, Subcommands) {
  std::string lake = dir_.Sub("lake");
  EXPECT_EQ(Run({"describe", "gold.t", "--lake", lake}), 0) << err_.str();
  EXPECT_NE(out_.str().find("files:             6"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("records:           30"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("partition columns: day"), std::string::npos);
  EXPECT_NE(out_.str().find("delta.clicklake.sortBy = id"), std::string::npos);
  EXPECT_EQ(Run({"files", lake + "/gold/t", "--version", "1"}), 0) << err_.str();
  EXPECT_NE(out_.str().find("(2 files"), std::string::npos) << out_.str();
  EXPECT_EQ(Run({"optimize", "gold.t", "--lake=" + lake}), 0) << err_.str();
  EXPECT_NE(out_.str().find("6 files"), std::string::npos) << out_.str();
  EXPECT_EQ(Run({"history", "gold.t", "--lake", lake, "--limit", "2"}), 0) << err_.str();
  EXPECT_NE(out_.str().find("4 | "), std::string::npos);
  EXPECT_NE(out_.str().find("OPTIMIZE"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("[\\\"id\\\"]"), std::string::npos) << out_.str();
  EXPECT_EQ(Run({"vacuum", "gold.t", "--lake", lake, "--retain", "1"}), 1);
  EXPECT_NE(err_.str().find("--force"), std::string::npos) << err_.str();
  EXPECT_EQ(Run({"vacuum", "gold.t", "--lake", lake, "--retain", "0", "--force", "--dry-run"}), 0) << err_.str();
  EXPECT_NE(out_.str().find("would delete 6 files"), std::string::npos) << out_.str();
  EXPECT_EQ(Run({"vacuum", "gold.t", "--lake", lake, "--retain", "0", "--force"}), 0) << err_.str();
  EXPECT_NE(out_.str().find("deleted 6 files"), std::string::npos) << out_.str();
  EXPECT_EQ(Run({"describe", "gold.t", "--lake", lake}), 0);
  EXPECT_NE(out_.str().find("records:           30"), std::string::npos) << out_.str();
}

TEST_F(TableCommandTest, DeletionVectors) {
  // Golden tables written by Spark with deletion vectors (read only).
  std::string golden = testing::SharedDir() + "/data/delta-golden-dv";
  EXPECT_EQ(Run({"files", golden + "/basic-dv-no-checkpoint"}), 0) << err_.str();
  EXPECT_NE(out_.str().find("path | size | records | deletion vector | live records | partition"), std::string::npos)
      << out_.str();
  EXPECT_NE(out_.str().find("part-00000-a489737f-d477-4d9a-8b4a-bd6a6536df5b-c000.snappy.parquet | 500 | 5 | file, 2 "
                            "deleted | 3 | "),
            std::string::npos)
      << out_.str();
  EXPECT_NE(out_.str().find("c000.snappy.parquet | 503 | 5 | - | 5 | "), std::string::npos) << out_.str();
  EXPECT_EQ(Run({"files", golden + "/basic-dv-no-checkpoint", "--version", "0"}), 0) << err_.str();
  EXPECT_EQ(out_.str().find("deleted |"), std::string::npos) << out_.str();
  // 2004 physical rows at v4, 11 of them deleted by the DVs of 8 files
  // (counted by replaying the log's JSON by hand).
  EXPECT_EQ(Run({"describe", golden + "/table-with-dv-large"}), 0) << err_.str();
  EXPECT_NE(out_.str().find("records:           1993\n"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("deletion vectors:  8 files, 11 rows deleted"), std::string::npos) << out_.str();
  EXPECT_EQ(Run({"describe", golden + "/table-with-dv-large", "--version", "1"}), 0) << err_.str();
  EXPECT_NE(out_.str().find("records:           1995\n"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("deletion vectors:  5 files, 5 rows deleted"), std::string::npos) << out_.str();
}

TEST_F(TableCommandTest, Errors) {
  EXPECT_EQ(Run({"describe"}), 2);
  EXPECT_EQ(Run({"explode", "gold.t"}), 2);
  EXPECT_EQ(Run({"describe", "gold.t", "--bogus"}), 2);
  EXPECT_EQ(Run({"describe", "gold.nope", "--lake", dir_.Sub("lake")}), 1);
  EXPECT_NE(err_.str().find("NOT_FOUND"), std::string::npos) << err_.str();
  EXPECT_EQ(Run({"--help"}), 0);
}

}  // namespace
}  // namespace clicklake::delta

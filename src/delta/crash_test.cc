// Crash tests: the fault-injecting file system fails every step of a commit
// and of a checkpoint in turn, then drops unsynced data. The table must read
// as before or after the commit, never broken; a commit reported as done must
// survive; leftover temp files are ignored and cleaned up.

#include <filesystem>

#include "common/fault_injection_fs.h"
#include "common/test_util.h"
#include "delta/internal.h"
#include "delta/table.h"
#include "delta/testing/validator.h"

namespace clicklake::delta {
namespace {

Schema TestSchema() {
  Schema s;
  s.fields = {{"id", "long"}, {"day", "date"}, {"name", "string"}};
  return s;
}

class CrashTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto db = engine::Database::Open();
    ASSERT_OK(db.status());
    db_ = std::move(*db);
    auto conn = db_->Connect();
    ASSERT_OK(conn.status());
    conn_ = std::move(*conn);
  }

  std::string Rows(int from, int count) {
    return "SELECT i::BIGINT AS id, DATE '2024-01-01' + (i % 2)::INTEGER AS day, 'n' || i AS name FROM range(" +
           std::to_string(from) + ", " + std::to_string(from + count) + ") t(i)";
  }

  int64_t Count(const std::string& path, int64_t* version) {
    auto snap = LoadSnapshotAt(path, conn_.get(), std::nullopt);
    EXPECT_OK(snap.status());
    if (!snap.ok()) return -1;
    *version = snap->version;
    auto sql = ScanSql(path, *snap);
    EXPECT_OK(sql.status());
    auto r = conn_->Query("SELECT count(*) FROM (" + *sql + ")");
    EXPECT_OK(r.status());
    return r.ok() ? r->GetInt64(0, 0) : -1;
  }

  // Runs `steps` crash iterations: a table at version `base_version` (built
  // with the real file system), then one more append through a file system
  // that fails after n operations and then loses unsynced data.
  void RunCrashLoop(const std::map<std::string, std::string>& config, int base_appends) {
    bool torn = GetParam();
    bool completed = false;
    for (int n = 0; n < 80 && !completed; n++) {
      std::string path = tmp_.Sub("t" + std::to_string(n));
      {
        auto t = Table::OpenOrCreate(path, TestSchema(), {"day"}, config, db_.get());
        ASSERT_OK(t.status());
        for (int i = 0; i < base_appends; i++) {
          auto tx = (*t)->StartTransaction();
          ASSERT_OK(tx->WriteFiles(conn_.get(), Rows(i * 10, 10)).status());
          tx->SetBlindAppend(true);
          ASSERT_OK(tx->Commit().status());
        }
      }
      int64_t before_version = -1;
      int64_t before_rows = Count(path, &before_version);
      ASSERT_EQ(before_version, base_appends);

      FaultInjectionFileSystem fi(FileSystem::Default());
      fi.set_torn_writes(torn);
      Result<int64_t> committed = Status::Internal("not run");
      {
        auto t = Table::Open(path, db_.get(), &fi);
        ASSERT_OK(t.status());
        int64_t start_ops = fi.mutating_ops();
        fi.FailAfter(n);
        auto tx = (*t)->StartTransaction();
        auto files = tx->WriteFiles(conn_.get(), Rows(1000, 6));
        if (files.ok()) {
          tx->SetBlindAppend(true);
          committed = tx->Commit();
        } else {
          committed = files.status();
        }
        completed = committed.ok() && fi.mutating_ops() - start_ops <= n;
      }
      ASSERT_OK(fi.DropUnsyncedData());
      fi.ClearFaults();

      // After the "crash": before or after, never broken.
      int64_t version = -1;
      int64_t rows = Count(path, &version);
      if (version == before_version) {
        EXPECT_EQ(rows, before_rows) << "n=" << n;
        EXPECT_FALSE(committed.ok()) << "n=" << n << ": a reported commit was lost";
      } else {
        EXPECT_EQ(version, before_version + 1) << "n=" << n;
        EXPECT_EQ(rows, before_rows + 6) << "n=" << n;
      }
      // Through the Table API too (it may use a checkpoint).
      auto t = Table::Open(path, db_.get());
      ASSERT_OK(t.status());
      EXPECT_OK((*t)->LoadSnapshot().status());
      test::LogValidator validator(path, conn_.get());
      for (const auto& p : validator.Validate()) ADD_FAILURE() << "n=" << n << ": " << p;
      // The next writer carries on; temp files are cleaned.
      auto tx = (*t)->StartTransaction();
      ASSERT_OK(tx->WriteFiles(conn_.get(), Rows(2000, 2)).status());
      tx->SetBlindAppend(true);
      ASSERT_OK(tx->Commit().status());
      ASSERT_OK((*t)->CleanupLog(0));
      for (auto& e : std::filesystem::directory_iterator(path + "/_delta_log")) {
        EXPECT_NE(e.path().extension(), ".tmp") << e.path();
      }
    }
    EXPECT_TRUE(completed) << "the commit never completed without a fault";
  }

  testing::TempDir tmp_;
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<engine::Connection> conn_;
};

TEST_P(CrashTest, EveryStepOfACommit) { RunCrashLoop({}, 1); }

// A DV commit: load the file's old DV, write the new DV file (temp, sync,
// rename, SyncDir), then the commit. Crashing at each step and dropping
// unsynced data leaves the old or the new state, and the log valid.
TEST_P(CrashTest, EveryStepOfADeletionVectorCommit) {
  bool torn = GetParam();
  bool completed = false;
  auto delete_rows = [&](Table* t, const std::string& file, std::initializer_list<int> rows) -> Result<int64_t> {
    std::string sql;
    for (int r : rows) sql += (sql.empty() ? "" : " UNION ALL ") + std::string("SELECT ") + engine::QuoteLiteral(file) +
                              ", " + std::to_string(r);
    auto tx = t->StartTransaction();
    auto n = tx->DeleteRows(conn_.get(), sql);
    if (!n.ok()) return n.status();
    RETURN_IF_ERROR(tx->Commit().status());
    return n;
  };
  int old_states = 0;
  for (int n = 0; n < 80 && !completed; n++) {
    std::string path = tmp_.Sub("dv" + std::to_string(n));
    std::string file;
    {
      auto t = Table::OpenOrCreate(path, TestSchema(), {"day"}, {}, db_.get());
      ASSERT_OK(t.status());
      auto tx = (*t)->StartTransaction();
      ASSERT_OK(tx->WriteFiles(conn_.get(), Rows(0, 20)).status());
      tx->SetBlindAppend(true);
      ASSERT_OK(tx->Commit().status());
      ASSERT_OK_AND_ASSIGN(Snapshot snap, (*t)->LoadSnapshot());
      file = snap.files[0].path;
      ASSERT_OK(delete_rows(t->get(), file, {1, 2}).status());  // the file already has a DV
    }
    int64_t before_version = -1;
    int64_t before_rows = Count(path, &before_version);
    ASSERT_EQ(before_version, 2);
    ASSERT_EQ(before_rows, 18);

    FaultInjectionFileSystem fi(FileSystem::Default());
    fi.set_torn_writes(torn);
    Result<int64_t> committed = Status::Internal("not run");
    {
      auto t = Table::Open(path, db_.get(), &fi);
      ASSERT_OK(t.status());
      int64_t start_ops = fi.mutating_ops();
      fi.FailAfter(n);
      committed = delete_rows(t->get(), file, {2, 5, 7});
      completed = committed.ok() && fi.mutating_ops() - start_ops <= n;
    }
    ASSERT_OK(fi.DropUnsyncedData());
    fi.ClearFaults();
    internal::ClearSnapshotCache();

    int64_t version = -1;
    int64_t rows = Count(path, &version);
    if (version == before_version) {
      old_states++;
      EXPECT_EQ(rows, before_rows) << "n=" << n;
      EXPECT_FALSE(committed.ok()) << "n=" << n << ": a reported commit was lost";
    } else {
      EXPECT_EQ(version, before_version + 1) << "n=" << n;
      EXPECT_EQ(rows, before_rows - 2) << "n=" << n;
    }
    test::LogValidator validator(path, conn_.get());
    for (const auto& p : validator.Validate()) ADD_FAILURE() << "n=" << n << ": " << p;
    // The next writer carries on from whichever state survived.
    auto t = Table::Open(path, db_.get());
    ASSERT_OK(t.status());
    ASSERT_OK_AND_ASSIGN(int64_t more, delete_rows(t->get(), file, {5, 7, 9}));
    EXPECT_EQ(more, version == before_version ? 3 : 1) << "n=" << n;
    EXPECT_EQ(Count(path, &version), 15) << "n=" << n;
  }
  EXPECT_TRUE(completed) << "the DV commit never completed without a fault";
  // The DV file's create, append, sync, rename and SyncDir, then the commit's
  // own steps: each crash before the link leaves the old state.
  EXPECT_GE(old_states, 8);
}

TEST_P(CrashTest, EveryStepOfACheckpoint) {
  // Interval 2: the crashed commit is version 2, which writes a checkpoint.
  RunCrashLoop({{"delta.checkpointInterval", "2"}}, 1);
}

INSTANTIATE_TEST_SUITE_P(TornWrites, CrashTest, ::testing::Bool());

}  // namespace
}  // namespace clicklake::delta

// Concurrency across processes: two forked writers append to one table through
// put-if-absent commits; an append races optimize. No commit is lost or doubled.

#include <sys/wait.h>
#include <unistd.h>

#include "common/test_util.h"
#include "delta/table.h"
#include "delta/testing/validator.h"

namespace clicklake::delta {
namespace {

Schema WriterSchema() {
  Schema s;
  s.fields = {{"writer", "integer"}, {"seq", "integer"}, {"bucket", "integer"}};
  return s;
}

// Child body: `count` blind appends of one row each. Returns an exit code.
int AppendLoop(const std::string& path, int writer, int count) {
  auto db = engine::Database::Open({.threads = 1});
  if (!db.ok()) return 2;
  auto conn = (*db)->Connect();
  if (!conn.ok()) return 3;
  auto table = Table::Open(path, db->get());
  if (!table.ok()) return 4;
  for (int i = 0; i < count; i++) {
    for (int attempt = 0;; attempt++) {
      auto tx = (*table)->StartTransaction();
      auto files = tx->WriteFiles(conn->get(), "SELECT " + std::to_string(writer) + " AS writer, " + std::to_string(i) +
                                                   " AS seq, " + std::to_string(i % 2) + " AS bucket");
      if (!files.ok()) return 5;
      tx->SetBlindAppend(true);
      auto v = tx->Commit();
      if (v.ok()) break;
      if (!v.status().IsConflict() || attempt > 5) {
        std::fprintf(stderr, "writer %d: %s\n", writer, v.status().ToString().c_str());
        return 6;
      }
    }
  }
  return 0;
}

int OptimizeLoop(const std::string& path, int rounds) {
  auto db = engine::Database::Open({.threads = 1});
  if (!db.ok()) return 2;
  auto table = Table::Open(path, db->get());
  if (!table.ok()) return 4;
  for (int i = 0; i < rounds; i++) {
    auto r = (*table)->Optimize({.target_size = 1 << 20});
    if (!r.ok()) {
      std::fprintf(stderr, "optimize: %s\n", r.status().ToString().c_str());
      return 7;
    }
    usleep(20000);
  }
  return 0;
}

template <typename Fn>
pid_t Spawn(Fn fn) {
  pid_t pid = fork();
  if (pid == 0) _exit(fn());
  return pid;
}

int Wait(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

class ConcurrencyTest : public ::testing::Test {
 protected:
  void Verify(int64_t expected_rows, int writers, int per_writer) {
    auto db = engine::Database::Open();
    ASSERT_OK(db.status());
    auto conn = (*db)->Connect();
    ASSERT_OK(conn.status());
    auto snap = LoadSnapshotAt(path_, conn->get(), std::nullopt);
    ASSERT_OK(snap.status());
    auto sql = ScanSql(path_, *snap);
    ASSERT_OK(sql.status());
    auto r = (*conn)->Query("SELECT count(*), count(DISTINCT (writer, seq)) FROM (" + *sql + ")");
    ASSERT_OK(r.status());
    EXPECT_EQ(r->GetInt64(0, 0), expected_rows);
    EXPECT_EQ(r->GetInt64(0, 1), expected_rows);
    auto per = (*conn)->Query("SELECT writer, count(*), min(seq), max(seq) FROM (" + *sql + ") GROUP BY writer ORDER BY writer");
    ASSERT_OK(per.status());
    ASSERT_EQ(per->row_count(), static_cast<size_t>(writers));
    for (size_t i = 0; i < per->row_count(); i++) {
      EXPECT_EQ(per->GetInt64(i, 1), per_writer);
      EXPECT_EQ(per->GetInt64(i, 3), per_writer - 1);
    }
    test::LogValidator v(path_, conn->get());
    for (const auto& p : v.Validate()) ADD_FAILURE() << p;
  }

  void Create() {
    // No engine in the parent before fork: creation needs none.
    auto t = Table::OpenOrCreate(path_, WriterSchema(), {"bucket"}, {}, nullptr);
    ASSERT_OK(t.status());
  }

  testing::TempDir tmp_;
  std::string path_ = tmp_.Sub("t");
};

TEST_F(ConcurrencyTest, TwoProcessesAppend200Each) {
  Create();
  pid_t a = Spawn([&] { return AppendLoop(path_, 1, 200); });
  pid_t b = Spawn([&] { return AppendLoop(path_, 2, 200); });
  EXPECT_EQ(Wait(a), 0);
  EXPECT_EQ(Wait(b), 0);
  Verify(400, 2, 200);
  auto db = engine::Database::Open();
  ASSERT_OK(db.status());
  auto t = Table::Open(path_, db->get());
  ASSERT_OK(t.status());
  auto latest = (*t)->LatestVersion();
  ASSERT_OK(latest.status());
  EXPECT_EQ(*latest, 400);  // one commit per append, none lost or doubled
}

TEST_F(ConcurrencyTest, AppendRacingOptimize) {
  Create();
  pid_t a = Spawn([&] { return AppendLoop(path_, 1, 120); });
  pid_t b = Spawn([&] { return OptimizeLoop(path_, 15); });
  EXPECT_EQ(Wait(a), 0);
  EXPECT_EQ(Wait(b), 0);
  Verify(120, 1, 120);
  // The optimizer did commit between the appends.
  auto db = engine::Database::Open();
  ASSERT_OK(db.status());
  auto t = Table::Open(path_, db->get());
  ASSERT_OK(t.status());
  auto history = (*t)->History();
  ASSERT_OK(history.status());
  int optimizes = 0;
  for (const auto& c : *history) optimizes += c.operation == "OPTIMIZE";
  EXPECT_GT(optimizes, 0);
}

}  // namespace
}  // namespace clicklake::delta

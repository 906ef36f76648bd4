// Concurrency across processes: two forked writers append to one table through
// put-if-absent commits; an append races optimize; deletes with deletion
// vectors race appends and optimize. No commit is lost or doubled.

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

// What a child process writes with: its own engine (one thread) and table.
struct ChildTable {
  std::unique_ptr<engine::Database> db;
  std::unique_ptr<engine::Connection> conn;
  std::unique_ptr<Table> table;
};
Result<ChildTable> OpenInChild(const std::string& path) {
  ChildTable c;
  ASSIGN_OR_RETURN(c.db, engine::Database::Open({.threads = 1}));
  ASSIGN_OR_RETURN(c.conn, c.db->Connect());
  ASSIGN_OR_RETURN(c.table, Table::Open(path, c.db.get()));
  return c;
}

// Child body: `count` blind appends of one row each. Returns an exit code.
int AppendLoop(const std::string& path, int writer, int count) {
  auto child = OpenInChild(path);
  if (!child.ok()) return 2;
  engine::Connection* conn = child->conn.get();
  Table* table = child->table.get();
  for (int i = 0; i < count; i++) {
    for (int attempt = 0;; attempt++) {
      auto tx = table->StartTransaction();
      auto files = tx->WriteFiles(conn, "SELECT " + std::to_string(writer) + " AS writer, " + std::to_string(i) +
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

// Child body: deletes writer 0's rows with seq % 3 == 0, one DeleteWhere
// (deletion vectors) each, retrying conflicts with appends and optimize.
int DeleteLoop(const std::string& path, int count) {
  auto child = OpenInChild(path);
  if (!child.ok()) return 2;
  engine::Connection* conn = child->conn.get();
  Table* table = child->table.get();
  for (int seq = 0; seq < count; seq += 3) {
    for (int attempt = 0;; attempt++) {
      auto n = table->DeleteWhere(conn, "writer = 0 AND seq = " + std::to_string(seq));
      if (n.ok() && *n == 1) break;
      if (n.ok() || !n.status().IsConflict() || attempt > 30) {
        std::fprintf(stderr, "delete %d: %s\n", seq, n.ok() ? "deleted no row" : n.status().ToString().c_str());
        return 8;
      }
    }
  }
  return 0;
}

// Optimize rounds; with `tolerate_conflicts`, a round that loses to a
// concurrent delete of a file it rewrote is skipped.
// `rounds` optimizations 20 ms apart, and more (up to 10 s) until one has
// committed: on a loaded machine the rounds can all pass before the other
// process has written two files.
int OptimizeLoop(const std::string& path, int rounds, bool tolerate_conflicts = false) {
  auto db = engine::Database::Open({.threads = 1});
  if (!db.ok()) return 2;
  auto table = Table::Open(path, db->get());
  if (!table.ok()) return 4;
  bool committed = false;
  for (int i = 0; i < rounds || (!committed && i < rounds + 500); i++) {
    auto r = (*table)->Optimize({.target_size = 1 << 20, .purge_deleted_fraction = 0});
    if (!r.ok() && !(tolerate_conflicts && r.status().IsConflict())) {
      std::fprintf(stderr, "optimize: %s\n", r.status().ToString().c_str());
      return 7;
    }
    committed = committed || (r.ok() && r->version >= 0);
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
  // SELECT `select` FROM the latest snapshot's rows `tail`. The engine is
  // opened on first use, after the children ran (none in the parent before fork).
  Result<engine::QueryResult> QueryRows(const std::string& select, const std::string& tail = "") {
    if (!db_) {
      ASSIGN_OR_RETURN(db_, engine::Database::Open());
      ASSIGN_OR_RETURN(conn_, db_->Connect());
    }
    ASSIGN_OR_RETURN(Snapshot snap, LoadSnapshotAt(path_, conn_.get(), std::nullopt));
    ASSIGN_OR_RETURN(std::string sql, ScanSql(path_, snap));
    return conn_->Query("SELECT " + select + " FROM (" + sql + ")" + tail);
  }

  // How many commits of the table have this operation (-1 on error).
  int Commits(const std::string& operation) {
    auto t = Table::Open(path_, nullptr);
    auto history = t.ok() ? (*t)->History() : Result<std::vector<CommitSummary>>(t.status());
    EXPECT_OK(history.status());
    if (!history.ok()) return -1;
    int n = 0;
    for (const auto& c : *history) n += c.operation == operation;
    return n;
  }

  void ExpectValid() {
    test::LogValidator v(path_, conn_.get());
    for (const auto& p : v.Validate()) ADD_FAILURE() << p;
  }

  void Verify(int64_t expected_rows, int writers, int per_writer) {
    ASSERT_OK_AND_ASSIGN(auto r, QueryRows("count(*), count(DISTINCT (writer, seq))"));
    EXPECT_EQ(r.GetInt64(0, 0), expected_rows);
    EXPECT_EQ(r.GetInt64(0, 1), expected_rows);
    ASSERT_OK_AND_ASSIGN(auto per, QueryRows("writer, count(*), min(seq), max(seq)", " GROUP BY writer ORDER BY writer"));
    ASSERT_EQ(per.row_count(), static_cast<size_t>(writers));
    for (size_t i = 0; i < per.row_count(); i++) {
      EXPECT_EQ(per.GetInt64(i, 1), per_writer);
      EXPECT_EQ(per.GetInt64(i, 3), per_writer - 1);
    }
    ExpectValid();
  }

  void Create() {
    // No engine in the parent before fork: creation needs none.
    auto t = Table::OpenOrCreate(path_, WriterSchema(), {"bucket"}, {}, nullptr);
    ASSERT_OK(t.status());
  }

  testing::TempDir tmp_;
  std::string path_ = tmp_.Sub("t");
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<engine::Connection> conn_;
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
  EXPECT_GT(Commits("OPTIMIZE"), 0);
}

TEST_F(ConcurrencyTest, DeletesRacingAppendsAndOptimize) {
  Create();
  pid_t base = Spawn([&] {  // writer 0's 60 rows, in a child like every engine user
    auto child = OpenInChild(path_);
    if (!child.ok()) return 2;
    auto tx = child->table->StartTransaction();
    if (!tx->WriteFiles(child->conn.get(), "SELECT 0 AS writer, i::INTEGER AS seq, (i % 2)::INTEGER AS bucket FROM range(60) t(i)")
             .ok()) {
      return 3;
    }
    return tx->Commit().ok() ? 0 : 4;
  });
  ASSERT_EQ(Wait(base), 0);
  pid_t a = Spawn([&] { return AppendLoop(path_, 1, 60); });
  pid_t d = Spawn([&] { return DeleteLoop(path_, 60); });
  pid_t o = Spawn([&] { return OptimizeLoop(path_, 10, /*tolerate_conflicts=*/true); });
  EXPECT_EQ(Wait(a), 0);
  EXPECT_EQ(Wait(d), 0);
  EXPECT_EQ(Wait(o), 0);
  // Writer 0 keeps the 40 rows with seq % 3 != 0, writer 1 all its 60.
  ASSERT_OK_AND_ASSIGN(auto r, QueryRows("count(*), count(DISTINCT (writer, seq)), count(*) FILTER (WHERE writer = 0), "
                                         "count(*) FILTER (WHERE writer = 0 AND seq % 3 = 0)"));
  EXPECT_EQ(r.GetInt64(0, 0), 100);
  EXPECT_EQ(r.GetInt64(0, 1), 100);
  EXPECT_EQ(r.GetInt64(0, 2), 40);
  EXPECT_EQ(r.GetInt64(0, 3), 0);
  ExpectValid();
  EXPECT_EQ(Commits("DELETE"), 20);
}

}  // namespace
}  // namespace clicklake::delta

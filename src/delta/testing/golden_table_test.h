// The fixture shared by the tests that read a folder of golden Delta tables
// (../shared/data/<folder>/, never copied into the repository): an engine
// connection in UTC, snapshot loading, queries and writable copies.
//
// Test-only; one fixture per test, not shared between threads.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "common/test_util.h"
#include "delta/internal.h"
#include "delta/table.h"

namespace clicklake::delta::test {

class GoldenTableTest : public ::testing::Test {
 protected:
  // `folder`: a directory of ../shared/data ("delta-golden", "delta-golden-dv").
  explicit GoldenTableTest(std::string folder) : folder_(std::move(folder)) {}

  void SetUp() override {
    golden_ = clicklake::testing::SharedDir() + "/data/" + folder_;
    ASSERT_TRUE(std::filesystem::exists(golden_)) << golden_;
    internal::ClearSnapshotCache();
    auto db = engine::Database::Open();
    ASSERT_OK(db.status());
    db_ = std::move(*db);
    auto conn = db_->Connect();
    ASSERT_OK(conn.status());
    conn_ = std::move(*conn);
    ASSERT_OK(conn_->Execute("SET TimeZone='UTC'"));
  }

  std::string Path(const std::string& name) { return golden_ + "/" + name; }

  Snapshot Load(const std::string& path, std::optional<int64_t> version = std::nullopt) {
    auto table = Table::Open(path, db_.get());
    EXPECT_OK(table.status());
    if (!table.ok()) return {};
    auto snap = (*table)->LoadSnapshot(version);
    EXPECT_OK(snap.status());
    return snap.ok() ? *snap : Snapshot{};
  }

  engine::QueryResult Query(const std::string& sql) {
    auto r = conn_->Query(sql);
    EXPECT_TRUE(r.ok()) << r.status() << " " << sql;
    return r.ok() ? *r : engine::QueryResult{};
  }

  // A writable copy of a golden table (in a folder named `as`, default `name`).
  std::string Copy(const std::string& name, const std::string& as = "") {
    namespace fs = std::filesystem;
    std::string dst = tmp_.Sub(as.empty() ? name : as);
    fs::copy(Path(name), dst, fs::copy_options::recursive);
    for (auto& e : fs::recursive_directory_iterator(dst)) {
      fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
    }
    fs::permissions(dst, fs::perms::owner_write, fs::perm_options::add);
    return dst;
  }

  clicklake::testing::TempDir tmp_;
  std::string folder_;
  std::string golden_;
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<engine::Connection> conn_;
};

}  // namespace clicklake::delta::test

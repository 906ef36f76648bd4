// delta_bench: Delta table hot paths, each against a baseline in the same run.
//
//   1. snapshot load of a table with many commits and files: pure JSON log
//      replay vs from a checkpoint (plus the checkpoint's write time);
//   2. commit latency: log-only commits and 1-row append commits (p50/p99);
//   3. optimize throughput (MB/s of input) vs DuckDB's own COPY of the same
//      rows from the same files into one zstd Parquet file.
//
//   delta_bench [--dir DIR] [--commits N] [--files-per-commit N] [--appends N]
//               [--rows-per-append N] [--latency-commits N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "delta/internal.h"
#include "delta/table.h"

namespace {

using namespace clicklake;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string dir;
  int64_t commits = 10000;
  int64_t files_per_commit = 10;
  int64_t appends = 60;
  int64_t rows_per_append = 50000;
  int64_t latency_commits = 200;
};

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

[[noreturn]] void Die(const Status& s, const char* what) {
  std::fprintf(stderr, "delta_bench: %s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Check(Result<T> r, const char* what) {
  if (!r.ok()) Die(r.status(), what);
  return std::move(*r);
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) Die(s, what);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

delta::Schema LogSchema() {
  delta::Schema s;
  s.fields = {{"id", "long"}, {"user_key", "string"}, {"ts", "timestamp"}, {"value", "double"}, {"day", "date"}};
  return s;
}

// 1. Snapshot load with and without a checkpoint.
void BenchSnapshot(const Args& a, engine::Database* db) {
  std::string path = a.dir + "/snapshot_table";
  auto table = Check(delta::Table::OpenOrCreate(path, LogSchema(), {"day"}, {}, db), "create");
  // Synthesise the log directly (the data files are not needed to load a snapshot).
  auto t0 = Clock::now();
  std::string stats = R"({"numRecords":1000,"minValues":{"id":1,"user_key":"u000001","ts":"2024-05-01T00:00:00.000Z","value":0.5},"maxValues":{"id":1000,"user_key":"u999999","ts":"2024-05-01T23:59:59.999Z","value":99.5},"nullCount":{"id":0,"user_key":0,"ts":0,"value":0}})";
  for (int64_t v = 1; v <= a.commits; v++) {
    std::string body = delta::internal::CommitInfoJson(1700000000000 + v, "WRITE", {{"mode", "Append"}}, v - 1,
                                                       "WriteSerializable", true, {}, {}) + "\n";
    for (int64_t f = 0; f < a.files_per_commit; f++) {
      delta::AddFile add;
      std::string day = "2024-05-" + std::to_string(10 + (v % 20));
      add.path = "day=" + day + "/part-" + std::to_string(v) + "-" + std::to_string(f) + ".c000.zstd.parquet";
      add.partition_values["day"] = day;
      add.size = 100000 + f;
      add.modification_time = 1700000000000 + v;
      add.stats = stats;
      body += delta::internal::SerializeAdd(add) + "\n";
    }
    std::ofstream(path + "/_delta_log/" + delta::CommitFileName(v)) << body;
  }
  double build_s = Seconds(t0, Clock::now());
  auto load = [&](int runs) {
    std::vector<double> times;
    size_t files = 0;
    for (int i = 0; i < runs; i++) {
      delta::internal::ClearSnapshotCache();
      auto s = Clock::now();
      auto snap = Check(table->LoadSnapshot(), "load");
      times.push_back(Seconds(s, Clock::now()));
      files = snap.files.size();
    }
    return std::make_pair(Median(times), files);
  };
  auto [no_ck, files] = load(3);
  int64_t ck_version = a.commits - a.commits % 10 - (a.commits % 10 == 0 ? 10 : 0);  // leaves up to 10 JSON commits
  auto c0 = Clock::now();
  Check(table->Checkpoint(ck_version), "checkpoint");
  double ck_write = Seconds(c0, Clock::now());
  auto [with_ck, files2] = load(5);
  // Incremental: the previous snapshot is cached; one new commit arrives.
  Check(table->LoadSnapshot().status(), "warm");
  std::vector<double> incremental;
  for (int i = 0; i < 5; i++) {
    int64_t v = a.commits + 1 + i;
    delta::AddFile add;
    add.path = "day=2024-05-10/part-new-" + std::to_string(v) + ".c000.zstd.parquet";
    add.partition_values["day"] = "2024-05-10";
    add.size = 1;
    add.stats = stats;
    std::ofstream(path + "/_delta_log/" + delta::CommitFileName(v))
        << delta::internal::CommitInfoJson(1700000000000 + v, "WRITE", {}, v - 1, "WriteSerializable", true, {}, {})
        << "\n" << delta::internal::SerializeAdd(add) << "\n";
    auto s = Clock::now();
    Check(table->LoadSnapshot().status(), "incremental load");
    incremental.push_back(Seconds(s, Clock::now()));
  }
  std::printf("snapshot load: %lld commits, %zu live files (log synthesised in %.1f s)\n",
              static_cast<long long>(a.commits), files, build_s);
  std::printf("  %-38s %10.3f s\n", "JSON replay, no checkpoint (baseline)", no_ck);
  std::printf("  %-38s %10.3f s   (%.1fx faster)\n", ("checkpoint @" + std::to_string(ck_version) + " + JSON tail").c_str(),
              with_ck, no_ck / with_ck);
  std::printf("  %-38s %10.3f s   (%.1fx faster)\n", "cached snapshot + 1 new commit", Median(incremental),
              no_ck / Median(incremental));
  std::printf("  %-38s %10.3f s   (%zu files)\n", "checkpoint write", ck_write, files2);
}

// 2. Commit latency.
void BenchCommits(const Args& a, engine::Database* db) {
  std::string path = a.dir + "/commit_table";
  auto table = Check(delta::Table::OpenOrCreate(path, LogSchema(), {"day"}, {{"delta.checkpointInterval", "1000000"}}, db),
                     "create");
  auto conn = Check(db->Connect(), "connect");
  std::vector<double> log_only, commit_only, append;
  for (int64_t i = 0; i < a.latency_commits; i++) {
    auto s = Clock::now();
    auto tx = table->StartTransaction();
    tx->SetBlindAppend(true);
    tx->SetOperation("NOOP", {});
    Check(tx->Commit(), "log-only commit");
    log_only.push_back(Seconds(s, Clock::now()) * 1000);
  }
  for (int64_t i = 0; i < a.latency_commits; i++) {
    auto s = Clock::now();
    auto tx = table->StartTransaction();
    Check(tx->WriteFiles(conn.get(), "SELECT " + std::to_string(i) +
                                         "::BIGINT AS id, 'u1' AS user_key, now() AS ts, 1.5 AS value, DATE '2024-05-01' AS day"),
          "write");
    tx->SetBlindAppend(true);
    auto c = Clock::now();
    Check(tx->Commit(), "append commit");
    auto e = Clock::now();
    commit_only.push_back(Seconds(c, e) * 1000);
    append.push_back(Seconds(s, e) * 1000);
  }
  std::printf("commit latency (%lld commits each, ms): p50 / p99\n", static_cast<long long>(a.latency_commits));
  std::printf("  %-38s %8.2f / %8.2f\n", "log-only commit (snapshot + commit)", Percentile(log_only, 0.5),
              Percentile(log_only, 0.99));
  std::printf("  %-38s %8.2f / %8.2f\n", "Commit() of a 1-file append", Percentile(commit_only, 0.5),
              Percentile(commit_only, 0.99));
  std::printf("  %-38s %8.2f / %8.2f\n", "1-row append end to end", Percentile(append, 0.5), Percentile(append, 0.99));
}

// 3. Optimize vs DuckDB COPY.
void BenchOptimize(const Args& a, engine::Database* db) {
  std::string path = a.dir + "/optimize_table";
  auto table = Check(delta::Table::OpenOrCreate(path, LogSchema(), {}, {{"delta.checkpointInterval", "1000000"}}, db),
                     "create");
  auto conn = Check(db->Connect(), "connect");
  for (int64_t i = 0; i < a.appends; i++) {
    auto tx = table->StartTransaction();
    int64_t from = i * a.rows_per_append;
    Check(tx->WriteFiles(conn.get(), "SELECT range AS id, 'u' || (hash(range) % 100000) AS user_key, "
                                     "TIMESTAMPTZ '2024-05-01 00:00:00+00' + to_microseconds(range * 1000) AS ts, "
                                     "(hash(range) % 10000) / 100.0 AS value, DATE '2024-05-01' AS day FROM range(" +
                                         std::to_string(from) + ", " + std::to_string(from + a.rows_per_append) + ")"),
          "write");
    tx->SetBlindAppend(true);
    Check(tx->Commit(), "commit");
  }
  auto snap = Check(table->LoadSnapshot(), "load");
  int64_t bytes = snap.TotalBytes();
  std::string files = "[";
  for (size_t i = 0; i < snap.files.size(); i++) {
    files += (i ? ", " : "") + engine::QuoteLiteral(path + "/" + delta::DecodePath(snap.files[i].path));
  }
  files += "]";
  double mb = bytes / 1e6;
  int64_t rows = a.appends * a.rows_per_append;

  auto s0 = Clock::now();
  Check(conn->Execute("COPY (SELECT * FROM read_parquet(" + files + ")) TO " +
                      engine::QuoteLiteral(a.dir + "/baseline.parquet") + " (FORMAT parquet, COMPRESSION zstd)"),
        "baseline copy");
  double copy_s = Seconds(s0, Clock::now());
  auto s1 = Clock::now();
  Check(conn->Execute("COPY (SELECT * FROM read_parquet(" + files + ") ORDER BY user_key) TO " +
                      engine::QuoteLiteral(a.dir + "/baseline_sorted.parquet") + " (FORMAT parquet, COMPRESSION zstd)"),
        "baseline sorted copy");
  double copy_sorted_s = Seconds(s1, Clock::now());

  auto o0 = Clock::now();
  auto r = Check(table->Optimize({.target_size = 1LL << 40}), "optimize");
  double opt_s = Seconds(o0, Clock::now());
  if (r.rows != rows) Die(Status::Internal("optimize row count mismatch"), "optimize");
  // Again with a sort, on a fresh copy of the small files (re-add them).
  auto tx = table->StartTransaction();
  for (const auto& f : Check(table->LoadSnapshot(), "load").files) tx->RemoveFile(f);
  for (auto f : snap.files) {
    f.data_change = false;
    tx->AddFiles({f});
  }
  tx->SetDataChange(false);
  Check(tx->Commit(), "restore small files");
  auto o1 = Clock::now();
  auto r2 = Check(table->Optimize({.target_size = 1LL << 40, .sort_by = {"user_key"}}), "optimize sorted");
  double opt_sorted_s = Seconds(o1, Clock::now());
  if (r2.rows != rows) Die(Status::Internal("optimize row count mismatch"), "optimize sorted");

  std::printf("optimize: %zu files, %lld rows, %.1f MB in\n", snap.files.size(), static_cast<long long>(rows), mb);
  std::printf("  %-38s %8.2f s %8.1f MB/s\n", "DuckDB COPY (baseline)", copy_s, mb / copy_s);
  std::printf("  %-38s %8.2f s %8.1f MB/s  (%.2fx of baseline)\n", "optimize (bin-pack, stats, commit)", opt_s,
              mb / opt_s, copy_s / opt_s);
  std::printf("  %-38s %8.2f s %8.1f MB/s\n", "DuckDB COPY ORDER BY user_key", copy_sorted_s, mb / copy_sorted_s);
  std::printf("  %-38s %8.2f s %8.1f MB/s  (%.2fx of baseline)\n", "optimize sorted by user_key", opt_sorted_s,
              mb / opt_sorted_s, copy_sorted_s / opt_sorted_s);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i++) {
    std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "delta_bench: %s needs a value\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--dir") a.dir = next();
    else if (k == "--commits") a.commits = std::atoll(next().c_str());
    else if (k == "--files-per-commit") a.files_per_commit = std::atoll(next().c_str());
    else if (k == "--appends") a.appends = std::atoll(next().c_str());
    else if (k == "--rows-per-append") a.rows_per_append = std::atoll(next().c_str());
    else if (k == "--latency-commits") a.latency_commits = std::atoll(next().c_str());
    else {
      std::fprintf(stderr, "usage: delta_bench [--dir DIR] [--commits N] [--files-per-commit N] [--appends N] "
                           "[--rows-per-append N] [--latency-commits N]\n");
      return 2;
    }
  }
  bool own_dir = a.dir.empty();
  if (own_dir) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "delta-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return 1;
    a.dir = tmpl;
  }
  auto db = Check(engine::Database::Open(), "open engine");
  BenchSnapshot(a, db.get());
  BenchCommits(a, db.get());
  BenchOptimize(a, db.get());
  if (own_dir) std::filesystem::remove_all(a.dir);
  return 0;
}

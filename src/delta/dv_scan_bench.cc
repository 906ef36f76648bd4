// dv_scan_bench: query speed of a table whose rows are partly deleted by
// deletion vectors, against the same live rows compacted (no DVs), in the
// same run. The target (DESIGN.md "Cost follows the change"): within 1.2x.
//
//   dv_scan_bench [--dir DIR] [--rows N] [--files N] [--deleted-percent P]
//                 [--runs N] [--clustered] [--dv-files N]
//
// Builds table `dv` (N rows in F files of one partition each, then a
// DeleteRows commit marking P% of the rows deleted: scattered by default,
// in runs of 1000 with --clustered; only in the first N files with
// --dv-files N) and table `compacted` (the live rows of
// `dv` written again), checks both read the same rows, then times each query
// on views made by AttachTable (median of --runs after one warm-up; the two
// tables in turns). DV_SCAN_BENCH_EXPLAIN="SELECT sum(revenue)" prints the
// EXPLAIN ANALYZE of that select list over each table first.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "delta/table.h"

namespace {

using namespace clicklake;
using SteadyClock = std::chrono::steady_clock;

struct BenchOptions {
  std::string dir;
  int64_t rows = 1000000;
  int64_t files = 10;
  int64_t deleted_percent = 5;
  int runs = 7;
  bool clustered = false;
  int64_t dv_files = 0;  // only rows of the first N files (partitions) are deleted; 0 = all files
};

// Median wall times (ms) of `runs` executions of each of `sqls`, run in
// turns so that a busy machine slows all of them alike; one warm-up each.
// `answers` gets each query's first cell.
Result<std::vector<double>> TimeQueries(engine::Connection* conn, const std::vector<std::string>& sqls, int runs,
                                        std::vector<std::string>* answers) {
  std::vector<std::vector<double>> ms(sqls.size());
  answers->clear();
  for (const std::string& sql : sqls) {
    ASSIGN_OR_RETURN(engine::QueryResult first, conn->Query(sql));
    answers->push_back(first.row_count() ? first.GetString(0, 0) : "");
  }
  for (int r = 0; r < runs; r++) {
    for (size_t i = 0; i < sqls.size(); i++) {
      auto start = SteadyClock::now();
      RETURN_IF_ERROR(conn->Query(sqls[i]).status());
      ms[i].push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count());
    }
  }
  std::vector<double> medians;
  for (auto& v : ms) {
    std::sort(v.begin(), v.end());
    medians.push_back(v[v.size() / 2]);
  }
  return medians;
}

Status Run(const BenchOptions& o) {
  ASSIGN_OR_RETURN(auto db, engine::Database::Open());
  ASSIGN_OR_RETURN(auto conn, db->Connect());
  RETURN_IF_ERROR(conn->Execute("SET TimeZone='UTC'"));
  delta::Schema schema;
  schema.fields = {{"id", "long"},          {"user_id", "string"}, {"event_name", "string"},
                   {"revenue", "decimal(12,2)"},   {"ts", "timestamp"},   {"part", "integer"}};
  const std::string rows_sql =
      "SELECT i AS id, 'user-' || (hash(i) % 50000)::VARCHAR AS user_id, "
      "['page_viewed', 'product_viewed', 'product_added', 'checkout_started', 'order_completed'][1 + (hash(i * 7) % 5)::BIGINT] "
      "AS event_name, ((hash(i * 13) % 10000) / 100)::DECIMAL(12,2) AS revenue, TIMESTAMPTZ '2024-05-01 00:00:00+00' + "
      "to_seconds(i) AS ts, (i * " + std::to_string(o.files) + " // " + std::to_string(o.rows) +
      ")::INTEGER AS part FROM range(" + std::to_string(o.rows) + ") t(i)";

  // Table `dv`: write, then delete P% of the rows with deletion vectors.
  std::string dv_path = o.dir + "/dv", compacted_path = o.dir + "/compacted";
  std::filesystem::remove_all(dv_path);
  std::filesystem::remove_all(compacted_path);
  ASSIGN_OR_RETURN(auto dv, delta::Table::OpenOrCreate(dv_path, schema, {"part"}, {}, db.get()));
  {
    auto tx = dv->StartTransaction();
    RETURN_IF_ERROR(tx->WriteFiles(conn.get(), rows_sql).status());
    RETURN_IF_ERROR(tx->Commit().status());
  }
  auto start = SteadyClock::now();
  int64_t deleted = 0;
  {
    ASSIGN_OR_RETURN(delta::Snapshot snap, dv->LoadSnapshot());
    delta::ScanOptions options;
    options.row_address = true;
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(dv_path, snap, options));
    std::string which = o.clustered ? "(id // 1000) % " + std::to_string(100 / o.deleted_percent) + " = 0"
                                    : "hash(id * 31) % 100 < " + std::to_string(o.deleted_percent);
    if (o.dv_files > 0) which += " AND part < " + std::to_string(o.dv_files);
    auto tx = dv->StartTransaction(snap);
    ASSIGN_OR_RETURN(deleted, tx->DeleteRows(conn.get(), "SELECT _delta_file, _delta_row FROM (" + scan +
                                                              ") WHERE " + which));
    RETURN_IF_ERROR(tx->Commit().status());
  }
  double delete_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();

  // Table `compacted`: the same live rows, no DVs.
  RETURN_IF_ERROR(delta::AttachTable(conn.get(), "dv", dv_path, std::nullopt));
  ASSIGN_OR_RETURN(auto compacted, delta::Table::OpenOrCreate(compacted_path, schema, {"part"}, {}, db.get()));
  {
    auto tx = compacted->StartTransaction();
    RETURN_IF_ERROR(tx->WriteFiles(conn.get(), "SELECT * FROM dv ORDER BY id").status());
    RETURN_IF_ERROR(tx->Commit().status());
  }
  RETURN_IF_ERROR(delta::AttachTable(conn.get(), "compacted", compacted_path, std::nullopt));
  ASSIGN_OR_RETURN(engine::QueryResult diff,
                   conn->Query("SELECT (SELECT count(*) FROM (SELECT * FROM dv EXCEPT ALL SELECT * FROM compacted)) + "
                               "(SELECT count(*) FROM (SELECT * FROM compacted EXCEPT ALL SELECT * FROM dv))"));
  if (diff.GetInt64(0, 0, -1) != 0) return Status::Internal("dv and compacted differ in " + diff.GetString(0, 0) + " rows");

  // View creation (loads every DV) and the queries.
  std::vector<double> attach_ms;
  for (const char* name : {"dv", "compacted"}) {
    auto t0 = SteadyClock::now();
    RETURN_IF_ERROR(delta::AttachTable(conn.get(), name, std::string(name) == "dv" ? dv_path : compacted_path, std::nullopt));
    attach_ms.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count());
  }
  std::printf("rows %lld in %lld files, %lld deleted (%s, %s) by DeleteRows in %.0f ms\n",
              static_cast<long long>(o.rows), static_cast<long long>(o.files), static_cast<long long>(deleted),
              o.clustered ? "runs of 1000" : "scattered",
              o.dv_files > 0 ? ("in " + std::to_string(o.dv_files) + " files").c_str() : "in every file", delete_ms);
  std::printf("view creation: dv %.1f ms, compacted %.1f ms\n", attach_ms[0], attach_ms[1]);
  std::printf("%-58s | %9s | %9s | %5s\n", "query (median of runs)", "dv ms", "compact ms", "ratio");
  const std::vector<std::string> queries = {
      "SELECT count(*) FROM $t",
      "SELECT sum(revenue) FROM $t",
      "SELECT event_name, count(*), sum(revenue) FROM $t GROUP BY 1 ORDER BY 1",
      "SELECT count(DISTINCT user_id) FROM $t",
      "SELECT max(ts) FROM $t WHERE id BETWEEN 100000 AND 110000",
      "SELECT * FROM $t WHERE user_id = 'user-42' ORDER BY id",
  };
  if (std::getenv("DV_SCAN_BENCH_EXPLAIN") != nullptr) {
    for (const char* t : {"dv", "compacted"}) {
      ASSIGN_OR_RETURN(engine::QueryResult plan, conn->Query(std::string("EXPLAIN ANALYZE ") +
                                                             std::getenv("DV_SCAN_BENCH_EXPLAIN") + " FROM " + t));
      std::printf("%s\n", plan.GetString(0, 1).c_str());
    }
  }
  double worst = 0;
  for (const std::string& q : queries) {
    std::vector<std::string> sqls, answers;
    for (const char* t : {"dv", "compacted"}) {
      std::string sql = q;
      sql.replace(sql.find("$t"), 2, t);
      sqls.push_back(sql);
    }
    ASSIGN_OR_RETURN(std::vector<double> ms, TimeQueries(conn.get(), sqls, o.runs, &answers));
    if (answers[0] != answers[1]) return Status::Internal("different answers to " + q);
    worst = std::max(worst, ms[0] / ms[1]);
    std::printf("%-58.58s | %9.1f | %9.1f | %5.2f\n", q.c_str(), ms[0], ms[1], ms[0] / ms[1]);
  }
  std::printf("worst ratio %.2f\n", worst);
  return Status::OK();
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions o;
  o.dir = (std::filesystem::temp_directory_path() / "clicklake-dv-scan-bench").string();
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--dir") o.dir = next();
    else if (a == "--rows") o.rows = std::atoll(next().c_str());
    else if (a == "--files") o.files = std::atoll(next().c_str());
    else if (a == "--deleted-percent") o.deleted_percent = std::atoll(next().c_str());
    else if (a == "--runs") o.runs = std::atoi(next().c_str());
    else if (a == "--clustered") o.clustered = true;
    else if (a == "--dv-files") o.dv_files = std::atoll(next().c_str());
    else {
      std::fprintf(stderr, "usage: dv_scan_bench [--dir DIR] [--rows N] [--files N] [--deleted-percent P] [--runs N] [--clustered] [--dv-files N]\n");
      return 2;
    }
  }
  if (o.rows <= 0 || o.files <= 0 || o.deleted_percent <= 0 || o.deleted_percent >= 100 || o.runs <= 0) {
    std::fprintf(stderr, "dv_scan_bench: --rows, --files, --runs > 0 and 0 < --deleted-percent < 100\n");
    return 2;
  }
  std::filesystem::create_directories(o.dir);
  Status st = Run(o);
  if (!st.ok()) {
    std::fprintf(stderr, "dv_scan_bench: %s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}

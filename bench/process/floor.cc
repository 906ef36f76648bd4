// process_bench_floor: what writing clicklake's output tables once costs, and
// nothing else. Loads the live rows of bronze.events and silver.events of a
// processed lake into memory (not timed), then times one COPY of each to
// zstd Parquet as clicklake writes them (same libduckdb, same options), on
// an empty directory; then the same with LZ4 (the cheapest codec to
// compress with), to show what the codec's share of the floor is.
// Prints "<bronze s> <silver s> <bronze rows> <silver rows> <bronze s> <silver s>",
// the last two with LZ4.
//
// usage: process_bench_floor LAKE_DIR OUT_DIR
#include <chrono>
#include <iostream>
#include <string>

#include "common/clock.h"
#include "common/file_system.h"
#include "delta/table.h"
#include "engine/engine.h"

namespace {

using namespace clicklake;

Status Load(engine::Connection* conn, engine::Database* db, const std::string& path, const std::string& name) {
  ASSIGN_OR_RETURN(auto table, delta::Table::Open(path, db, FileSystem::Default(), SystemClock()));
  ASSIGN_OR_RETURN(delta::Snapshot snap, table->LoadSnapshot());
  ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(path, snap));
  return conn->Execute("CREATE TABLE " + name + " AS " + scan);
}

// compression "": as clicklake writes (engine::Connection::WriteParquet).
Result<double> TimedCopy(engine::Connection* conn, const std::string& name, const std::string& out,
                         const std::string& compression = "") {
  const auto t0 = std::chrono::steady_clock::now();
  if (compression.empty()) {
    RETURN_IF_ERROR(conn->WriteParquet("SELECT * FROM " + name, out).status());
  } else {
    RETURN_IF_ERROR(conn->Execute("COPY " + name + " TO " + engine::QuoteLiteral(out) +
                                  " (FORMAT parquet, COMPRESSION " + compression + ", ROW_GROUP_SIZE 122880)"));
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Status Run(const std::string& lake, const std::string& out) {
  ASSIGN_OR_RETURN(auto db, engine::Database::Open());
  ASSIGN_OR_RETURN(auto conn, db->Connect());
  RETURN_IF_ERROR(conn->Execute("SET TimeZone = 'UTC'"));
  RETURN_IF_ERROR(Load(conn.get(), db.get(), JoinPath(lake, "bronze/events"), "bronze"));
  RETURN_IF_ERROR(Load(conn.get(), db.get(), JoinPath(lake, "silver/events"), "silver"));
  ASSIGN_OR_RETURN(double bronze_s, TimedCopy(conn.get(), "bronze", JoinPath(out, "bronze.parquet")));
  ASSIGN_OR_RETURN(double silver_s, TimedCopy(conn.get(), "silver", JoinPath(out, "silver.parquet")));
  ASSIGN_OR_RETURN(double bronze_lz4_s, TimedCopy(conn.get(), "bronze", JoinPath(out, "bronze_lz4.parquet"), "lz4_raw"));
  ASSIGN_OR_RETURN(double silver_lz4_s, TimedCopy(conn.get(), "silver", JoinPath(out, "silver_lz4.parquet"), "lz4_raw"));
  ASSIGN_OR_RETURN(auto counts, conn->Query("SELECT (SELECT count(*) FROM bronze), (SELECT count(*) FROM silver)"));
  std::cout << bronze_s << " " << silver_s << " " << counts.GetInt64(0, 0) << " " << counts.GetInt64(0, 1) << " "
            << bronze_lz4_s << " " << silver_lz4_s << "\n";
  return Status::OK();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: process_bench_floor LAKE_DIR OUT_DIR\n";
    return 2;
  }
  if (auto s = Run(argv[1], argv[2]); !s.ok()) {
    std::cerr << "process_bench_floor: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}

// process_bench_sql: runs a SQL script file on an in-memory DuckDB (the same
// libduckdb as clicklake, through cl_engine) and prints the elapsed seconds.
//
// usage: process_bench_sql SCRIPT [THREADS]
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "engine/engine.h"

int main(int argc, char** argv) {
  using namespace clicklake;
  if (argc < 2) {
    std::cerr << "usage: process_bench_sql SCRIPT [THREADS]\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  std::stringstream script;
  script << in.rdbuf();
  engine::DatabaseOptions options;
  if (argc > 2) options.threads = std::atoi(argv[2]);
  const auto t0 = std::chrono::steady_clock::now();
  auto db = engine::Database::Open(options);
  if (!db.ok()) {
    std::cerr << db.status().ToString() << "\n";
    return 1;
  }
  auto conn = (*db)->Connect();
  if (!conn.ok()) {
    std::cerr << conn.status().ToString() << "\n";
    return 1;
  }
  if (auto s = (*conn)->Execute(script.str()); !s.ok()) {
    std::cerr << "script: " << s.ToString() << "\n";
    return 1;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto rows = (*conn)->Query("SELECT count(*) FROM sessions");
  std::cout << secs << " " << (rows.ok() ? rows->GetInt64(0, 0) : -1) << "\n";
  return 0;
}

// process_bench_sql: runs a SQL script file on an in-memory DuckDB (the same
// libduckdb as clicklake, through cl_engine) and prints the elapsed seconds and
// the row count of TABLE (default `sessions`, pipeline.sql's result).
//
// usage: process_bench_sql SCRIPT [THREADS (0 = all cores)] [TABLE]
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/engine.h"

int main(int argc, char** argv) {
  using namespace clicklake;
  if (argc < 2) {
    std::cerr << "usage: process_bench_sql SCRIPT [THREADS] [TABLE]\n";
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
  // SQL_TIMINGS=1: statement by statement (split at ";" ending a line), each
  // one's seconds on stderr, to see where a script's time goes.
  std::vector<std::string> statements;
  if (std::getenv("SQL_TIMINGS") != nullptr) {
    std::string text = script.str(), current;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      current += line + "\n";
      if (!line.empty() && line.back() == ';') statements.push_back(std::move(current)), current.clear();
    }
    if (current.find_first_not_of(" \n") != std::string::npos) statements.push_back(current);
  } else {
    statements.push_back(script.str());
  }
  for (const std::string& statement : statements) {
    const auto ts = std::chrono::steady_clock::now();
    if (auto s = (*conn)->Execute(statement); !s.ok()) {
      std::cerr << "script: " << s.ToString() << "\n";
      return 1;
    }
    if (statements.size() > 1) {
      std::string head = statement.substr(statement.find_first_not_of(" \n"));
      std::cerr << std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count() << " s  "
                << head.substr(0, head.find('\n')) << "\n";
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string table = argc > 3 ? argv[3] : "sessions";
  auto rows = (*conn)->Query("SELECT count(*) FROM " + table);
  std::cout << secs << " " << (rows.ok() ? rows->GetInt64(0, 0) : -1) << "\n";
  return 0;
}

// clicklake sql: SQL over the lake's Delta tables.
#include <algorithm>
#include <iostream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "delta/table.h"
#include "common/file_system.h"
#include "engine/engine.h"

namespace clicklake::cli {
namespace {

// DuckDB's messages span lines (the error, then the query line and a caret);
// the CLI prints one: "<error> (LINE 1: SELEKT 1)", without caret lines.
std::string OneLine(const std::string& message) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= message.size()) {
    size_t end = std::min(message.find('\n', start), message.size());
    std::string line = message.substr(start, end - start);
    start = end + 1;
    // Skip blank and caret-only lines, and repeats (DuckDB may quote the query line twice).
    if (line.find_first_not_of(" ^\t") == std::string::npos) continue;
    if (std::find(lines.begin(), lines.end(), line) == lines.end()) lines.push_back(line);
  }
  if (lines.empty()) return message;
  std::string out = lines[0];
  for (size_t i = 1; i < lines.size(); i++) out += (i == 1 ? " (" : "; ") + lines[i];
  if (lines.size() > 1) out += ")";
  return out;
}

}  // namespace

int RunSqlCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app("clicklake sql", "clicklake sql");
  std::string lake = "./lake";
  std::string config_path;
  std::vector<std::string> attach;
  int64_t version = -1;
  std::string format = "table";
  std::string sql;
  app.add_option("--config", config_path, "TOML configuration file (for lake.dir)");
  app.add_option("--lake", lake, "lake directory (default ./lake)");
  app.add_option("--attach", attach, "NAME=PATH: query the Delta table at PATH as NAME (repeatable)");
  app.add_option("--version", version, "read every table as of this Delta version (time travel)");
  app.add_option("--format", format, "table|csv|json")->check(CLI::IsMember({"table", "csv", "json"}));
  app.add_option("sql", sql, "the query")->required();
  if (int rc = ParseArgs(app, args, out, err); rc >= 0) return rc;
  if (!config_path.empty() && app.count("--lake") == 0) {
    auto config = Config::LoadFile(config_path);
    if (!config.ok()) {
      err << "clicklake sql: " << config.status().message() << "\n";
      return 2;
    }
    lake = config->lake_dir();
  }

  auto fail = [&](const Status& s) {
    err << "clicklake sql: " << OneLine(s.message()) << "\n";
    return 1;
  };
  auto db = engine::Database::Open();
  if (!db.ok()) return fail(db.status());
  auto conn = (*db)->Connect();
  if (!conn.ok()) return fail(conn.status());
  std::optional<int64_t> at;
  if (version >= 0) at = version;
  // Views list only the files the query's simple filters can match (partition
  // values and per-file stats), so a query over one day opens one day's files.
  sql = engine::QualifySchemaReferences(sql, "system", "memory");
  delta::TablePredicates pushdown = delta::PushdownPredicates(conn->get(), sql);
  if (Status s = delta::RegisterLakeViews(conn->get(), lake, at, pushdown); !s.ok()) return fail(s);
  for (const auto& a : attach) {
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == a.size()) {
      err << "clicklake sql: --attach expects NAME=PATH, got '" << a << "'\n";
      return 2;
    }
    std::string name = a.substr(0, eq);
    auto pushed = pushdown.find(name);
    Status s = pushed == pushdown.end()
                   ? delta::AttachTable(conn->get(), name, a.substr(eq + 1), at)
                   : delta::AttachTable(conn->get(), name, a.substr(eq + 1), at, pushed->second);
    if (!s.ok()) return fail(s);
  }
  auto result = (*conn)->Query(sql);
  if (!result.ok()) {
    if (result.status().message().find("Catalog Error") != std::string::npos && !FileSystem::Default()->Exists(lake)) {
      return fail(result.status().WithContext("lake directory " + lake + " does not exist (--lake)"));
    }
    return fail(result.status());
  }
  if (format == "csv") out << result->ToCsv();
  else if (format == "json") out << result->ToJson();
  else out << result->ToTable();
  return 0;
}

}  // namespace clicklake::cli

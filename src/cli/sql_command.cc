// clicklake sql: SQL over the lake's Delta tables.
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "delta/table.h"
#include "common/clock.h"
#include "common/file_system.h"
#include "engine/engine.h"
#include "governance/access/access.h"

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

// The password of --user: $CLICKLAKE_PASSWORD, else asked on the terminal
// (not echoed); NotFound when neither is available.
Result<std::string> ReadPassword(const std::string& user) {
  if (const char* env = std::getenv("CLICKLAKE_PASSWORD")) return std::string(env);
  FILE* tty = std::fopen("/dev/tty", "r+");
  if (tty == nullptr || !isatty(fileno(tty))) {
    if (tty) std::fclose(tty);
    return Status::NotFound("--user needs a password: set CLICKLAKE_PASSWORD or run on a terminal");
  }
  std::fprintf(tty, "Password for %s: ", user.c_str());
  std::fflush(tty);
  termios saved{};
  const bool restore = tcgetattr(fileno(tty), &saved) == 0;
  if (restore) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
  }
  std::string password;
  for (int c = std::fgetc(tty); c != EOF && c != '\n'; c = std::fgetc(tty)) password += static_cast<char>(c);
  if (restore) tcsetattr(fileno(tty), TCSAFLUSH, &saved);
  std::fprintf(tty, "\n");
  std::fclose(tty);
  return password;
}

// --as ROLE / --token T / --user NAME: the query runs governed (access::QueryService):
// masks, row filters, the locked-down engine, limits, the audit trail.
int RunGovernedSql(const Config& config, const std::string& config_path, const std::string& lake,
                   const std::string& role, const std::string& token, const std::string& user,
                   const std::vector<std::string>& attrs,
                   const std::string& sql, const std::string& format, std::ostream& out, std::ostream& err) {
  auto fail = [&](const Status& s) {
    err << "clicklake sql: " << OneLine(s.message()) << "\n";
    return 1;
  };
  access::QueryServiceOptions options = access::QueryServiceOptions::FromConfig(config, config_path);
  options.lake_dir = lake;
  access::QueryService service(options);
  if (service.policy().Current(); !service.policy().last_error().empty()) {
    return fail(Status::InvalidArgument(service.policy().last_error()));
  }
  Result<access::Principal> principal = Status::Internal("no principal");
  if (!user.empty()) {
    auto password = ReadPassword(user);
    if (!password.ok()) return fail(password.status());
    principal = service.AuthenticatePassword(user, *password);
  } else {
    principal = token.empty() ? service.LocalPrincipal(role) : service.Authenticate(token);
  }
  if (!principal.ok()) return fail(principal.status());
  if (!attrs.empty() && role.empty()) {
    err << "clicklake sql: --attr is for --as (a token's or user's attributes come from the policy)\n";
    return 2;
  }
  for (const auto& a : attrs) {
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      err << "clicklake sql: --attr expects NAME=V1,V2, got '" << a << "'\n";
      return 2;
    }
    auto& values = principal->attributes[a.substr(0, eq)];
    values.clear();
    std::string rest = a.substr(eq + 1);
    for (size_t start = 0; start <= rest.size();) {
      size_t end = std::min(rest.find(',', start), rest.size());
      if (end > start) values.push_back(rest.substr(start, end - start));
      start = end + 1;
    }
  }
  auto query = service.Start(*principal, sql);
  if (!query.ok()) return fail(query.status());
  engine::QueryResult all = (*query)->header();
  Status status;
  for (;;) {
    auto chunk = (*query)->Next();
    if (!chunk.ok()) {
      status = chunk.status();
      break;
    }
    if (!chunk->has_value()) break;
    all.Append(**chunk);
  }
  // Nothing is shown unless the audit trail recorded the query.
  if (Status audited = (*query)->Finish(status); !audited.ok()) return fail(audited);
  if (!status.ok()) return fail(status);
  if (format == "csv") out << all.ToCsv();
  else if (format == "json") out << all.ToJson();
  else out << all.ToTable();
  if ((*query)->truncated()) {
    err << "clicklake sql: result truncated at " << (*query)->rows() << " rows (access.max_rows)\n";
  }
  return 0;
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
  std::string role, token;
  std::vector<std::string> attrs;
  app.add_option("--as", role, "run as this role of the access policy (masks, row filters, sandbox, audit)");
  app.add_option("--token", token, "run as the principal holding this API token");
  std::string user;
  app.add_option("--user", user, "run as this user of the policy (password from CLICKLAKE_PASSWORD or the terminal)");
  app.add_option("--attr", attrs, "NAME=V1,V2: a principal attribute for --as (e.g. regions=US,CA; repeatable)");
  app.add_option("sql", sql, "the query")->required();
  if (int rc = ParseArgs(app, args, out, err); rc >= 0) return rc;
  Config config;
  if (!config_path.empty()) {
    auto loaded = Config::LoadFile(config_path);
    if (!loaded.ok()) {
      err << "clicklake sql: " << loaded.status().message() << "\n";
      return 2;
    }
    config = *loaded;
    if (app.count("--lake") == 0) lake = config.lake_dir();
  }
  if (!role.empty() || !token.empty() || !user.empty()) {
    if (!attach.empty() || version >= 0) {
      err << "clicklake sql: --attach and --version are not available with --as/--token/--user\n";
      return 2;
    }
    if (!role.empty() + !token.empty() + !user.empty() > 1) {
      err << "clicklake sql: give one of --as, --token and --user\n";
      return 2;
    }
    return RunGovernedSql(config, config_path, lake, role, token, user, attrs, sql, format, out, err);
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
  const std::string raw_sql = sql;
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
  const int64_t started_us = SystemClock()->MonotonicMicros();
  auto result = (*conn)->Query(sql);
  // The local operator is admin, audited like everyone (when there is a lake to audit in:
  // a directory with a layer or clicklake's state, not any directory --lake names).
  bool is_lake = false;
  for (const char* sub : {"bronze", "silver", "gold", "system", "restricted", "_clicklake"}) {
    is_lake |= FileSystem::Default()->Exists(JoinPath(lake, sub));
  }
  if (is_lake && config.GetBool("access.audit", true)) {
    access::AuditRecord record;
    const char* user = std::getenv("USER");
    record.principal = std::string("local:") + (user ? user : "operator");
    record.role = "admin";
    record.sql = raw_sql;
    record.rows = result.ok() ? static_cast<int64_t>(result->row_count()) : 0;
    record.duration_us = SystemClock()->MonotonicMicros() - started_us;
    record.outcome = result.ok() ? "ok" : "error";
    if (!result.ok()) record.error = result.status().message();
    record.detail = "unrestricted local session";
    if (Status s = access::AppendAuditRecord(lake, record); !s.ok()) return fail(s);
  }
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

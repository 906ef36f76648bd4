// clicklake audit verify: checks system.audit's hash chain.
// clicklake access token | password: credentials for the access policy file.
#include <iostream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "engine/engine.h"
#include "governance/access/access.h"

namespace clicklake::cli {

int RunAuditCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app("clicklake audit", "clicklake audit");
  std::string lake = "./lake";
  std::string config_path;
  app.add_option("--config", config_path, "TOML configuration file (for lake.dir)");
  app.add_option("--lake", lake, "lake directory (default ./lake)");
  app.require_subcommand(1);
  app.add_subcommand("verify", "recompute system.audit's hash chain; report the first record edited, removed or reordered");
  if (int rc = ParseArgs(app, args, out, err); rc >= 0) return rc;
  if (!config_path.empty() && app.count("--lake") == 0) {
    auto config = Config::LoadFile(config_path);
    if (!config.ok()) {
      err << "clicklake audit: " << config.status().message() << "\n";
      return 2;
    }
    lake = config->lake_dir();
  }
  auto db = engine::Database::Open();
  if (!db.ok()) {
    err << "clicklake audit: " << db.status().message() << "\n";
    return 1;
  }
  access::AuditLog log(lake, db->get());
  auto report = log.Verify();
  if (!report.ok()) {
    err << "clicklake audit: cannot read system.audit: " << report.status().message() << "\n";
    return 1;
  }
  if (!report->ok) {
    out << "system.audit: TAMPERED: " << report->problem << " (first bad record: seq " << report->first_bad_seq
        << "; " << report->records << " records read)\n";
    return 1;
  }
  out << "system.audit: " << report->records << " records, hash chain intact\n";
  return 0;
}

int RunAccessCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app("clicklake access", "clicklake access");
  app.require_subcommand(1);
  app.add_subcommand("token", "print a new API token and the token_sha256 line for the policy file");
  auto* password = app.add_subcommand("password", "read a password on stdin; print its SCRAM-SHA-256 verifier");
  int iterations = 4096;
  password->add_option("--iterations", iterations, "PBKDF2 iterations (default 4096)");
  if (int rc = ParseArgs(app, args, out, err); rc >= 0) return rc;
  if (app.got_subcommand("token")) {
    const std::string token = access::NewToken();
    out << "token: " << token << "\n" << "token_sha256 = [\"" << access::Sha256Hex(token) << "\"]\n";
    return 0;
  }
  std::string line;
  if (!std::getline(std::cin, line) || line.empty()) {
    err << "clicklake access password: expected the password on stdin\n";
    return 2;
  }
  const std::string salt = access::NewToken().substr(0, 16);
  out << "password = \"" << access::MakeScramVerifier(line, salt, iterations) << "\"\n";
  return 0;
}

}  // namespace clicklake::cli

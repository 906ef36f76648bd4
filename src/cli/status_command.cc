// clicklake status [--json]: the readiness of every dataset (governance/quality).
#include <iostream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "governance/quality/quality.h"

namespace clicklake::cli {

int RunStatusCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app("clicklake status",
               "clicklake status: READY / LATE / FAILED / UNKNOWN per dataset, from the lake's tables and the current "
               "time. Exit code: 0 none FAILED, 1 a dataset is FAILED, 2 bad flags or settings, 3 the lake cannot be read.");
  ServiceFlags flags;
  bool json = false;
  app.add_option("--config", flags.config_path, "TOML configuration file");
  app.add_option("--lake", flags.lake, "lake directory (default ./lake)");
  app.add_option("--set", flags.settings, "override any setting: KEY=VALUE (repeatable)");
  app.add_flag("--json", json, "print JSON (as GET /api/v1/readiness serves it)");
  if (int rc = ParseArgs(app, args, out, err); rc >= 0) return rc;
  auto config = LoadConfig(flags);
  if (!config.ok()) {
    err << "clicklake status: " << config.status().message() << "\n";
    return 2;
  }
  auto options = quality::QualityOptions::FromConfig(*config);
  if (!options.ok()) {
    err << "clicklake status: " << options.status().message() << "\n";
    return 2;
  }
  if (Status s = config->ReadErrors(); !s.ok()) {
    err << "clicklake status: " << s.message() << "\n";
    return 2;
  }
  const int64_t now = SystemClock()->NowMicros();
  auto rows = quality::ComputeReadiness(config->lake_dir(), *options, now);
  if (!rows.ok()) {
    err << "clicklake status: reading " << config->lake_dir() << ": " << rows.status().message() << "\n";
    return 3;
  }
  out << (json ? quality::ReadinessJson(*rows, now) + "\n" : quality::ReadinessTable(*rows));
  for (const auto& r : *rows)
    if (r.status == quality::ReadinessStatus::kFailed) return 1;
  return 0;
}

}  // namespace clicklake::cli

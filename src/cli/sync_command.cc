// clicklake sync run NAME [--dry-run] | sync status: reverse-ETL syncs (src/activate).
#include <iomanip>
#include <iostream>

#include "activate/activate.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/logging.h"

namespace clicklake::cli {
namespace {

void AddCommonFlags(CLI::App* app, ServiceFlags* flags) {
  app->add_option("--config", flags->config_path, "TOML configuration file (its [[activate.syncs]])");
  app->add_option("--lake", flags->lake, "lake directory (default ./lake)");
  app->add_option("--set", flags->settings, "override any setting: KEY=VALUE (repeatable)");
  app->add_option("--log-level", flags->log_level, "trace|debug|info|warn|error");
}

}  // namespace

int RunSyncCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || (args[0] != "run" && args[0] != "status" && args[0] != "--help" && args[0] != "-h")) {
    err << "clicklake sync: expected `run NAME [--dry-run]` or `status`\n";
    return 2;
  }
  const std::string verb = args[0] == "status" ? "status" : "run";
  CLI::App app("clicklake sync " + verb, "clicklake sync " + verb);
  ServiceFlags flags;
  flags.log_level = "warn";
  std::string name;
  bool dry_run = false;
  int sample = 5;
  AddCommonFlags(&app, &flags);
  if (verb == "run") {
    app.add_option("name", name, "the sync's name ([[activate.syncs]] name)")->required();
    app.add_flag("--dry-run", dry_run, "compute the diff and print its counts and a sample; send and write nothing");
    app.add_option("--sample", sample, "diff rows printed by --dry-run (default 5)");
  }
  if (args[0] == "--help" || args[0] == "-h") {
    out << app.help();
    return 0;
  }
  if (int rc = ParseArgs(app, {args.begin() + 1, args.end()}, out, err); rc >= 0) return rc;
  InitLogging(flags.log_level);
  auto config = LoadConfig(flags);
  if (!config.ok()) {
    err << "clicklake sync: " << config.status().message() << "\n";
    return 2;
  }
  if (verb == "status") {
    auto rows = activate::SyncStatus(*config);
    if (!rows.ok()) {
      err << "clicklake sync status: " << rows.status().message() << "\n";
      return 1;
    }
    if (rows->empty()) {
      out << "no syncs configured ([[activate.syncs]] in the configuration file)\n";
      return 0;
    }
    out << std::left << std::setw(20) << "sync" << std::setw(10) << "mode" << std::setw(12) << "destination"
        << std::setw(9) << "trigger" << std::right << std::setw(10) << "rows" << std::setw(9) << "pending"
        << "  last run\n";
    for (const auto& r : *rows) {
      out << std::left << std::setw(20) << r.sync << std::setw(10) << r.mode << std::setw(12) << r.destination
          << std::setw(9) << r.trigger << std::right << std::setw(10) << r.snapshot_rows << std::setw(9)
          << r.pending_rows << "  ";
      if (r.last_run_id < 0 && r.last_status.empty()) {
        out << "never\n";
        continue;
      }
      out << "#" << r.last_run_id << " " << r.last_status << " at " << r.last_finished_at << " UTC: +" << r.last_added
          << " ~" << r.last_changed << " -" << r.last_removed << ", " << r.last_failed << " failed";
      if (!r.last_error.empty()) out << " (" << r.last_error << ")";
      out << "\n";
    }
    return 0;
  }
  activate::SyncRunOptions options;
  options.dry_run = dry_run;
  options.trigger = "cli";
  options.sample_rows = static_cast<size_t>(std::max(0, sample));
  auto result = activate::RunSync(*config, name, options);
  if (!result.ok()) {
    err << "clicklake sync run " << name << ": " << result.status().message() << "\n";
    return result.status().IsNotFound() ? 2 : 1;
  }
  const activate::SyncRunResult& r = *result;
  if (dry_run) {
    out << "sync " << name << " (dry run): " << r.model_rows << " model rows (" << r.skipped_rows
        << " skipped); would add " << r.added << ", change " << r.changed << ", remove " << r.removed << "; "
        << r.unchanged << " unchanged\n";
    for (const auto& line : r.sample) out << "  " << line << "\n";
    return 0;
  }
  out << "sync " << name << " run " << r.run_id << ": " << r.status << "; added " << r.added << ", changed "
      << r.changed << ", removed " << r.removed << ", failed " << r.failed << ", unchanged " << r.unchanged;
  if (r.resumed > 0) out << "; " << r.resumed << " rows of an interrupted run folded first";
  out << "; " << r.requests << " requests, " << r.retries << " retries, " << r.duration_us / 1000 << " ms\n";
  if (!r.error_summary.empty()) out << "errors: " << r.error_summary << "\n";
  return r.failed > 0 ? 1 : 0;
}

}  // namespace clicklake::cli

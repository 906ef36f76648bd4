// The `clicklake` command: one function per subcommand.
//
// Each Run*Command parses its own flags (CLI11), does its work, and returns the
// process exit code; failures print one clear line on `err`. main.cc only
// dispatches. Shared flags (--config, --lake, --port, --trigger, --write-key)
// are folded into a Config by LoadConfig so every setting can come from the
// TOML file or a flag.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace clicklake::cli {

// Flags shared by up / collect / process.
struct ServiceFlags {
  std::string config_path;
  std::string lake;
  int port = -1;
  int api_port = -1;  // --api-port: the API server (off unless set here or as api.port)
  std::string trigger;
  std::vector<std::string> write_keys;  // KEY or KEY=SOURCE
  std::vector<std::string> settings;    // --set KEY=VALUE: any setting of the TOML file
  std::string log_level = "info";
};

// File (if any) + flags → Config.
Result<Config> LoadConfig(const ServiceFlags& flags);
// Registers the erasure steps of components above the pipeline (reverse-ETL
// snapshots) with pipeline::RegisterErasureStep; once per process.
void RegisterErasureSteps(const Config& config);

int RunInitCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int RunServiceCommand(const std::string& mode, const std::vector<std::string>& args, std::ostream& out,
                      std::ostream& err);  // mode: up | collect | process
// backfill --from D --to D: rebuild Silver for those dates from Bronze.
int RunBackfillCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// forget --user/--anonymous-id/--email/--file: erase a person (pipeline/erasure.h).
int RunForgetCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// retention: expire partitions older than the [retention] TTLs (pipeline/erasure.h).
int RunRetentionCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// pii detokenize TOKEN...: the raw values behind vault tokens (pipeline/erasure.h Detokenize).
int RunPiiCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int RunSqlCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// table: RunTableCommand inside an OpenLineage run for optimize/vacuum (maintenance_lineage.cc).
int RunTableCommandWithLineage(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// status [--json]: readiness per dataset; exit 1 when one is FAILED.
int RunStatusCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// audit verify: system.audit's hash chain; access token|password: policy credentials.
int RunAuditCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int RunAccessCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// sync run NAME [--dry-run] | sync status: reverse-ETL syncs (src/activate).
int RunSyncCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace clicklake::cli

// clicklake: the command-line entry point. Dispatches to one subcommand.
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/table_command.h"
#include "enrich/parse_ua_tool.h"
#include "simulate/simulator.h"

namespace {

constexpr const char* kUsage = R"(clicklake: clickstream → Delta Lake, in one program.

usage: clicklake <command> [flags]

commands:
  init       write a commented configuration file (and the PII key file)
  up         run the collector and the processor
  collect    run the collector only
  process    run the processor only (--once: drain the log, then exit)
  backfill   rebuild Silver for a range of event dates from Bronze (--from, --to)
  forget     erase a person everywhere (--user, --anonymous-id, --email; --suppress) and write a receipt
  pii        detokenize TOKEN...: the raw values behind tokens of privacy.tokenize_fields (admin)
  retention  expire partitions older than the [retention] TTLs (delete, purge, vacuum; recorded)
  simulate   send realistic Segment traffic to a collector
  sql        query the lake's tables with SQL (--as ROLE / --token T: governed by the access policy)
  audit      verify: check system.audit's hash chain
  access     token | password: credentials for the access policy file
  sync       reverse ETL: run NAME [--dry-run] a sync to a CRM/ad platform, or show their status
  table      Delta table maintenance: history, describe, files, optimize, vacuum
  status     readiness of every dataset (READY/LATE/FAILED/UNKNOWN); exit 1 when one is FAILED
  tools      parse-ua: user agents on stdin → one JSON object per line (uap-core rules)

Run `clicklake <command> --help` for a command's flags.
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (command == "init") return clicklake::cli::RunInitCommand(args, std::cout, std::cerr);
    if (command == "up" || command == "collect" || command == "process")
      return clicklake::cli::RunServiceCommand(command, args, std::cout, std::cerr);
    if (command == "backfill") return clicklake::cli::RunBackfillCommand(args, std::cout, std::cerr);
    if (command == "forget") return clicklake::cli::RunForgetCommand(args, std::cout, std::cerr);
    if (command == "retention") return clicklake::cli::RunRetentionCommand(args, std::cout, std::cerr);
    if (command == "pii") return clicklake::cli::RunPiiCommand(args, std::cout, std::cerr);
    if (command == "sql") return clicklake::cli::RunSqlCommand(args, std::cout, std::cerr);
    if (command == "audit") return clicklake::cli::RunAuditCommand(args, std::cout, std::cerr);
    if (command == "access") return clicklake::cli::RunAccessCommand(args, std::cout, std::cerr);
    if (command == "sync") return clicklake::cli::RunSyncCommand(args, std::cout, std::cerr);
    if (command == "simulate") return clicklake::simulate::RunSimulateCommand(args, std::cout, std::cerr);
    if (command == "table") return clicklake::cli::RunTableCommandWithLineage(args, std::cout, std::cerr);
    if (command == "status") return clicklake::cli::RunStatusCommand(args, std::cout, std::cerr);
    if (command == "tools") {
      if (!args.empty() && args[0] == "parse-ua") {
        return clicklake::enrich::RunParseUaTool({args.begin() + 1, args.end()}, std::cin, std::cout, std::cerr);
      }
      std::cerr << "clicklake tools: expected a tool name: parse-ua\n";
      return 2;
    }
  } catch (const std::exception& e) {
    std::cerr << "clicklake " << command << ": " << e.what() << "\n";
    return 1;
  }
  std::cerr << "clicklake: unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}

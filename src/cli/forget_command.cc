// clicklake forget: erase (and/or suppress) a person everywhere in the lake
// (pipeline/erasure.h, docs/privacy.md).
//
// The request is queued and applied to the subject list at once (from then on
// the processor drops the person's events). If no processor holds the state
// lock, this command executes it; otherwise the running processor does,
// between batches, and this command waits for the receipt.
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/json_string.h"
#include "common/logging.h"
#include "engine/engine.h"
#include "governance/access/access.h"
#include "pipeline/erasure.h"
#include "pipeline/silver.h"
#include "privacy/privacy.h"

namespace clicklake::cli {

int RunForgetCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app("clicklake forget: remove a person (every linked identifier) from every table, the state, the log "
               "backlog and older table versions, and write a receipt",
               "clicklake forget");
  ServiceFlags flags;
  privacy::Subject subject;
  std::string file, type_name, mode = "delete", reason, timeout = "10m";
  bool suppress = false, no_wait = false;
  app.add_option("--user", subject.user_ids, "a user id (repeatable)");
  app.add_option("--anonymous-id", subject.anonymous_ids, "an anonymous id (repeatable)");
  app.add_option("--email", subject.emails, "an email address (repeatable)");
  app.add_option("--file", file,
                 "requests, one JSON body per line in the POST /api/v1/regulations shape (Segment or RudderStack)");
  app.add_option("--type", type_name, "DELETE (default), SUPPRESS, SUPPRESS_WITH_DELETE or UNSUPPRESS");
  app.add_flag("--suppress", suppress, "also drop the person's future events (SUPPRESS_WITH_DELETE)");
  app.add_option("--mode", mode,
                 "delete (default): rows removed; anonymize: rows kept (aggregates unchanged), every identifier "
                 "replaced by a random pseudonym and PII fields nulled or redacted");
  app.add_option("--reason", reason, "why (kept in the receipt)");
  app.add_flag("--no-wait", no_wait, "queue the request and return (a running processor executes it)");
  app.add_option("--timeout", timeout, "how long to wait for a running processor to execute it (default 10m)");
  app.add_option("--config", flags.config_path, "TOML configuration file");
  app.add_option("--lake", flags.lake, "lake directory (default ./lake)");
  app.add_option("--set", flags.settings, "override any setting: KEY=VALUE (repeatable)");
  app.add_option("--log-level", flags.log_level, "trace|debug|info|warn|error");
  if (int rc = ParseArgs(app, args, out, err); rc >= 0) return rc;
  InitLogging(flags.log_level);
  auto config = LoadConfig(flags);
  if (!config.ok()) {
    err << "clicklake forget: " << config.status().message() << "\n";
    return 2;
  }
  RegisterErasureSteps(*config);
  if (mode != "delete" && mode != "anonymize") {
    err << "clicklake forget: --mode " << mode << ": use delete or anonymize\n";
    return 2;
  }
  privacy::RegulationType type = suppress ? privacy::RegulationType::kSuppressWithDelete : privacy::RegulationType::kDelete;
  if (!type_name.empty()) {
    auto t = privacy::ParseRegulationType(type_name);
    if (!t) {
      err << "clicklake forget: --type " << type_name << ": use DELETE, SUPPRESS, SUPPRESS_WITH_DELETE or UNSUPPRESS\n";
      return 2;
    }
    type = *t;
  }
  std::vector<privacy::PrivacyRequest> requests;
  if (!subject.empty()) {
    privacy::PrivacyRequest r;
    r.type = type;
    r.subject = subject;
    for (auto& e : r.subject.emails) e = privacy::Subject{{}, {}, {e}}.All()[0];
    requests.push_back(std::move(r));
  }
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) {
      err << "clicklake forget: cannot read " << file << "\n";
      return 2;
    }
    int line_no = 0;
    for (std::string line; std::getline(in, line);) {
      line_no++;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto parsed = privacy::ParseRegulation(line);
      if (!parsed.ok()) {
        err << "clicklake forget: " << file << ":" << line_no << ": " << parsed.status().message() << "\n";
        return 2;
      }
      for (auto& r : *parsed) {
        r.manner = "file";
        requests.push_back(std::move(r));
      }
    }
  }
  if (requests.empty()) {
    err << "clicklake forget: name the person: --user, --anonymous-id, --email or --file\n";
    return 2;
  }
  auto key = pipeline::LoadPiiKey(pipeline::SilverOptions::FromConfig(*config));
  if (!key.ok()) {
    err << "clicklake forget: PII key: " << key.status().ToString() << "\n";
    return 1;
  }
  const std::string lake = config->lake_dir();
  for (auto& r : requests) {
    if (r.reason.empty()) r.reason = reason;
    if (mode == "anonymize") r.mode = privacy::ErasureMode::kAnonymize;
    if (r.manner == "api") r.manner = "cli";
    Status s = pipeline::SubmitPrivacyRequest(lake, *key, &r);
    if (!s.ok()) {
      err << "clicklake forget: " << s.ToString() << "\n";
      return 1;
    }
    err << "queued " << r.id << " (" << privacy::RegulationTypeName(r.type) << ")\n";
  }
  if (no_wait) return 0;
  auto done = pipeline::ExecutePrivacyRequestsStandalone(*config);
  if (!done.ok()) {
    if (done.status().code() != StatusCode::kUnavailable) {
      err << "clicklake forget: " << done.status().ToString() << " (rerun `clicklake forget` with the same "
          << "lake to complete it; the queued request is kept)\n";
      return 1;
    }
    err << "a processor is running: it executes the request between batches; waiting\n";
    Config timeout_config;
    timeout_config.Set("timeout", timeout);
    const int64_t deadline =
        SystemClock()->MonotonicMicros() + timeout_config.GetDurationMicros("timeout", 600'000'000);
    privacy::RequestQueue queue(lake);
    for (const auto& r : requests) {
      while (queue.IsPending(r.id)) {
        if (SystemClock()->MonotonicMicros() > deadline) {
          err << "clicklake forget: " << r.id << " still pending after " << timeout
              << " (it stays queued; the processor completes it)\n";
          return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
  }
  for (const auto& r : requests) {
    auto receipt = pipeline::ReadReceipt(lake, r.id);
    if (receipt.ok()) {
      out << *receipt;
    } else {
      err << "clicklake forget: " << r.id << ": purge pending until privacy.erasure_sla passes (receipt then)\n";
    }
  }
  return 0;
}

int RunRetentionCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app("clicklake retention: expire the partitions older than the [retention] TTLs (delete, purge the files "
               "of every version, vacuum) and record it in system.erasures",
               "clicklake retention");
  ServiceFlags flags;
  app.add_option("--config", flags.config_path, "TOML configuration file");
  app.add_option("--lake", flags.lake, "lake directory (default ./lake)");
  app.add_option("--set", flags.settings, "override any setting: KEY=VALUE, e.g. retention.bronze.events=400d");
  app.add_option("--log-level", flags.log_level, "trace|debug|info|warn|error");
  if (int rc = ParseArgs(app, args, out, err); rc >= 0) return rc;
  InitLogging(flags.log_level);
  auto config = LoadConfig(flags);
  if (!config.ok()) {
    err << "clicklake retention: " << config.status().message() << "\n";
    return 2;
  }
  auto rules = pipeline::RetentionRulesFromConfig(*config);
  if (!rules.ok() || rules->empty()) {
    err << "clicklake retention: "
        << (rules.ok() ? "no TTL configured: add e.g. [retention.bronze] events = \"400d\"" : rules.status().message())
        << "\n";
    return 2;
  }
  auto receipt = pipeline::RunRetentionStandalone(*config, *rules);
  if (!receipt.ok()) {
    err << "clicklake retention: " << receipt.status().ToString() << "\n";
    return receipt.status().code() == StatusCode::kUnavailable ? 3 : 1;
  }
  out << receipt->ToJson();
  return 0;
}

int RunPiiCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] != "detokenize") {
    err << "clicklake pii: expected a subcommand: detokenize TOKEN... (the raw values behind vault tokens)\n";
    return 2;
  }
  CLI::App app("clicklake pii detokenize: the raw values behind tokens of privacy.tokenize_fields (admin: reads the "
               "restricted zone)",
               "clicklake pii detokenize");
  ServiceFlags flags;
  std::vector<std::string> tokens;
  app.add_option("tokens", tokens, "tok_... values from silver.events")->required();
  app.add_option("--config", flags.config_path, "TOML configuration file");
  app.add_option("--lake", flags.lake, "lake directory (default ./lake)");
  app.add_option("--set", flags.settings, "override any setting: KEY=VALUE (repeatable)");
  app.add_option("--log-level", flags.log_level, "trace|debug|info|warn|error");
  if (int rc = ParseArgs(app, {args.begin() + 1, args.end()}, out, err); rc >= 0) return rc;
  InitLogging(flags.log_level);
  auto config = LoadConfig(flags);
  if (!config.ok()) {
    err << "clicklake pii detokenize: " << config.status().message() << "\n";
    return 2;
  }
  auto db = engine::Database::Open();
  if (!db.ok()) {
    err << "clicklake pii detokenize: " << db.status().ToString() << "\n";
    return 1;
  }
  auto values = pipeline::Detokenize(config->lake_dir(), db->get(), tokens);
  if (!values.ok()) {
    err << "clicklake pii detokenize: " << values.status().ToString() << "\n";
    return 1;
  }
  // Every PII access is audited in the chain (system.audit): who asked, which
  // tokens, how many were found; never the values. No record, no values.
  const char* who = std::getenv("USER");
  access::AuditRecord record;
  record.action = "pii_detokenize";
  record.principal = std::string("local:") + (who ? who : "operator");
  record.role = "admin";
  record.tables = {"restricted.pii"};
  record.columns = {"restricted.pii.value"};
  record.rows = static_cast<int64_t>(values->size());
  record.outcome = values->size() == tokens.size() ? "ok" : "not_found";
  std::string asked = "[";
  for (size_t i = 0; i < tokens.size(); i++) asked += (i ? "," : "") + JsonString(tokens[i]);
  record.detail = "{\"tokens\":" + asked + "],\"found\":" + std::to_string(values->size()) + "}";
  if (Status s = access::AppendAuditRecord(config->lake_dir(), record); !s.ok()) {
    err << "clicklake pii detokenize: the access could not be audited, so no value is shown: " << s.ToString() << "\n";
    return 1;
  }
  int missing = 0;
  for (const auto& t : tokens) {
    auto it = values->find(t);
    if (it == values->end()) {
      missing++;
      out << "{\"token\":" << JsonString(t) << ",\"found\":false}\n";
    } else {
      out << "{\"token\":" << JsonString(t) << ",\"field\":" << JsonString(it->second.first)
          << ",\"value\":" << JsonString(it->second.second) << "}\n";
    }
  }
  return missing == 0 ? 0 : 1;
}

}  // namespace clicklake::cli

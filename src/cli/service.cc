// clicklake up | collect | process: the long-running services.
#include <atomic>
#include <csignal>
#include <iostream>
#include <thread>

#include "activate/activate.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "collector/collector.h"
#include "common/logging.h"
#include "log/event_log.h"
#include "pipeline/pipeline.h"
#include "governance/quality/quality.h"
#include "serve/api_server.h"
#include "serve/readiness_api.h"
#include "serve/status_page.h"
#include "cli/signals.h"
#include "serve/query_api.h"
#include "cli/regulations_route.h"

namespace clicklake::cli {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

}  // namespace

Result<Config> LoadConfig(const ServiceFlags& flags) {
  Config config;
  if (!flags.config_path.empty()) {
    ASSIGN_OR_RETURN(config, Config::LoadFile(flags.config_path));
  }
  for (const auto& kv : flags.settings) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return Status::InvalidArgument("--set expects KEY=VALUE, got '" + kv + "'");
    config.Set(kv.substr(0, eq), kv.substr(eq + 1));
  }
  if (!flags.lake.empty()) config.Set("lake.dir", flags.lake);
  if (flags.port >= 0) config.Set("collector.port", std::to_string(flags.port));
  if (flags.api_port >= 0) config.Set("api.port", std::to_string(flags.api_port));
  if (!flags.trigger.empty()) {
    int64_t us;
    if (!ParseDurationMicros(flags.trigger, &us))
      return Status::InvalidArgument("--trigger " + flags.trigger + ": expected a duration like 5s, 500ms or 1m");
    config.Set("processor.trigger", flags.trigger);
  }
  for (const auto& wk : flags.write_keys) {
    auto eq = wk.find('=');
    std::string key = wk.substr(0, eq);
    std::string source = eq == std::string::npos ? "default" : wk.substr(eq + 1);
    if (key.empty()) return Status::InvalidArgument("--write-key needs KEY or KEY=SOURCE");
    config.Set("collector.write_keys." + key, source);
  }
  return config;
}

int RunServiceCommand(const std::string& mode, const std::vector<std::string>& args, std::ostream& out,
                      std::ostream& err) {
  CLI::App app("clicklake " + mode, "clicklake " + mode);
  ServiceFlags flags;
  bool once = false;
  bool accept_quarantine = false;
  app.add_option("--config", flags.config_path, "TOML configuration file");
  app.add_option("--lake", flags.lake, "lake directory (default ./lake)");
  app.add_option("--log-level", flags.log_level, "trace|debug|info|warn|error");
  app.add_option("--set", flags.settings, "override any setting: KEY=VALUE, e.g. log.partitions=4 (repeatable)");
  if (mode != "process") {
    app.add_option("--port", flags.port, "collector port (default 8080)");
    app.add_option("--write-key", flags.write_keys, "accepted write key, KEY or KEY=SOURCE (repeatable)");
  }
  app.add_option("--api-port", flags.api_port,
                 "API server port: /healthz, /metrics, /api/v1/* (loopback unless api.host says otherwise)");
  if (mode != "collect") app.add_option("--trigger", flags.trigger, "micro-batch interval, e.g. 60s");
  if (mode == "process") app.add_flag("--once", once, "drain what is in the log, then exit");
  if (mode != "collect")
    app.add_flag("--accept-quarantine", accept_quarantine,
                 "commit the next batch even if its quarantine rate passes silver.quarantine_threshold");
  if (int rc = ParseArgs(app, args, out, err); rc >= 0) return rc;

  // Handlers first: a SIGTERM while the services start up (loading rules, recovering
  // state) must still end in a clean shutdown, not kill the process.
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  InitLogging(flags.log_level);
  auto config = LoadConfig(flags);
  if (!config.ok()) {
    err << "clicklake " << mode << ": " << config.status().message() << "\n";
    return 2;
  }
  RegisterErasureSteps(*config);

  auto event_log = log::OpenEventLog(*config);
  if (!event_log.ok()) {
    err << "clicklake " << mode << ": opening the event log: " << event_log.status().ToString() << "\n";
    return 1;
  }

  std::unique_ptr<collector::Collector> collector;
  if (mode != "process") {
    auto c = collector::Collector::Create(*config, event_log->get());
    if (!c.ok()) {
      err << "clicklake " << mode << ": " << c.status().ToString() << "\n";
      return 1;
    }
    collector = std::move(c).value();
  }

  // Quality checks and readiness ([quality], governance/quality): an observer of the processor.
  auto quality_options = quality::QualityOptions::FromConfig(*config);
  if (!quality_options.ok()) {
    err << "clicklake " << mode << ": " << quality_options.status().message() << "\n";
    return 2;
  }
  std::unique_ptr<pipeline::MicroBatchRunner> runner;
  Signals signals;
  // Reverse-ETL syncs with a gold or interval trigger run on their own thread
  // (a slow or failing sync never holds up a batch); not with --once.
  std::unique_ptr<activate::SyncScheduler> syncs;
  if (mode != "collect" && !once) {
    auto s = activate::SyncScheduler::Create(*config);
    if (!s.ok()) {
      err << "clicklake " << mode << ": " << s.status().message() << "\n";
      return 2;
    }
    syncs = std::move(s).value();
  }
  if (mode != "collect") {
    pipeline::PipelineOptions options = pipeline::PipelineOptions::FromConfig(*config);
    options.accept_quarantine = accept_quarantine;
    auto q = quality::QualityObserver::Create(*quality_options, options.lake_dir, options.consumer_group,
                                              event_log->get());
    if (!q.ok()) {
      err << "clicklake " << mode << ": starting the quality checks: " << q.status().ToString() << "\n";
      return 1;
    }
    options.observers.push_back(*q);
    // Lineage and alerts (cli/signals.h), after the quality observer so they see its results.
    auto sig = StartSignals(*config, options.consumer_group, event_log->get(), q->get(), collector != nullptr);
    if (!sig.ok()) {
      err << "clicklake " << mode << ": " << sig.status().message() << "\n";
      return 2;
    }
    signals = std::move(sig).value();
    for (const auto& o : signals.observers) options.observers.push_back(o);
    if (syncs) options.observers.push_back(syncs->GoldObserver());
    auto r = pipeline::MicroBatchRunner::Create(options, event_log->get());
    if (!r.ok()) {
      err << "clicklake " << mode << ": starting the processor: " << r.status().ToString() << "\n";
      return 1;
    }
    runner = std::move(r).value();
  } else {
    // The collector alone: its own alerts (shedding, 5xx, disk), on a timer (cli/signals.h).
    auto sig = StartCollectorSignals(*config);
    if (!sig.ok()) {
      err << "clicklake " << mode << ": " << sig.status().message() << "\n";
      return 2;
    }
    signals = std::move(sig).value();
  }
  std::unique_ptr<access::QueryService> query_service;  // outlives the API server's routes
  std::unique_ptr<serve::ApiServer> api;
  if (serve::ApiServerOptions api_options = serve::ApiServerOptions::FromConfig(*config); api_options.enabled()) {
    auto a = serve::ApiServer::Create(api_options);
    if (!a.ok()) {
      err << "clicklake " << mode << ": " << a.status().ToString() << "\n";
      return 2;
    }
    api = std::move(a).value();
    // Components add their routes here (status page, readiness, query, regulations).
    serve::AddReadinessRoutes(api.get(), config->lake_dir(), *quality_options);
    serve::AddStatusPage(api.get(), serve::StatusPageOptions::FromConfig(*config, *quality_options));
    query_service = std::make_unique<access::QueryService>(
        access::QueryServiceOptions::FromConfig(*config, flags.config_path));
    serve::RegisterQueryApi(api.get(), query_service.get());
    if (Status s = RegisterRegulationsRoutes(api.get(), *config, query_service.get()); !s.ok()) {
      err << "clicklake " << mode << ": " << s.ToString() << "\n";
      return 2;
    }
  }
  // Every component has read its settings: a value of the wrong type is an
  // error now rather than its default silently (the processor checks its own).
  if (Status s = config->ReadErrors(); !s.ok()) {
    err << "clicklake " << mode << ": " << s.message() << "\n";
    return 2;
  }
  if (collector) {
    if (Status s = collector->Start(); !s.ok()) {
      err << "clicklake " << mode << ": starting the collector: " << s.ToString() << "\n";
      return 1;
    }
    spdlog::info("collector listening on port {}", collector->port());
  }
  if (api) {
    if (Status s = api->Start(); !s.ok()) {
      err << "clicklake " << mode << ": starting the API server: " << s.ToString() << "\n";
      return 1;
    }
    spdlog::info("API server listening on port {}{}", api->port(), api->tls() ? " (HTTPS)" : "");
  }

  if (once) {
    Status s = runner->Drain();
    signals.Stop();  // lineage and alerts delivered before exiting
    Status c = (*event_log)->Close();
    if (!s.ok()) {
      err << "clicklake process: " << s.ToString() << "\n";
      return 1;
    }
    if (!c.ok()) err << "clicklake process: closing the log: " << c.ToString() << "\n";
    return 0;
  }

  Status run_status;
  std::thread processor;
  if (syncs) syncs->Start();
  if (runner) processor = std::thread([&] { run_status = runner->Run(); });
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("{}: shutting down", mode);
  int rc = 0;
  // The collector first (drains in-flight requests into the log), then the
  // processor (its final drain picks up what the collector acknowledged).
  if (collector) {
    if (Status s = collector->Stop(); !s.ok()) {
      err << "clicklake " << mode << ": stopping the collector: " << s.ToString() << "\n";
      rc = 1;
    }
  }
  if (api) api->Stop();
  if (!runner) signals.Stop();  // collect: the last alerts delivered
  if (runner) {
    runner->Stop();
    processor.join();
    signals.Stop();
  }
  if (syncs) syncs->Stop();
  if (runner) {
    if (!run_status.ok()) {
      err << "clicklake " << mode << ": processor: " << run_status.ToString() << "\n";
      rc = 1;
    }
  }
  if (Status s = (*event_log)->Close(); !s.ok()) {
    err << "clicklake " << mode << ": closing the log: " << s.ToString() << "\n";
    rc = 1;
  }
  spdlog::info("{}: stopped", mode);
  return rc;
}

}  // namespace clicklake::cli

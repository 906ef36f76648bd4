// quality_bench: what the quality checks and readiness add to a micro-batch.
//
// Fills a fresh lake's event log with the same simulated Segment traffic for
// each run, then drains it with the micro-batch runner (Bronze, Silver, Gold)
// in batches of BATCH events, once with the QualityObserver registered and once
// without, alternating, ROUNDS times each. Reports the mean wall time per batch
// (RunOnce, observers included) of batches 2..N (batches 0 and 1 warm up and
// are left out, as bench/steady's COMPARE_SIGNALS=1 does) and the ratio on/off,
// which issue 16 bounds at 1.10.
//
// usage: quality_bench [EVENTS=120000] [BATCH=20000] [ROUNDS=2]
// Exits 1 when the ratio exceeds MAX_RATIO (env, default 1.10). "On" runs also have lineage
// and alerts (cli/signals.h) registered, as `clicklake up` does, unless NO_SIGNALS is set.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/config.h"
#include "common/raw_event.h"
#include "cli/signals.h"
#include "governance/quality/quality.h"
#include "log/event_log.h"
#include "pipeline/pipeline.h"
#include "simulate/simulator.h"

namespace {

using namespace clicklake;

struct Run {
  std::vector<double> batch_s;  // per batch from batch 2 on
  double observer_s = 0;
  int64_t results = 0;
};

Status Fill(log::EventLog* log, int64_t events, int64_t start_us) {
  simulate::SimulatorOptions so;
  so.users = 20000;
  so.seed = 42;
  so.start_time_us = start_us;
  so.duplicate_rate = 0.02;
  so.late_rate = 0.01;
  so.out_of_order_rate = 0.02;
  so.malformed_rate = 0.005;
  so.rate = 5000;
  simulate::TrafficGenerator gen(so);
  int64_t written = 0;
  std::vector<log::LogEntry> entries;
  while (written < events) {
    simulate::GeneratedBatch batch = gen.NextBatch();
    const int64_t sent = batch.DefaultSentAtMicros();
    for (const auto& e : batch.events) {
      RawEvent raw;
      raw.received_at_us = sent + 80000;
      raw.source = "web";
      raw.protocol = "segment";
      raw.client_ip = "203.0.113.7";
      raw.user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
      raw.payload = batch.EventPayload(e, sent);
      log::LogEntry entry;
      entry.key = e.anonymous_id;
      EncodeRawEvent(raw, &entry.value);
      entries.push_back(std::move(entry));
      if (++written == events) break;
    }
    if (entries.size() >= 10000) {
      RETURN_IF_ERROR(log->Append(std::move(entries)));
      entries.clear();
    }
  }
  if (!entries.empty()) RETURN_IF_ERROR(log->Append(std::move(entries)));
  return Status::OK();
}

Result<Run> RunOnce(bool quality, int64_t events, int64_t batch, int64_t start_us) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("clicklake-quality-bench-" + std::to_string(getpid()))).string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Config config;
  config.Set("lake.dir", dir + "/lake");
  ASSIGN_OR_RETURN(auto log, log::OpenEventLog(config));
  RETURN_IF_ERROR(Fill(log.get(), events, start_us));
  pipeline::PipelineOptions options;
  options.lake_dir = dir + "/lake";
  options.config.Set("privacy.key_file", dir + "/pii.key");
  options.config.Set("silver.quarantine_min_batch", "1000000000");
  options.max_batch_events = batch;
  options.gold_catch_up_interval_us = 0;  // every batch refreshes Gold, as in steady state
  options.compaction = false;
  std::shared_ptr<quality::QualityObserver> observer;
  cli::Signals signals;
  if (quality) {
    ASSIGN_OR_RETURN(auto qopts, quality::QualityOptions::FromConfig(Config()));
    ASSIGN_OR_RETURN(observer, quality::QualityObserver::Create(qopts, options.lake_dir, options.consumer_group,
                                                                log.get()));
    options.observers.push_back(observer);
    // Lineage and alerts too (as `clicklake up` runs them), unless NO_SIGNALS is set.
    if (!std::getenv("NO_SIGNALS")) {
      Config signals_config;
      signals_config.Set("lake.dir", options.lake_dir);
      ASSIGN_OR_RETURN(signals, cli::StartSignals(signals_config, options.consumer_group, log.get(), observer.get(),
                                                  /*collector_in_process=*/false));
      for (const auto& o : signals.observers) options.observers.push_back(o);
    }
  }
  ASSIGN_OR_RETURN(auto runner, pipeline::MicroBatchRunner::Create(options, log.get()));
  Run run;
  for (int i = 0;; i++) {
    const auto t0 = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(pipeline::BatchResult r, runner->RunOnce());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r.batch_id < 0) break;
    if (i < 2) continue;  // warm-up: batches 0 and 1, as in bench/steady
    run.batch_s.push_back(s);
    if (observer) {
      run.observer_s += observer->last_run().us / 1e6;
      run.results += observer->last_run().results;
    }
  }
  signals.Stop();
  RETURN_IF_ERROR(log->Close());
  std::filesystem::remove_all(dir);
  return run;
}

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t events = argc > 1 ? std::atoll(argv[1]) : 120000;
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 20000;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 2;
  const double max_ratio = std::getenv("MAX_RATIO") ? std::atof(std::getenv("MAX_RATIO")) : 1.10;
  // Recent traffic, so readiness and freshness see a live lake.
  const int64_t start_us = SystemClock()->NowMicros() - 3600LL * 1000000;
  std::vector<double> off, on;
  double observer_s = 0;
  int64_t results = 0;
  for (int round = 0; round < rounds; round++) {
    for (bool quality : {false, true}) {
      auto r = RunOnce(quality, events, batch, start_us);
      if (!r.ok()) {
        std::cerr << "quality_bench: " << r.status().ToString() << "\n";
        return 2;
      }
      std::printf("round %d, quality %-3s: %zu batches, mean %.3f s per batch%s\n", round + 1, quality ? "on" : "off",
                  r->batch_s.size(), Mean(r->batch_s),
                  quality ? (", observer " + std::to_string(r->observer_s / r->batch_s.size()).substr(0, 5) +
                             " s per batch").c_str()
                          : "");
      (quality ? on : off).insert((quality ? on : off).end(), r->batch_s.begin(), r->batch_s.end());
      if (quality) {
        observer_s += r->observer_s;
        results += r->results;
      }
    }
  }
  const double ratio = Mean(on) / Mean(off);
  if (off.empty() || on.empty()) {
    std::cerr << "quality_bench: fewer than 3 batches per run: give more EVENTS or a smaller BATCH\n";
    return 2;
  }
  std::printf("quality_bench: %lld events in batches of %lld, %d rounds: mean batch seconds (batches 2..N) "
              "off %.3f s, on %.3f s; signals overhead on/off %.3f (target <= %.2f); the observer itself "
              "%.3f s per batch, %lld results\n",
              static_cast<long long>(events), static_cast<long long>(batch), rounds, Mean(off), Mean(on), ratio,
              max_ratio, observer_s / on.size(), static_cast<long long>(results));
  std::printf("%s\n", ratio <= max_ratio ? "PASS" : "FAIL");
  return ratio <= max_ratio ? 0 : 1;
}

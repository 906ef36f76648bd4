// `clicklake simulate`: flags → SimulatorOptions → RunSimulator → exit code.
#include <CLI/CLI.hpp>
#include <algorithm>

#include "common/clock.h"
#include "simulate/simulator.h"

namespace clicklake::simulate {

int RunSimulateCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  SimulatorOptions opt;
  CLI::App app{"Send realistic Segment traffic (users, sessions, funnels, campaigns, faults) to a collector",
               "clicklake simulate"};
  app.add_option("--url", opt.url, "Collector base URL; batches go to URL/v1/batch")->required();
  app.add_option("--write-key", opt.write_key, "Segment write key (Basic-auth user name)")->required();
  app.add_option("--users", opt.users, "Distinct users")->capture_default_str();
  app.add_option("--rate", opt.rate, "Target events per second")->capture_default_str();
  app.add_option("--duration", opt.duration_s, "Seconds to send for")->capture_default_str();
  app.add_option("--seed", opt.seed, "Random seed (same seed, same traffic)")->capture_default_str();
  app.add_option("--out", opt.out_path, "Write one JSON line per acknowledged event to FILE");
  app.add_option("--batch-size", opt.batch_size, "Events per batch")->capture_default_str();
  app.add_option("--concurrency", opt.concurrency,
                 "Parallel keep-alive HTTP connections (default: enough for --rate when an ack takes 200 ms)");
  app.add_flag("--gzip", opt.gzip, "Send gzip-compressed bodies");
  double faults = 0;
  auto* faults_opt =
      app.add_option("--faults", faults, "Set every fault rate below at once (each flag still overrides)");
  auto* dup = app.add_option("--duplicate-rate", opt.duplicate_rate, "Resend events (same messageId) later");
  auto* late = app.add_option("--late-rate", opt.late_rate, "Extra events hours in the past");
  auto* ooo = app.add_option("--out-of-order-rate", opt.out_of_order_rate, "Hold events back / shuffle batches");
  auto* bad = app.add_option("--malformed-rate", opt.malformed_rate, "Extra contract-breaking events");
  auto* pii = app.add_option("--pii-rate", opt.pii_rate, "Extra events with emails/phones/cards in free text");
  auto* skew = app.add_option("--clock-skew-rate", opt.clock_skew_rate, "Fraction of users with a wrong clock");
  std::string start_time;
  app.add_option("--start-time", start_time,
                 "Simulated start of user time (ISO 8601); default: so that the run ends at the real now");
  app.add_option("--time-scale", opt.time_scale, "Simulated seconds per real second")->capture_default_str();
  app.add_option("--max-retries", opt.max_retries, "Retries per batch on 5xx/429/network errors")
      ->capture_default_str();
  app.add_option("--drain-timeout", opt.drain_timeout_s, "Seconds to keep retrying after --duration")
      ->capture_default_str();

  std::vector<std::string> rev(args.begin(), args.end());
  if (!rev.empty() && rev.front() == "simulate") rev.erase(rev.begin());
  std::reverse(rev.begin(), rev.end());  // CLI11 consumes a reversed vector
  try {
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e, out, err);
    return rc == 0 ? 0 : 2;
  }
  if (faults_opt->count() > 0) {
    for (auto [flag, field] :
         {std::pair{dup, &opt.duplicate_rate}, std::pair{late, &opt.late_rate}, std::pair{ooo, &opt.out_of_order_rate},
          std::pair{bad, &opt.malformed_rate}, std::pair{pii, &opt.pii_rate}, std::pair{skew, &opt.clock_skew_rate}}) {
      if (flag->count() == 0) *field = faults;
    }
  }
  for (double r : {opt.duplicate_rate, opt.late_rate, opt.out_of_order_rate, opt.malformed_rate, opt.pii_rate,
                   opt.clock_skew_rate}) {
    if (!(r >= 0 && r <= 1)) {
      err << "clicklake simulate: fault rates must be between 0 and 1" << std::endl;
      return 2;
    }
  }
  if (!start_time.empty()) {
    if (!ParseTimestampMicros(start_time, &opt.start_time_us)) {
      err << "clicklake simulate: --start-time '" << start_time << "' is not an ISO 8601 timestamp" << std::endl;
      return 2;
    }
  }
  Result<SimulatorReport> report = RunSimulator(opt, out);
  if (!report.ok()) {
    err << "clicklake simulate: " << report.status().message() << std::endl;
    return report.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  const SimulatorReport& r = *report;
  out << "simulate: done: " << r.events_sent << " events in " << r.batches_sent << " batches acknowledged in "
      << r.elapsed_s << "s; " << r.batches_failed << " batches (" << r.events_failed << " events) failed; "
      << r.duplicates_sent << " duplicates, " << r.malformed_sent << " malformed; " << r.http_errors << " HTTP errors"
      << std::endl;
  if (r.batches_failed > 0) {
    err << "clicklake simulate: " << r.batches_failed << " batches were not acknowledged" << std::endl;
    return 1;
  }
  if (r.batches_sent == 0 && opt.duration_s > 0) {
    err << "clicklake simulate: nothing was acknowledged; is the collector at " << opt.url << " up?" << std::endl;
    return 1;
  }
  return 0;
}

}  // namespace clicklake::simulate

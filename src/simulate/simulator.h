// The traffic simulator behind `clicklake simulate`: realistic Segment HTTP API
// traffic (users, sessions, the e-commerce funnel, identity, campaigns,
// experiments, devices, geo) with configurable faults, sent to a collector.
//
// TrafficGenerator is pure: it makes batches of Segment events, deterministic for
// a seed, and never touches the network or the real clock. RunSimulator paces the
// generator's batches to a target rate over `concurrency` keep-alive HTTP
// connections, retries what the collector asks to be retried, and (with out_path)
// writes one JSONL record per acknowledged event. RunSimulateCommand is the CLI.
//
// Thread safety: a TrafficGenerator is used by one thread at a time.
// RunSimulator is safe to call from several threads with different options.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/status.h"

namespace clicklake::simulate {

struct SimulatorOptions {
  std::string url;         // collector base URL, e.g. http://127.0.0.1:8080
  std::string write_key;   // Basic-auth user name (empty password)
  int users = 100;         // distinct people (each with a persistent anonymousId)
  double rate = 200;       // target events/s sent (duplicates included)
  double duration_s = 60;  // how long to send
  uint64_t seed = 1;
  std::string out_path;  // JSONL record of acknowledged events ("" = none)
  int batch_size = 20;   // events per normal batch
  int concurrency = 0;   // parallel keep-alive HTTP connections; 0 = AutoConcurrency(rate, batch_size)
  bool gzip = false;     // send bodies with Content-Encoding: gzip

  // Faults, each a probability per generated event (0 = off).
  double duplicate_rate = 0.0;     // resend an already-sent event (same messageId) a few batches later
  double late_rate = 0.0;          // an extra event whose timestamp is hours in the past
  double out_of_order_rate = 0.0;  // hold an event back 1-3 batches / shuffle a batch
  double malformed_rate = 0.0;     // an extra contract-breaking event (see README)
  double pii_rate = 0.0;           // an extra event with an email/phone/card number in free text
  double clock_skew_rate = 0.0;    // fraction of users whose client clock is off by minutes-hours

  // Simulated "user time". 0 = chosen by RunSimulator so that the whole run ends
  // before the real now (real start − planned simulated span); see README.
  int64_t start_time_us = 0;
  // Simulated seconds per real second (a target; see TrafficGenerator::EffectiveTimeScale).
  double time_scale = 1.0;

  // Retries: a batch is retried on 5xx/429/408/network errors at most this many
  // times, and never after the run's end + drain_timeout_s.
  int max_retries = 10;
  double drain_timeout_s = 30;
};

struct SimulatorReport {
  int64_t events_sent = 0;      // events in acknowledged (HTTP 200) batches, duplicates included
  int64_t batches_sent = 0;     // acknowledged batches
  int64_t batches_failed = 0;   // batches given up on (4xx, or retries exhausted)
  int64_t events_failed = 0;    // events in those batches
  int64_t duplicates_sent = 0;  // acknowledged deliberate duplicates
  int64_t malformed_sent = 0;   // acknowledged malformed events
  int64_t http_errors = 0;      // responses other than 200, plus network errors (per attempt)
  int64_t retries = 0;          // attempts after the first
  double elapsed_s = 0;
  std::map<int, int64_t> status_counts;  // HTTP status → attempts; 0 = network error
};

// One generated event: its JSON as sent and what a test needs to know about it.
struct EventRecord {
  std::string message_id;
  std::string type;                 // track|page|screen|identify|group|alias
  std::string event;                // track name, page/screen name; "" when absent
  std::string user_id;              // "" when absent
  std::string anonymous_id;         // "" when absent
  std::string timestamp;            // as sent (may be deliberately unparseable)
  int64_t true_time_us = 0;         // the simulated moment it happened (before any clock skew)
  std::string duplicate_of;         // for deliberate duplicates: the messageId it repeats (= message_id)
  std::vector<std::string> faults;  // late, skewed, malformed:<kind>, pii, out_of_order
  bool has_revenue = false;
  double revenue = 0;
  std::string currency;
  std::string order_id;
  std::string json;  // the event object exactly as sent
};

// A batch as sent. The body is built per attempt because sentAt is the send time.
struct GeneratedBatch {
  int64_t sequence = 0;  // 0, 1, 2, ... in generation order
  std::vector<EventRecord> events;
  int64_t clock_offset_us = 0;  // client clock error applied to sentAt (skewed clients)
  // Batches holding the originals of this batch's duplicates: send this batch only
  // after those are acknowledged (or given up), so the original is received first.
  std::vector<int64_t> after_batches;

  // {"batch":[...],"sentAt":"..."} with sentAt = sent_at_us + clock_offset_us.
  std::string Body(int64_t sent_at_us) const;
  // `e` (one of `events`) as the collector stores it from Body(sent_at_us): its
  // JSON with the batch's sentAt as the first member.
  std::string EventPayload(const EventRecord& e, int64_t sent_at_us) const;
  // A deterministic send time for tests: the latest event time + 1 s.
  int64_t DefaultSentAtMicros() const;
};

class TrafficGenerator {
 public:
  // REQUIRES: options.users >= 1, options.batch_size >= 1, options.start_time_us != 0
  // (RunSimulator fills it in; tests pass a fixed one).
  explicit TrafficGenerator(const SimulatorOptions& options);
  ~TrafficGenerator();
  TrafficGenerator(const TrafficGenerator&) = delete;
  TrafficGenerator& operator=(const TrafficGenerator&) = delete;

  // The next batch, events roughly in simulated-time order. Never ends.
  GeneratedBatch NextBatch();

  // Simulated seconds per real second the generator will actually produce at
  // options.rate: time_scale, or more when there are too few users for the rate
  // with realistic sessions (a user's sessions are > 30 min apart).
  double EffectiveTimeScale() const;
  // The simulated time of the latest event generated so far.
  int64_t SimulatedNowMicros() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// One JSONL line (no trailing newline) for an acknowledged event; see README.
std::string OutRecordJson(const EventRecord& record, const std::string& sent_at, int64_t batch);

// Connections enough to carry `rate` events/s in batches of `batch_size` when a
// durable acknowledgement takes up to kAutoConcurrencyAckSeconds (a connection
// waits for each answer, so it carries at most batch_size / ack latency events/s):
// ceil(rate × that / batch_size), within 4..256.
constexpr double kAutoConcurrencyAckSeconds = 0.2;
int AutoConcurrency(double rate, int batch_size);

// Formats microseconds since the epoch as ISO 8601 UTC with milliseconds.
std::string FormatIsoMillis(int64_t micros);

// Sends traffic for options.duration_s; progress lines every few seconds.
// Fails only when the options are unusable (bad URL, unwritable out file);
// delivery failures are counted in the report.
Result<SimulatorReport> RunSimulator(const SimulatorOptions& options, std::ostream& progress);

// `clicklake simulate` flags (args exclude the program name; a leading
// "simulate" is skipped). Returns the exit code: 0 all delivered, 1 some
// batches failed or a run error, 2 bad usage.
int RunSimulateCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace clicklake::simulate

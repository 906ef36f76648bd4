// RunSimulator: paces TrafficGenerator batches to the target rate and sends them
// over `concurrency` keep-alive connections (one per worker thread).
//
// The producer (the calling thread) owns the generator, paces releases by event
// count (batch i goes out when events_before_i / rate seconds have passed) and
// pushes into a bounded queue, so a slow collector slows the producer instead of
// growing memory. Workers retry 5xx/429/408/network errors with exponential
// backoff or the server's Retry-After; each attempt carries a fresh sentAt (the
// events are byte-identical), and only a 200 acknowledges. A batch holding
// deliberate duplicates waits until the batches with the originals are done, so
// the original copy is received first.
#include "simulate/simulator.h"

#include <httplib.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "common/clock.h"

namespace clicklake::simulate {

namespace {

constexpr int64_t kSecond = 1000000;

Result<std::string> Gzip(const std::string& in) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::Internal("deflateInit2 failed");
  }
  std::string out;
  out.resize(deflateBound(&zs, in.size()) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Status::Internal("gzip of a batch body failed");
  out.resize(produced);
  return out;
}

struct ParsedUrl {
  std::string base;         // scheme://host:port
  std::string path_prefix;  // "" or "/prefix" (no trailing slash)
};

Result<ParsedUrl> ParseUrl(const std::string& url) {
  constexpr std::string_view kHttp = "http://";
  constexpr std::string_view kHttps = "https://";
  size_t scheme_len = url.rfind(kHttp, 0) == 0 ? kHttp.size() : (url.rfind(kHttps, 0) == 0 ? kHttps.size() : 0);
  if (scheme_len == 0) {
    return Status::InvalidArgument("--url must look like http://HOST:PORT, got '" + url + "'");
  }
  size_t slash = url.find('/', scheme_len);
  ParsedUrl p;
  p.base = url.substr(0, slash);
  if (p.base.size() == scheme_len) return Status::InvalidArgument("--url has no host: '" + url + "'");
  if (slash != std::string::npos) {
    p.path_prefix = url.substr(slash);
    while (!p.path_prefix.empty() && p.path_prefix.back() == '/') p.path_prefix.pop_back();
  }
  return p;
}

class BatchQueue {
 public:
  explicit BatchQueue(size_t capacity) : capacity_(capacity) {}
  // Blocks while full.
  void Push(GeneratedBatch b) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return q_.size() < capacity_; });
    q_.push_back(std::move(b));
    not_empty_.notify_one();
  }
  std::optional<GeneratedBatch> Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return std::nullopt;
    GeneratedBatch b = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return b;
  }
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<GeneratedBatch> q_;  // GUARDED_BY(mu_)
  bool closed_ = false;           // GUARDED_BY(mu_)
  size_t capacity_;
};

// What the workers share.
class SendState {
 public:
  SendState(std::ofstream* out) : out_(out) {}

  void Acked(const GeneratedBatch& b, const std::string& sent_at) {
    std::string lines;
    int64_t dups = 0, malformed = 0;
    for (const EventRecord& e : b.events) {
      if (!e.duplicate_of.empty()) ++dups;
      for (const std::string& f : e.faults) {
        if (f.rfind("malformed:", 0) == 0) ++malformed;
      }
      if (out_ != nullptr) {
        lines += OutRecordJson(e, sent_at, b.sequence);
        lines.push_back('\n');
      }
    }
    std::lock_guard lock(mu_);
    if (out_ != nullptr) {
      out_->write(lines.data(), static_cast<std::streamsize>(lines.size()));
      out_->flush();
    }
    report_.events_sent += static_cast<int64_t>(b.events.size());
    report_.batches_sent += 1;
    report_.duplicates_sent += dups;
    report_.malformed_sent += malformed;
    done_.insert(b.sequence);
    done_cv_.notify_all();
  }

  void Failed(const GeneratedBatch& b) {
    std::lock_guard lock(mu_);
    report_.batches_failed += 1;
    report_.events_failed += static_cast<int64_t>(b.events.size());
    done_.insert(b.sequence);
    done_cv_.notify_all();
  }

  void Attempt(int status, bool retry) {
    std::lock_guard lock(mu_);
    report_.status_counts[status] += 1;
    if (status != 200) report_.http_errors += 1;
    if (retry) report_.retries += 1;
  }

  // Waits until every batch in `seqs` is acknowledged or given up, or the deadline.
  void WaitDone(const std::vector<int64_t>& seqs, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    done_cv_.wait_until(lock, deadline, [&] {
      return std::all_of(seqs.begin(), seqs.end(), [&](int64_t s) { return done_.count(s) > 0; });
    });
  }

  SimulatorReport Snapshot() {
    std::lock_guard lock(mu_);
    return report_;
  }

 private:
  std::mutex mu_;
  std::condition_variable done_cv_;
  std::ofstream* out_;      // GUARDED_BY(mu_)
  SimulatorReport report_;  // GUARDED_BY(mu_)
  std::set<int64_t> done_;  // GUARDED_BY(mu_)
};

std::string StatusSummary(const std::map<int, int64_t>& counts) {
  std::string s;
  for (const auto& [code, n] : counts) {
    if (!s.empty()) s += ' ';
    s += (code == 0 ? std::string("net_err") : std::to_string(code)) + "=" + std::to_string(n);
  }
  return s.empty() ? "-" : s;
}

void PrintProgress(std::ostream& os, const SimulatorReport& r, double elapsed_s, int64_t sim_now_us) {
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "simulate: %5.1fs acked %lld events in %lld batches (%.1f ev/s), failed %lld, retries %lld, "
                "dup %lld, malformed %lld, user time %s, http ",
                elapsed_s, static_cast<long long>(r.events_sent), static_cast<long long>(r.batches_sent),
                elapsed_s > 0 ? static_cast<double>(r.events_sent) / elapsed_s : 0.0,
                static_cast<long long>(r.batches_failed), static_cast<long long>(r.retries),
                static_cast<long long>(r.duplicates_sent), static_cast<long long>(r.malformed_sent),
                FormatIsoMillis(sim_now_us).c_str());
  os << buf << StatusSummary(r.status_counts) << std::endl;
}

// Seconds from a Retry-After header (delta-seconds form), or -1.
double RetryAfterSeconds(const httplib::Result& res) {
  if (!res || !res->has_header("Retry-After")) return -1;
  std::string v = res->get_header_value("Retry-After");
  char* end = nullptr;
  double s = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || s < 0) return -1;
  return std::min(s, 30.0);
}

// REQUIRES: called before the workers start (httplib::Client's constructor
// initializes a function-local static regex).
std::unique_ptr<httplib::Client> MakeClient(const SimulatorOptions& opt, const ParsedUrl& url) {
  auto client = std::make_unique<httplib::Client>(url.base);
  client->set_keep_alive(true);
  client->set_connection_timeout(5, 0);
  client->set_read_timeout(10, 0);
  client->set_write_timeout(30, 0);
  client->set_basic_auth(opt.write_key.c_str(), "");
  return client;
}

void Worker(int index, std::unique_ptr<httplib::Client> owned_client, const SimulatorOptions& opt, const ParsedUrl& url,
            BatchQueue* queue, SendState* state, std::chrono::steady_clock::time_point deadline) {
  httplib::Client& client = *owned_client;
  const std::string path = url.path_prefix + "/v1/batch";
  std::mt19937_64 jitter(opt.seed * 1000003 + static_cast<uint64_t>(index));
  httplib::Headers headers = {{"User-Agent", "clicklake-simulate/1.0"}};
  if (opt.gzip) headers.emplace("Content-Encoding", "gzip");

  while (std::optional<GeneratedBatch> batch = queue->Pop()) {
    if (!batch->after_batches.empty()) state->WaitDone(batch->after_batches, deadline);
    for (int attempt = 0;; ++attempt) {
      int64_t sent_at_us = SystemClock()->NowMicros();
      std::string body = batch->Body(sent_at_us);
      if (opt.gzip) {
        Result<std::string> z = Gzip(body);
        if (z.ok()) body = std::move(z).value();
      }
      httplib::Result res = client.Post(path.c_str(), headers, body, "application/json");
      int status = res ? res->status : 0;
      state->Attempt(status, attempt > 0);
      if (status == 200) {
        state->Acked(*batch, FormatIsoMillis(sent_at_us + batch->clock_offset_us));
        break;
      }
      bool retryable = status == 0 || status >= 500 || status == 429 || status == 408;
      auto now = std::chrono::steady_clock::now();
      if (!retryable || attempt >= opt.max_retries || now >= deadline) {
        state->Failed(*batch);
        break;
      }
      double delay_s = RetryAfterSeconds(res);
      if (delay_s < 0) {
        double backoff = std::min(0.1 * static_cast<double>(1 << std::min(attempt, 8)), 5.0);
        delay_s = backoff * (0.5 + static_cast<double>(jitter() >> 11) * 0x1.0p-53);
      }
      auto wake = now + std::chrono::microseconds(static_cast<int64_t>(delay_s * kSecond));
      std::this_thread::sleep_until(std::min(wake, deadline));
    }
  }
}

}  // namespace

int AutoConcurrency(double rate, int batch_size) {
  double n = std::ceil(rate * kAutoConcurrencyAckSeconds / std::max(1, batch_size));
  return static_cast<int>(std::clamp(n, 4.0, 256.0));
}

Result<SimulatorReport> RunSimulator(const SimulatorOptions& options, std::ostream& progress) {
  SimulatorOptions opt = options;
  if (opt.write_key.empty()) return Status::InvalidArgument("--write-key is required");
  if (opt.users < 1) return Status::InvalidArgument("--users must be at least 1");
  if (!(opt.rate > 0)) return Status::InvalidArgument("--rate must be positive");
  if (!(opt.duration_s >= 0)) return Status::InvalidArgument("--duration must be >= 0");
  if (opt.batch_size < 1 || opt.batch_size > 10000) return Status::InvalidArgument("--batch-size must be 1..10000");
  if (opt.concurrency < 0 || opt.concurrency > 256) {
    return Status::InvalidArgument("--concurrency must be 1..256 (0 = chosen from the rate)");
  }
  if (opt.concurrency == 0) opt.concurrency = AutoConcurrency(opt.rate, opt.batch_size);
  if (!(opt.time_scale >= 1)) return Status::InvalidArgument("--time-scale must be >= 1");
  ASSIGN_OR_RETURN(ParsedUrl url, ParseUrl(opt.url));

  std::ofstream out;
  if (!opt.out_path.empty()) {
    out.open(opt.out_path, std::ios::out | std::ios::trunc | std::ios::binary);
    if (!out) return Status::IOError("cannot open --out file " + opt.out_path + " for writing");
  }

  Clock* clock = SystemClock();
  const int64_t real_start_us = clock->NowMicros();
  double effective_scale = opt.time_scale;
  if (opt.start_time_us == 0) {
    // The simulated timeline must end before the real now: start it one planned
    // span (plus a margin for randomness) in the past.
    SimulatorOptions probe = opt;
    probe.start_time_us = real_start_us;
    probe.users = opt.users;
    effective_scale = TrafficGenerator(probe).EffectiveTimeScale();
    // The margin covers randomness and the ramp-up (sessions begin spread over
    // the first cycle, so early on user time runs faster than the average).
    double span_s = opt.duration_s * effective_scale * 1.15 + 1800;
    opt.start_time_us = real_start_us - static_cast<int64_t>(span_s * kSecond);
  }
  TrafficGenerator generator(opt);
  effective_scale = generator.EffectiveTimeScale();
  {
    char buf[320];
    std::snprintf(buf, sizeof(buf),
                  "simulate: %d users, %.0f events/s for %.0fs to %s (batch %d, %d connections%s); user time from %s, "
                  "%.0fx real time",
                  opt.users, opt.rate, opt.duration_s, url.base.c_str(), opt.batch_size, opt.concurrency,
                  opt.gzip ? ", gzip" : "", FormatIsoMillis(opt.start_time_us).c_str(), effective_scale);
    progress << buf << std::endl;
    if (effective_scale > opt.time_scale * 1.01) {
      progress << "simulate: note: too few users for this rate with sessions 30+ min apart; user time runs "
               << effective_scale << "x instead of " << opt.time_scale << "x (raise --users to slow it)" << std::endl;
    }
  }

  SendState state(out.is_open() ? &out : nullptr);
  BatchQueue queue(static_cast<size_t>(opt.concurrency) * 2);
  const auto t0 = std::chrono::steady_clock::now();
  const auto end = t0 + std::chrono::microseconds(static_cast<int64_t>(opt.duration_s * kSecond));
  const auto deadline = end + std::chrono::microseconds(static_cast<int64_t>(opt.drain_timeout_s * kSecond));
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(opt.concurrency));
  for (int i = 0; i < opt.concurrency; ++i) {
    workers.emplace_back(Worker, i, MakeClient(opt, url), std::cref(opt), std::cref(url), &queue, &state, deadline);
  }

  auto elapsed_s = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  auto next_progress = t0 + std::chrono::seconds(5);
  auto maybe_progress = [&] {
    if (std::chrono::steady_clock::now() >= next_progress) {
      PrintProgress(progress, state.Snapshot(), elapsed_s(), generator.SimulatedNowMicros());
      next_progress += std::chrono::seconds(5);
    }
  };
  // Sleeps until `when`, printing progress on the way; false if the run is over first.
  auto sleep_until = [&](std::chrono::steady_clock::time_point when) {
    while (std::chrono::steady_clock::now() < when) {
      if (std::chrono::steady_clock::now() >= end) return false;
      maybe_progress();
      auto step = std::min({when, end, std::chrono::steady_clock::now() + std::chrono::milliseconds(200)});
      std::this_thread::sleep_until(step);
    }
    return std::chrono::steady_clock::now() < end;
  };

  int64_t released_events = 0;
  while (std::chrono::steady_clock::now() < end) {
    GeneratedBatch batch = generator.NextBatch();
    auto due =
        t0 + std::chrono::microseconds(static_cast<int64_t>(static_cast<double>(released_events) / opt.rate * kSecond));
    if (!sleep_until(due)) break;
    // Never send an event from the future (possible only if the planned span was too short).
    int64_t latest = 0;
    for (const EventRecord& e : batch.events) latest = std::max(latest, e.true_time_us);
    int64_t ahead_us = latest - clock->NowMicros();
    if (ahead_us > 0 && !sleep_until(std::chrono::steady_clock::now() + std::chrono::microseconds(ahead_us))) {
      break;
    }
    released_events += static_cast<int64_t>(batch.events.size());
    queue.Push(std::move(batch));
    maybe_progress();
  }
  queue.Close();
  for (std::thread& t : workers) t.join();

  SimulatorReport report = state.Snapshot();
  report.elapsed_s = elapsed_s();
  PrintProgress(progress, report, report.elapsed_s, generator.SimulatedNowMicros());
  // Delivered below the target: say what limits it (each connection waits for
  // its answer, so connections × batch / ack latency bounds the rate).
  const double planned = opt.rate * opt.duration_s;
  if (opt.duration_s >= 2 && static_cast<double>(report.events_sent) < 0.95 * planned) {
    char buf[320];
    std::snprintf(buf, sizeof(buf),
                  "simulate: note: delivered %.0f of the %.0f events/s asked for; with %d connections of %d-event "
                  "batches the collector took about %.0f ms per answer: raise --concurrency or --batch-size",
                  static_cast<double>(report.events_sent) / opt.duration_s, opt.rate, opt.concurrency, opt.batch_size,
                  report.batches_sent > 0 ? 1000.0 * opt.duration_s * opt.concurrency /
                                                static_cast<double>(report.batches_sent + report.retries)
                                          : 0.0);
    progress << buf << std::endl;
  }
  return report;
}

}  // namespace clicklake::simulate

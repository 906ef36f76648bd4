// Test helpers of src/activate: a fake destination API (cpp-httplib on
// 127.0.0.1) that records every request and injects faults, and a clock that
// records sleeps instead of sleeping. Test code only.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"

namespace clicklake::activate::testing {

// Real time, but sleeps are recorded and skipped (they still advance the
// monotonic clock, so token buckets refill as if time had passed).
class RecordingClock final : public Clock {
 public:
  int64_t NowMicros() override { return SystemClock()->NowMicros(); }
  int64_t MonotonicMicros() override { return SystemClock()->MonotonicMicros() + slept_.load(); }
  void SleepForMicros(int64_t micros) override {
    slept_ += micros;
    std::lock_guard l(mu_);
    sleeps_.push_back(micros);
  }
  int64_t slept() const { return slept_.load(); }
  std::vector<int64_t> sleeps() {
    std::lock_guard l(mu_);
    return sleeps_;
  }

 private:
  std::atomic<int64_t> slept_{0};
  std::mutex mu_;
  std::vector<int64_t> sleeps_;
};

struct Request {
  std::string method, path, body;
  httplib::Headers headers;
  std::string Header(const std::string& k) const {
    auto it = headers.find(k);
    return it == headers.end() ? "" : it->second;
  }
};

// A destination API: records every request; `handler` answers (default 200 {}).
// Scripted faults (status + headers, or a delay) answer the next requests first.
class FakeServer {
 public:
  struct Fault {
    int status = 0;  // 0: no status fault
    std::string retry_after;
    int delay_ms = 0;  // sleep before answering normally (a timeout for the client)
  };
  FakeServer() {
    auto handle = [this](const httplib::Request& req, httplib::Response& res) {
      Request r{req.method, req.path, req.body, req.headers};
      Fault fault;
      {
        std::lock_guard l(mu_);
        all_.push_back(r);
        if (!faults_.empty()) {
          fault = faults_.front();
          faults_.pop_front();
        }
      }
      if (fault.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(fault.delay_ms));
      if (fault.status != 0) {
        res.status = fault.status;
        if (!fault.retry_after.empty()) res.set_header("Retry-After", fault.retry_after);
        res.set_content("{\"error\":\"injected\"}", "application/json");
        return;
      }
      {
        std::lock_guard l(mu_);
        accepted_.push_back(r);
      }
      res.status = 200;
      std::string body = "{}";
      if (handler) handler(r, &res.status, &body);
      res.set_content(body, "application/json");
    };
    server_.Post(".*", handle);
    server_.Delete(".*", handle);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void AddFault(Fault f) {
    std::lock_guard l(mu_);
    faults_.push_back(f);
  }
  // Every request received / those answered by the handler (not by a fault).
  std::vector<Request> all() {
    std::lock_guard l(mu_);
    return all_;
  }
  std::vector<Request> accepted() {
    std::lock_guard l(mu_);
    return accepted_;
  }
  void Clear() {
    std::lock_guard l(mu_);
    all_.clear();
    accepted_.clear();
  }
  std::function<void(const Request&, int* status, std::string* body)> handler;

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::deque<Fault> faults_;
  std::vector<Request> all_, accepted_;
};

inline simdjson::dom::element Parse(simdjson::dom::parser& p, const std::string& body) {
  simdjson::dom::element doc;
  EXPECT_FALSE(p.parse(body).get(doc)) << "not JSON: " << body;
  return doc;
}

// A string member, or "" when absent or not a string.
template <typename E>
std::string Str(E&& e) {
  std::string_view v;
  if (e.get(v)) return "";
  return std::string(v);
}

}  // namespace clicklake::activate::testing

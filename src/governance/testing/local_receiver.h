// Test helper: a real HTTP server on 127.0.0.1 that records every POST (path,
// Content-Type, body) and answers the first `fail_first` of them with 500 —
// the receiving end for lineage (Marquez-like) and alert (webhook, Slack,
// PagerDuty) delivery tests. Stopped by its destructor.
#pragma once

#include <httplib.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace clicklake::governance::testing {

class LocalReceiver {
 public:
  struct Post {
    std::string path, content_type, body;
  };

  explicit LocalReceiver(int fail_first = 0) : fail_first_(fail_first) {
    server_.Post(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard l(mu_);
      ++requests_;
      if (fail_first_ > 0) {
        --fail_first_;
        res.status = 500;
        return;
      }
      posts_.push_back({req.path, req.get_header_value("Content-Type"), req.body});
      res.status = 202;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~LocalReceiver() { Stop(); }

  void Stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string url(const std::string& path = "") const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  // Accepted POSTs (not the ones answered 500).
  std::vector<Post> posts() {
    std::lock_guard l(mu_);
    return posts_;
  }
  std::vector<std::string> bodies() {
    std::vector<std::string> out;
    for (const auto& p : posts()) out.push_back(p.body);
    return out;
  }
  // Every request, the failed ones included.
  int requests() {
    std::lock_guard l(mu_);
    return requests_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  int fail_first_;  // GUARDED_BY(mu_)
  int requests_ = 0;  // GUARDED_BY(mu_)
  std::vector<Post> posts_;  // GUARDED_BY(mu_)
};

}  // namespace clicklake::governance::testing

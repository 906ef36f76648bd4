// The API server behind `--api-port`: one HTTP(S) listener, loopback by default,
// that other components extend with routes (status page, readiness, the query
// API, regulations). Built on cpp-httplib: this endpoint serves people and
// scripts, not event traffic, so throughput is not at stake.
//
//   auto server = serve::ApiServer::Create(serve::ApiServerOptions::FromConfig(config));
//   (*server)->Get("/api/v1/readiness", [](const serve::Request& req, serve::Response& res) {...});
//   RETURN_IF_ERROR((*server)->Start());   // binds; port() is known from here on
//   ...
//   (*server)->Stop();
//
// Built-in routes: GET /healthz (200 "ok") and GET /metrics (the process's
// Prometheus registry). Errors a handler reports go out as JSON:
// {"error": {"code": "...", "message": "..."}} with a stable code (SendError).
#pragma once

#include <httplib.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/config.h"
#include "common/status.h"

namespace clicklake::serve {

using Request = httplib::Request;
using Response = httplib::Response;
using Handler = std::function<void(const Request&, Response&)>;

struct ApiServerOptions {
  std::string host = "127.0.0.1";  // api.host: loopback unless configured otherwise
  int port = -1;                   // api.port / --api-port: -1 = no API server, 0 = any free port
  std::string tls_cert;            // api.tls_cert (PEM chain); with tls_key, the server speaks HTTPS only
  std::string tls_key;             // api.tls_key
  int threads = 8;                 // api.threads: concurrent requests

  static ApiServerOptions FromConfig(const Config& config);
  bool enabled() const { return port >= 0; }
};

class ApiServer {
 public:
  static Result<std::unique_ptr<ApiServer>> Create(const ApiServerOptions& options);
  ~ApiServer();  // stops

  // Routes are registered before Start(). `pattern` is an exact path or a
  // regular expression (cpp-httplib's matching).
  void Get(const std::string& pattern, Handler handler);
  void Post(const std::string& pattern, Handler handler);

  Status Start();  // binds and starts serving on a background thread
  void Stop();     // idempotent; returns once in-flight requests are done
  int port() const { return port_; }
  bool tls() const { return !options_.tls_cert.empty(); }

 private:
  explicit ApiServer(const ApiServerOptions& options, std::unique_ptr<httplib::Server> server);

  ApiServerOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = -1;
};

// Writes {"error": {"code": code, "message": message}} with `http_status`.
// `code` is a stable machine-readable name (e.g. "unauthorized", "bad_request").
void SendError(Response& res, int http_status, const std::string& code, const std::string& message);

// Writes `body` as application/json with status 200.
void SendJson(Response& res, const std::string& body);

// The bearer token of an `Authorization: Bearer <token>` header, or "" when absent.
std::string BearerToken(const Request& req);

}  // namespace clicklake::serve

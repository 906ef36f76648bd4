#include "serve/api_server.h"

#include <filesystem>

#include "common/json_string.h"
#include "common/logging.h"
#include "common/metrics.h"

namespace clicklake::serve {

ApiServerOptions ApiServerOptions::FromConfig(const Config& config) {
  ApiServerOptions o;
  o.host = config.GetString("api.host", o.host);
  o.port = static_cast<int>(config.GetInt("api.port", o.port));
  o.tls_cert = config.GetString("api.tls_cert", "");
  o.tls_key = config.GetString("api.tls_key", "");
  o.threads = static_cast<int>(config.GetInt("api.threads", o.threads));
  return o;
}

Result<std::unique_ptr<ApiServer>> ApiServer::Create(const ApiServerOptions& options) {
  if (options.tls_cert.empty() != options.tls_key.empty())
    return Status::InvalidArgument("api.tls_cert and api.tls_key go together: set both or neither");
  if (options.threads < 1) return Status::InvalidArgument("api.threads must be at least 1");
  std::unique_ptr<httplib::Server> server;
  if (!options.tls_cert.empty()) {
    for (const auto& file : {options.tls_cert, options.tls_key}) {
      if (!std::filesystem::exists(file)) return Status::NotFound("api TLS file " + file + " does not exist");
    }
    auto ssl = std::make_unique<httplib::SSLServer>(options.tls_cert.c_str(), options.tls_key.c_str());
    if (!ssl->is_valid()) return Status::InvalidArgument("api TLS: cannot load " + options.tls_cert + " / " + options.tls_key);
    server = std::move(ssl);
  } else {
    server = std::make_unique<httplib::Server>();
  }
  return std::unique_ptr<ApiServer>(new ApiServer(options, std::move(server)));
}

ApiServer::ApiServer(const ApiServerOptions& options, std::unique_ptr<httplib::Server> server)
    : options_(options), server_(std::move(server)) {
  int threads = options_.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_payload_max_length(16 << 20);
  server_->Get("/healthz", [](const Request&, Response& res) { res.set_content("ok\n", "text/plain"); });
  server_->Get("/metrics", [](const Request&, Response& res) {
    res.set_content(MetricsRegistry::Global()->RenderPrometheus(), "text/plain; version=0.0.4");
  });
  server_->set_exception_handler([](const Request& req, Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("api: {} {}: {}", req.method, req.path, what);
    SendError(res, 500, "internal", what);
  });
}

ApiServer::~ApiServer() { Stop(); }

void ApiServer::Get(const std::string& pattern, Handler handler) { server_->Get(pattern, std::move(handler)); }
void ApiServer::Post(const std::string& pattern, Handler handler) { server_->Post(pattern, std::move(handler)); }

Status ApiServer::Start() {
  if (thread_.joinable()) return Status::InvalidArgument("api server already started");
  int port = options_.port == 0 ? server_->bind_to_any_port(options_.host)
                                : (server_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port < 0)
    return Status::IOError("api server: cannot listen on " + options_.host + ":" + std::to_string(options_.port));
  port_ = port;
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  spdlog::info("api server listening on {}://{}:{}", tls() ? "https" : "http", options_.host, port_);
  return Status::OK();
}

void ApiServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

void SendError(Response& res, int http_status, const std::string& code, const std::string& message) {
  res.status = http_status;
  res.set_content("{\"error\":{\"code\":" + JsonString(code) + ",\"message\":" + JsonString(message) + "}}\n",
                  "application/json");
}

void SendJson(Response& res, const std::string& body) {
  res.status = 200;
  res.set_content(body, "application/json");
}

std::string BearerToken(const Request& req) {
  const std::string& auth = req.get_header_value("Authorization");
  static constexpr std::string_view kPrefix = "Bearer ";
  if (auth.size() <= kPrefix.size() || auth.compare(0, kPrefix.size(), kPrefix) != 0) return "";
  return auth.substr(kPrefix.size());
}

}  // namespace clicklake::serve

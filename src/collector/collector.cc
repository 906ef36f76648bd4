// The collector's HTTP server: Boost.Beast over Asio, optionally TLS.
//
// One acceptor and `threads` I/O threads, each running its own io_context
// (single-threaded: no strands, no cross-thread scheduler locking); accepted
// connections are spread round-robin over them. A connection reads a request header (idle timeout), then its body
// (read timeout), hands the request to the RequestHandler and reads the next one
// only after the response is written (HTTP/1.1 keep-alive, no pipelining
// concurrency). Replies produced on log threads are posted back to the
// connection's io_context.
#include "collector/collector.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <optional>
#include <thread>
#include <type_traits>

#include "collector/json_util.h"
#include "collector/request_handler.h"
#include "common/logging.h"

namespace clicklake::collector {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

namespace {

constexpr size_t kHeaderLimit = 16 * 1024;
// Initial read buffer per connection: a typical batch arrives in one or two reads.
constexpr size_t kReadBufferBytes = 64 * 1024;
constexpr auto kWriteTimeout = std::chrono::seconds(30);

std::string PeerIp(const tcp::socket& socket) {
  boost::system::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return "";
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    return net::ip::make_address_v4(net::ip::v4_mapped, addr.to_v6()).to_string();
  }
  return addr.to_string();
}

}  // namespace

class Collector::Impl {
 public:
  Impl(CollectorOptions options, ProxyList proxies, log::EventLog* log, Clock* clock)
      : options_(options), handler_(std::move(options), std::move(proxies), log, clock) {}

  ~Impl() { Stop().IgnoreError(); }

  Status Start();
  Status Stop();
  int port() const { return port_.load(); }
  RequestHandler& handler() { return handler_; }
  const CollectorOptions& options() const { return options_; }

  // Requests read but not yet answered on the wire.
  void RequestStarted() { inflight_.fetch_add(1); }
  void RequestDone() {
    if (inflight_.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(drain_mu_);
      drain_cv_.notify_all();
    }
  }
  bool stopping() const { return stopping_.load(); }

 private:
  Status Bind();  // TLS context, io_context, acceptor
  void DoAccept();
  void OnAccept(beast::error_code ec, tcp::socket socket);

  const CollectorOptions options_;
  RequestHandler handler_;
  std::vector<std::unique_ptr<net::io_context>> iocs_;  // one per I/O thread
  std::optional<ssl::context> ssl_ctx_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  // Keeps run() going while requests only wait for log callbacks (no socket op pending).
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work_;
  size_t next_ioc_ = 0;  // round-robin; touched only by the acceptor's thread
  std::vector<std::thread> threads_;
  std::atomic<int> port_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> inflight_{0};
  std::mutex drain_mu_;
  std::condition_variable drain_cv_;
  bool started_ = false;  // only the controlling thread touches these
  bool stopped_ = false;
};

namespace {

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  template <class... Args>
  Session(Collector::Impl* impl, std::string peer_ip, Args&&... args)
      : impl_(impl), peer_ip_(std::move(peer_ip)), stream_(std::forward<Args>(args)...) {}

  void Run() {
    // Start on the connection's io_context thread.
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->Begin(); });
  }

 private:
  auto& Lowest() { return beast::get_lowest_layer(stream_); }

  void Begin() {
    buffer_.reserve(kReadBufferBytes);
    if constexpr (kTls) {
      Lowest().expires_after(std::chrono::microseconds(impl_->options().read_timeout_us));
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->Close();
        self->ReadHeader();
      });
    } else {
      ReadHeader();
    }
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(impl_->options().max_request_bytes);
    Lowest().expires_after(
        std::chrono::microseconds(first_ ? impl_->options().read_timeout_us : impl_->options().idle_timeout_us));
    first_ = false;
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    Lowest().expires_after(std::chrono::microseconds(impl_->options().read_timeout_us));
    auto& req = parser_->get();
    auto expect = req.find(http::field::expect);
    if (expect != req.end() && beast::iequals(expect->value(), "100-continue")) {
      if (parser_->content_length() && *parser_->content_length() > impl_->options().max_request_bytes) {
        return ReplyTooLarge();
      }
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue),
                       [self = this->shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->Close();
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::body_limit) return ReplyTooLarge();
    if (ec == http::error::header_limit) return ReplyAndClose(431, "request header too large");
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == net::error::eof || ec == ssl::error::stream_truncated) {
      return Close();
    }
    if (std::string_view(ec.category().name()) == "beast.http") {
      return ReplyAndClose(400, "malformed HTTP request: " + ec.message());
    }
    Close();
  }

  void ReplyTooLarge() {
    ReplyAndClose(413, "request body exceeds the limit of " + std::to_string(impl_->options().max_request_bytes) +
                           " bytes per request (collector.max_request_bytes)");
  }

  void ReplyAndClose(int status, const std::string& message) {
    HttpReply r;
    r.status = status;
    r.body = "{\"success\":false,\"error\":";
    AppendJsonString(message, &r.body);
    r.body += "}";
    keep_alive_ = false;
    version_ = 11;
    impl_->RequestStarted();
    Write(std::move(r));
  }

  void OnRead(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    http::request<http::string_body> req = parser_->release();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.content_type = Field(req, http::field::content_type);
    r.content_encoding = Field(req, http::field::content_encoding);
    r.authorization = Field(req, http::field::authorization);
    r.origin = Field(req, http::field::origin);
    r.user_agent = Field(req, http::field::user_agent);
    r.forwarded_for = Field(req, "X-Forwarded-For");
    r.access_control_request_headers = Field(req, http::field::access_control_request_headers);
    r.body = std::move(req.body());
    r.peer_ip = peer_ip_;
    // No timer while the log works on the request: the client waits for its ack.
    Lowest().expires_never();
    impl_->RequestStarted();
    // dispatch: a reply produced synchronously (on this I/O thread) is written at
    // once; one from a log thread is queued to the connection's io_context.
    impl_->handler().Handle(std::move(r), [self = this->shared_from_this()](HttpReply reply) {
      net::dispatch(self->stream_.get_executor(),
                    [self, reply = std::move(reply)]() mutable { self->Write(std::move(reply)); });
    });
  }

  static std::string Field(const http::request<http::string_body>& req, http::field f) {
    auto it = req.find(f);
    return it == req.end() ? std::string() : std::string(it->value());
  }
  static std::string Field(const http::request<http::string_body>& req, const char* name) {
    auto it = req.find(name);
    return it == req.end() ? std::string() : std::string(it->value());
  }

  void Write(HttpReply reply) {
    if (impl_->stopping()) keep_alive_ = false;
    res_.emplace();
    res_->version(version_);
    res_->result(static_cast<http::status>(reply.status));
    res_->set(http::field::server, "clicklake");
    if (!reply.content_type.empty()) res_->set(http::field::content_type, reply.content_type);
    for (auto& [k, v] : reply.headers) res_->insert(k, v);
    res_->body() = std::move(reply.body);
    res_->keep_alive(keep_alive_);
    res_->prepare_payload();
    Lowest().expires_after(kWriteTimeout);
    http::async_write(stream_, *res_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      self->impl_->RequestDone();
      if (ec) return self->Close();
      if (!self->keep_alive_) return self->Shutdown();
      self->res_.reset();
      self->ReadHeader();
    });
  }

  void Shutdown() {
    if constexpr (kTls) {
      Lowest().expires_after(std::chrono::seconds(5));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->Close(); });
    } else {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
  }

  void Close() {
    beast::error_code ec;
    Lowest().socket().close(ec);
  }

  Collector::Impl* const impl_;
  const std::string peer_ip_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  bool first_ = true;
};

}  // namespace

Status Collector::Impl::Start() {
  if (started_) return Status::InvalidArgument("the collector was already started");
  Status s = Bind();
  if (!s.ok()) {
    acceptor_.reset();
    iocs_.clear();
    ssl_ctx_.reset();
    return s;
  }
  started_ = true;
  for (auto& ioc : iocs_) work_.push_back(net::make_work_guard(*ioc));
  DoAccept();
  for (int i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([ioc = iocs_[i].get()] { ioc->run(); });
  }
  spdlog::info("collector listening on {}:{}{}", options_.host, port_.load(), ssl_ctx_ ? " (TLS)" : "");
  return Status::OK();
}

Status Collector::Impl::Bind() {
  if (!options_.tls_cert.empty()) {
    try {
      ssl_ctx_.emplace(ssl::context::tls_server);
      ssl_ctx_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                            ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      ssl_ctx_->use_certificate_chain_file(options_.tls_cert);
      ssl_ctx_->use_private_key_file(options_.tls_key, ssl::context::pem);
    } catch (const boost::system::system_error& e) {
      return Status::InvalidArgument("collector TLS: cannot load collector.tls_cert/tls_key (" + options_.tls_cert +
                                     ", " + options_.tls_key + "): " + e.what());
    }
  }
  for (int i = 0; i < options_.threads; ++i) iocs_.push_back(std::make_unique<net::io_context>(1));
  boost::system::error_code ec;
  auto address = net::ip::make_address(options_.host, ec);
  if (ec) return Status::InvalidArgument("collector.host \"" + options_.host + "\" is not an IP address");
  tcp::endpoint endpoint(address, static_cast<unsigned short>(options_.port));
  acceptor_ = std::make_unique<tcp::acceptor>(*iocs_[0]);
  std::string where = options_.host + ":" + std::to_string(options_.port);
  if (acceptor_->open(endpoint.protocol(), ec)) return Status::IOError("collector: open socket: " + ec.message());
  acceptor_->set_option(net::socket_base::reuse_address(true), ec);
  if (acceptor_->bind(endpoint, ec)) return Status::IOError("collector: bind " + where + ": " + ec.message());
  if (acceptor_->listen(net::socket_base::max_listen_connections, ec)) {
    return Status::IOError("collector: listen on " + where + ": " + ec.message());
  }
  port_.store(acceptor_->local_endpoint().port());
  return Status::OK();
}

void Collector::Impl::DoAccept() {
  net::io_context& target = *iocs_[next_ioc_++ % iocs_.size()];
  acceptor_->async_accept(target,
                          [this](beast::error_code ec, tcp::socket socket) { OnAccept(ec, std::move(socket)); });
}

void Collector::Impl::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || stopping_.load()) return;
  if (!ec) {
    socket.set_option(tcp::no_delay(true), ec);
    std::string peer = PeerIp(socket);
    if (ssl_ctx_) {
      std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(this, std::move(peer), std::move(socket),
                                                                      *ssl_ctx_)
          ->Run();
    } else {
      std::make_shared<Session<beast::tcp_stream>>(this, std::move(peer), std::move(socket))->Run();
    }
  }
  DoAccept();
}

Status Collector::Impl::Stop() {
  if (!started_ || stopped_) return Status::OK();
  stopped_ = true;
  stopping_.store(true);
  handler_.SetStopping();
  // Stop accepting (on an I/O thread: the acceptor is not thread-safe).
  if (acceptor_) {
    std::promise<void> closed;
    net::post(acceptor_->get_executor(), [this, &closed] {
      beast::error_code ec;
      acceptor_->close(ec);
      closed.set_value();
    });
    if (!threads_.empty()) closed.get_future().wait();
  }
  // Drain: every request already read gets its log ack and its response written.
  {
    std::unique_lock<std::mutex> lock(drain_mu_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (inflight_.load() > 0 || handler_.pending() > 0) {
      if (drain_cv_.wait_for(lock, std::chrono::milliseconds(20)) == std::cv_status::timeout &&
          std::chrono::steady_clock::now() > deadline && handler_.pending() == 0) {
        break;  // only responses stuck on slow clients remain
      }
    }
  }
  work_.clear();
  for (auto& ioc : iocs_) ioc->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  acceptor_.reset();
  iocs_.clear();  // destroys the remaining connections
  spdlog::info("collector stopped");
  return Status::OK();
}

Collector::Collector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Collector::~Collector() = default;

Result<std::unique_ptr<Collector>> Collector::Create(const Config& config, log::EventLog* log, Clock* clock) {
  ASSIGN_OR_RETURN(CollectorOptions options, CollectorOptions::FromConfig(config));
  return Create(std::move(options), log, clock);
}

Result<std::unique_ptr<Collector>> Collector::Create(CollectorOptions options, log::EventLog* log, Clock* clock) {
  if (log == nullptr) return Status::InvalidArgument("the collector needs an event log");
  if (clock == nullptr) clock = SystemClock();
  ASSIGN_OR_RETURN(ProxyList proxies, ProxyList::Parse(options.trusted_proxies));
  return std::unique_ptr<Collector>(
      new Collector(std::make_unique<Impl>(std::move(options), std::move(proxies), log, clock)));
}

Status Collector::Start() { return impl_->Start(); }
int Collector::port() const { return impl_->port(); }
void Collector::AddWriteKey(const std::string& key, const std::string& source) {
  impl_->handler().AddWriteKey(key, source);
}
void Collector::RevokeWriteKey(const std::string& key) { impl_->handler().RevokeWriteKey(key); }
Status Collector::Stop() { return impl_->Stop(); }

}  // namespace clicklake::collector

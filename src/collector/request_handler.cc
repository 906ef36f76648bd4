#include "collector/request_handler.h"

#include <arpa/inet.h>

#include <chrono>
#include <cstring>

#include "collector/gzip.h"
#include "collector/json_util.h"
#include "collector/native_parser.h"
#include "collector/segment_parser.h"
#include "collector/snowplow_parser.h"
#include "common/raw_event.h"

namespace clicklake::collector {

struct RequestHandler::Route {
  std::string name;  // metrics label
  Protocol protocol;
  std::optional<SegmentCall> segment_call;
  bool pixel = false;  // GET /i
};

namespace {

// A 1×1 transparent GIF, the answer to GET /i.
constexpr unsigned char kPixel[] = {0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80,
                                    0x00, 0x00, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x21, 0xf9, 0x04,
                                    0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01,
                                    0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b};

int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

HttpReply JsonError(int status, std::string_view message) {
  HttpReply r;
  r.status = status;
  r.body = "{\"success\":false,\"error\":";
  AppendJsonString(message, &r.body);
  r.body += "}";
  return r;
}

HttpReply ErrorFromStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kResourceExhausted:
      return JsonError(413, s.message());
    case StatusCode::kInvalidArgument:
      return JsonError(400, s.message());
    case StatusCode::kUnsupported:
      return JsonError(415, s.message());
    default:
      return JsonError(500, s.message());
  }
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool Base64Decode(std::string_view in, std::string* out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    int v = value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

// The write key from "Authorization: Basic base64(key:)"; empty if none.
std::string WriteKeyFromAuthorization(std::string_view header) {
  header = Trim(header);
  if (header.size() < 6 || Lower(header.substr(0, 6)) != "basic ") return "";
  std::string decoded;
  if (!Base64Decode(Trim(header.substr(6)), &decoded)) return "";
  size_t colon = decoded.find(':');
  return colon == std::string::npos ? decoded : decoded.substr(0, colon);
}

// JSON bodies: application/json, text/plain (analytics.js beacons avoid preflight
// with it), application/*+json, or no Content-Type at all.
bool AcceptableContentType(std::string_view content_type) {
  std::string ct = Lower(Trim(content_type.substr(0, content_type.find(';'))));
  return ct.empty() || ct == "application/json" || ct == "text/plain" ||
         (ct.rfind("application/", 0) == 0 && ct.size() > 5 && ct.compare(ct.size() - 5, 5, "+json") == 0);
}

std::string_view ProtocolName(int p) {
  switch (p) {
    case 0:
      return "segment";
    case 1:
      return "snowplow";
    default:
      return "native";
  }
}

}  // namespace

Result<ProxyList> ProxyList::Parse(const std::vector<std::string>& entries) {
  ProxyList list;
  for (const std::string& entry : entries) {
    Net net;
    std::string addr = entry;
    size_t slash = entry.find('/');
    if (slash != std::string::npos) addr = entry.substr(0, slash);
    if (inet_pton(AF_INET, addr.c_str(), net.addr) == 1) {
      net.family = AF_INET;
      net.prefix = 32;
    } else if (inet_pton(AF_INET6, addr.c_str(), net.addr) == 1) {
      net.family = AF_INET6;
      net.prefix = 128;
    } else {
      return Status::InvalidArgument("collector.trusted_proxies: \"" + entry + "\" is not an IP address or CIDR");
    }
    if (slash != std::string::npos) {
      char* end = nullptr;
      long p = std::strtol(entry.c_str() + slash + 1, &end, 10);
      if (*end != '\0' || p < 0 || p > net.prefix) {
        return Status::InvalidArgument("collector.trusted_proxies: bad prefix length in \"" + entry + "\"");
      }
      net.prefix = static_cast<int>(p);
    }
    list.nets_.push_back(net);
  }
  return list;
}

bool ProxyList::Contains(const std::string& ip_text) const {
  if (nets_.empty()) return false;
  unsigned char addr[16] = {};
  int family;
  std::string ip = std::string(Trim(ip_text));
  if (inet_pton(AF_INET, ip.c_str(), addr) == 1) {
    family = AF_INET;
  } else if (inet_pton(AF_INET6, ip.c_str(), addr) == 1) {
    family = AF_INET6;
  } else {
    return false;
  }
  for (const Net& net : nets_) {
    if (net.family != family) continue;
    int full = net.prefix / 8, rest = net.prefix % 8;
    if (std::memcmp(addr, net.addr, full) != 0) continue;
    if (rest != 0) {
      unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
      if ((addr[full] & mask) != (net.addr[full] & mask)) continue;
    }
    return true;
  }
  return false;
}

std::string ClientIp(const std::string& peer_ip, const std::string& forwarded_for, const ProxyList& proxies) {
  if (forwarded_for.empty() || !proxies.Contains(peer_ip)) return peer_ip;
  std::string_view rest = forwarded_for;
  while (!rest.empty()) {
    size_t comma = rest.rfind(',');
    std::string_view hop = Trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    if (hop.empty()) continue;
    std::string h(hop);
    if (!proxies.Contains(h)) return h;
  }
  return peer_ip;
}

RequestHandler::RequestHandler(CollectorOptions options, ProxyList proxies, log::EventLog* log, Clock* clock)
    : options_(std::move(options)),
      proxies_(std::move(proxies)),
      limits_{options_.max_event_bytes, options_.max_request_bytes},
      log_(log),
      clock_(clock),
      admission_(AdmissionOptions{options_.queue_max_events, options_.queue_max_bytes, options_.queue_high_water,
                                  options_.low_priority_events}),
      metrics_(MetricsRegistry::Global()) {
  for (const auto& [k, v] : options_.write_keys) write_keys_[k] = v;
  const std::string shed_help = "Events the collector refused or dropped under load, by reason";
  bytes_received_ = metrics_->GetCounter("clicklake_collector_request_bytes_total", "Request body bytes received");
  shed_low_priority_ =
      metrics_->GetCounter("clicklake_collector_shed_events_total", shed_help, {{"reason", "low_priority"}});
  shed_queue_full_ =
      metrics_->GetCounter("clicklake_collector_shed_events_total", shed_help, {{"reason", "queue_full"}});
  failed_log_unavailable_ =
      metrics_->GetCounter("clicklake_collector_shed_events_total", shed_help, {{"reason", "log_unavailable"}});
  failed_log_error_ =
      metrics_->GetCounter("clicklake_collector_shed_events_total", shed_help, {{"reason", "log_error"}});
  const std::string err_help = "Collector responses with an error status, by class";
  errors_4xx_ = metrics_->GetCounter("clicklake_collector_errors_total", err_help, {{"class", "4xx"}});
  errors_5xx_ = metrics_->GetCounter("clicklake_collector_errors_total", err_help, {{"class", "5xx"}});
  queue_events_ = metrics_->GetGauge("clicklake_collector_queue_events", "Events waiting for the log's ack");
  queue_bytes_ = metrics_->GetGauge("clicklake_collector_queue_bytes", "Bytes of events waiting for the log's ack");
}

void RequestHandler::AddWriteKey(const std::string& key, const std::string& source) {
  std::unique_lock<std::shared_mutex> lock(keys_mu_);
  write_keys_[key] = source;
}

void RequestHandler::RevokeWriteKey(const std::string& key) {
  std::unique_lock<std::shared_mutex> lock(keys_mu_);
  write_keys_.erase(key);
}

bool RequestHandler::LookupWriteKey(const std::string& key, std::string* source) const {
  if (key.empty()) return false;
  std::shared_lock<std::shared_mutex> lock(keys_mu_);
  auto it = write_keys_.find(key);
  if (it == write_keys_.end()) return false;
  *source = it->second;
  return true;
}

std::string RequestHandler::SnowplowSource(const std::string& app_id, bool* ok) const {
  *ok = true;
  auto it = options_.snowplow_app_ids.find(app_id);
  if (it != options_.snowplow_app_ids.end()) return it->second;
  if (options_.snowplow_default_source.empty()) *ok = false;
  return options_.snowplow_default_source;
}

Counter* RequestHandler::RequestCounter(const std::string& route, int code) {
  std::lock_guard<std::mutex> lock(metrics_mu_);
  auto& c = request_counters_[{route, code}];
  if (c == nullptr) {
    c = metrics_->GetCounter("clicklake_collector_requests_total", "Collector HTTP requests by route and status",
                             {{"route", route}, {"code", std::to_string(code)}});
  }
  return c;
}

Counter* RequestHandler::EventCounter(const std::string& source, std::string_view protocol) {
  std::lock_guard<std::mutex> lock(metrics_mu_);
  auto& c = event_counters_[{source, std::string(protocol)}];
  if (c == nullptr) {
    c = metrics_->GetCounter("clicklake_collector_events_total", "Events stored in the log, by source and protocol",
                             {{"source", source}, {"protocol", std::string(protocol)}});
  }
  return c;
}

HttpReply RequestHandler::Overloaded(const std::string& why) const {
  HttpReply r = JsonError(503, why);
  r.headers.emplace_back("Retry-After", std::to_string(options_.retry_after_s));
  return r;
}

bool RequestHandler::Ready(std::string* why) const {
  if (stopping_.load()) {
    *why = "stopping";
    return false;
  }
  int64_t failed = log_failed_at_us_.load();
  if (failed >= 0 && SteadyMicros() - failed < 5'000'000) {
    *why = "the event log refused the last append";
    return false;
  }
  if (admission_.Full()) {
    *why = "the queue to the event log is full";
    return false;
  }
  return true;
}

void RequestHandler::Finish(const std::string& route, int64_t start_us, ReplyFn& reply, HttpReply r) {
  RequestCounter(route, r.status)->Increment();
  if (r.status >= 500)
    errors_5xx_->Increment();
  else if (r.status >= 400)
    errors_4xx_->Increment();
  Histogram* h;
  {
    std::lock_guard<std::mutex> lock(metrics_mu_);
    auto& slot = latency_[route];
    if (slot == nullptr) {
      slot = metrics_->GetHistogram("clicklake_collector_request_duration_seconds",
                                    "Time from a complete request to its response", {{"route", route}});
    }
    h = slot;
  }
  h->Observe(static_cast<double>(SteadyMicros() - start_us) / 1e6);
  reply(std::move(r));
}

void RequestHandler::Handle(HttpRequest request, ReplyFn reply) {
  int64_t start_us = SteadyMicros();
  pending_.fetch_add(1);
  // Wraps the reply: metrics, CORS, the pending count.
  std::string path = request.target.substr(0, request.target.find('?'));
  std::string origin = request.origin;
  std::string acrh = request.access_control_request_headers;
  auto finish = [this, start_us, origin](std::string route, ReplyFn reply, HttpReply r) {
    if (!origin.empty()) {
      r.headers.emplace_back("Access-Control-Allow-Origin", origin);
      r.headers.emplace_back("Access-Control-Allow-Credentials", "true");
      r.headers.emplace_back("Vary", "Origin");
    } else {
      r.headers.emplace_back("Access-Control-Allow-Origin", "*");
    }
    Finish(route, start_us, reply, std::move(r));
    pending_.fetch_sub(1);
  };

  if (request.method == "OPTIONS") {
    HttpReply r;
    r.status = 204;
    r.content_type.clear();
    r.headers.emplace_back("Access-Control-Allow-Methods", "POST, GET, OPTIONS");
    r.headers.emplace_back("Access-Control-Allow-Headers",
                           acrh.empty() ? "Content-Type, Authorization, Content-Encoding" : acrh);
    r.headers.emplace_back("Access-Control-Max-Age", "86400");
    finish("preflight", std::move(reply), std::move(r));
    return;
  }
  if (path == "/health") {
    HttpReply r;
    r.body = "{\"status\":\"ok\"}";
    finish("/health", std::move(reply), std::move(r));
    return;
  }
  if (path == "/ready") {
    std::string why;
    HttpReply r;
    if (Ready(&why)) {
      r.body = "{\"ready\":true}";
    } else {
      r = JsonError(503, why);
      r.body = "{\"ready\":false,\"reason\":";
      AppendJsonString(why, &r.body);
      r.body += "}";
    }
    finish("/ready", std::move(reply), std::move(r));
    return;
  }
  if (path == "/metrics") {
    queue_events_->Set(static_cast<double>(admission_.events()));
    queue_bytes_->Set(static_cast<double>(admission_.bytes()));
    HttpReply r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_->RenderPrometheus();
    finish("/metrics", std::move(reply), std::move(r));
    return;
  }

  Route route;
  if (auto call = SegmentCallForPath(path)) {
    route = Route{std::string("/v1/") + std::string(SegmentCallName(*call)), Protocol::kSegment, call, false};
  } else if (path == "/com.snowplowanalytics.snowplow/tp2") {
    route = Route{"/com.snowplowanalytics.snowplow/tp2", Protocol::kSnowplow, std::nullopt, false};
  } else if (path == "/i" || path == "/com.snowplowanalytics.snowplow/i") {
    route = Route{"/i", Protocol::kSnowplow, std::nullopt, true};
  } else if (path == "/collect") {
    route = Route{"/collect", Protocol::kNative, std::nullopt, false};
  } else {
    finish("other", std::move(reply), JsonError(404, "no such endpoint: " + path));
    return;
  }
  const char* want = route.pixel ? "GET" : "POST";
  if (request.method != want) {
    HttpReply r = JsonError(405, route.name + " accepts " + want);
    r.headers.emplace_back("Allow", std::string(want) + ", OPTIONS");
    finish(route.name, std::move(reply), std::move(r));
    return;
  }
  if (stopping_.load()) {
    finish(route.name, std::move(reply), Overloaded("the collector is shutting down"));
    return;
  }
  std::string name = route.name;
  Ingest(route, std::move(request), [finish, name, reply = std::move(reply)](HttpReply r) mutable {
    finish(name, std::move(reply), std::move(r));
  });
}

void RequestHandler::Ingest(const Route& route, HttpRequest request, ReplyFn reply) {
  bytes_received_->Increment(static_cast<int64_t>(request.body.size()));
  // Body → events.
  ParsedBody parsed;
  Status s;
  if (route.pixel) {
    size_t q = request.target.find('?');
    s = ParseSnowplowQuery(q == std::string::npos ? std::string_view() : std::string_view(request.target).substr(q + 1),
                           limits_, &parsed);
  } else {
    if (!AcceptableContentType(request.content_type)) {
      reply(JsonError(415, "unsupported Content-Type \"" + request.content_type +
                               "\": send application/json (or text/plain carrying JSON)"));
      return;
    }
    std::string key_from_header;
    if (route.protocol != Protocol::kSnowplow && !request.authorization.empty()) {
      key_from_header = WriteKeyFromAuthorization(request.authorization);
      std::string ignored;
      if (!LookupWriteKey(key_from_header, &ignored)) {
        reply(JsonError(401, "unknown write key: send a configured write key as the Basic-auth user name"));
        return;
      }
    }
    if (request.body.size() > options_.max_request_bytes) {
      reply(JsonError(413, "request body of " + std::to_string(request.body.size()) + " bytes exceeds the limit of " +
                               std::to_string(options_.max_request_bytes) +
                               " bytes per request (collector.max_request_bytes)"));
      return;
    }
    std::string encoding = Lower(Trim(request.content_encoding));
    std::string inflated;
    std::string_view body = request.body;
    if (encoding == "gzip" || encoding == "x-gzip" || encoding == "deflate") {
      s = Inflate(request.body, options_.max_request_bytes, encoding == "deflate", &inflated);
      if (!s.ok()) {
        reply(ErrorFromStatus(s));
        return;
      }
      body = inflated;
    } else if (!encoding.empty() && encoding != "identity") {
      reply(JsonError(415, "unsupported Content-Encoding \"" + encoding + "\": use gzip or none"));
      return;
    }
    switch (route.protocol) {
      case Protocol::kSegment:
        s = ParseSegmentBody(body, *route.segment_call, limits_, &parsed);
        break;
      case Protocol::kSnowplow:
        s = ParseSnowplowPost(body, limits_, &parsed);
        break;
      case Protocol::kNative:
        s = ParseNativeBody(body, limits_, &parsed);
        break;
    }
    if (s.ok() && route.protocol != Protocol::kSnowplow && key_from_header.empty()) {
      std::string ignored;
      if (!LookupWriteKey(parsed.write_key, &ignored)) {
        reply(JsonError(401, parsed.write_key.empty()
                                 ? "missing write key: send it as the Basic-auth user name or as \"writeKey\""
                                 : "unknown write key"));
        return;
      }
    }
    if (s.ok() && route.protocol != Protocol::kSnowplow && !key_from_header.empty()) parsed.write_key = key_from_header;
  }
  if (!s.ok()) {
    reply(ErrorFromStatus(s));
    return;
  }

  // Events → RawEvents → log entries.
  std::string segment_source;
  if (route.protocol != Protocol::kSnowplow && !LookupWriteKey(parsed.write_key, &segment_source)) {
    reply(JsonError(401, "unknown write key"));  // revoked between the checks
    return;
  }
  const int protocol_index = static_cast<int>(route.protocol);
  RawEvent raw;
  raw.received_at_us = clock_->NowMicros();
  raw.protocol = std::string(ProtocolName(protocol_index));
  raw.client_ip = ClientIp(request.peer_ip, request.forwarded_for, proxies_);
  raw.user_agent = std::move(request.user_agent);
  const bool may_shed = admission_.AboveHighWater();
  std::vector<log::LogEntry> entries;
  std::vector<AdmissionQueue::Item> items;
  std::vector<std::string> sources;
  entries.reserve(parsed.events.size());
  items.reserve(parsed.events.size());
  for (ParsedEvent& e : parsed.events) {
    if (route.protocol == Protocol::kSnowplow) {
      bool ok;
      raw.source = SnowplowSource(e.app_id, &ok);
      if (!ok) {
        reply(JsonError(401, "unknown Snowplow app id \"" + e.app_id + "\" (collector.snowplow_app_ids)"));
        return;
      }
    } else {
      raw.source = segment_source;
    }
    raw.payload = std::move(e.payload);
    log::LogEntry entry;
    entry.key = std::move(e.partition_key);
    EncodeRawEvent(raw, &entry.value);
    // Event names are matched against the low-priority patterns only when shedding may happen.
    items.push_back({static_cast<int64_t>(entry.value.size() + entry.key.size()),
                     may_shed && admission_.IsLowPriority(e.event_name)});
    entries.push_back(std::move(entry));
    sources.push_back(raw.source);
  }

  auto success = [pixel = route.pixel, protocol = route.protocol]() {
    HttpReply r;
    if (pixel) {
      r.content_type = "image/gif";
      r.body.assign(reinterpret_cast<const char*>(kPixel), sizeof(kPixel));
      r.headers.emplace_back("Cache-Control", "no-cache, no-store, must-revalidate");
    } else if (protocol == Protocol::kSnowplow) {
      r.content_type = "text/plain";
      r.body = "ok";
    } else {
      r.body = "{\"success\":true}";
    }
    return r;
  };
  if (entries.empty()) {
    reply(success());
    return;
  }

  AdmissionQueue::Decision d = admission_.Admit(items);
  if (d.shed_count > 0) shed_low_priority_->Increment(d.shed_count);
  if (!d.admitted) {
    if (d.shed_count == 0) shed_queue_full_->Increment(static_cast<int64_t>(items.size()));
    reply(Overloaded(d.shed_count > 0 ? "overloaded: low-priority events are being shed; retry later"
                                      : "overloaded: the queue to the event log is full; retry later"));
    return;
  }
  std::vector<log::LogEntry> kept;
  std::vector<std::string> kept_sources;
  if (d.shed_count > 0) {
    kept.reserve(entries.size() - d.shed_count);
    for (size_t i = 0; i < entries.size(); ++i) {
      if (!d.shed[i]) {
        kept.push_back(std::move(entries[i]));
        kept_sources.push_back(std::move(sources[i]));
      }
    }
  } else {
    kept = std::move(entries);
    kept_sources = std::move(sources);
  }
  int64_t shed = d.shed_count, events = d.events, bytes = d.bytes;
  auto protocol_name = ProtocolName(protocol_index);
  log_->AppendAsync(std::move(kept), [this, reply = std::move(reply), success, shed, events, bytes, protocol_name,
                                      kept_sources = std::move(kept_sources)](Status st) mutable {
    admission_.Release(events, bytes);
    if (!st.ok()) {
      log_failed_at_us_.store(SteadyMicros());
      (st.code() == StatusCode::kUnavailable ? failed_log_unavailable_ : failed_log_error_)->Increment(events);
      reply(Overloaded("the event log could not store the events (" + st.ToString() + "); retry later"));
      return;
    }
    log_failed_at_us_.store(-1);
    // Sources of one request are usually all the same; count runs.
    for (size_t i = 0; i < kept_sources.size();) {
      size_t j = i;
      while (j < kept_sources.size() && kept_sources[j] == kept_sources[i]) ++j;
      EventCounter(kept_sources[i], protocol_name)->Increment(static_cast<int64_t>(j - i));
      i = j;
    }
    if (shed > 0) {
      HttpReply r = Overloaded("overloaded: " + std::to_string(events) + " events stored, " + std::to_string(shed) +
                               " low-priority events shed; retry the shed ones later");
      reply(std::move(r));
      return;
    }
    reply(success());
  });
}

}  // namespace clicklake::collector

// Server tests: real HTTP on 127.0.0.1 (ephemeral port) against a FakeEventLog.
#include <gtest/gtest.h>
#include <zlib.h>

#include <atomic>
#include <future>
#include <thread>

#include "collector/collector.h"
#include "collector/tests/fake_event_log.h"
#include "collector/tests/http_test_client.h"
#include "common/metrics.h"
#include "common/test_util.h"

namespace clicklake::collector {
namespace {

using testing::BasicAuth;
using testing::FakeEventLog;
using testing::RawConnection;
using testing::RawResponse;
using testing::Request;

constexpr int64_t kNow = 1714564800000000;  // 2024-05-01T12:00:00Z

std::string Gzip(const std::string& in) {
  z_stream zs{};
  deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(compressBound(in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

int64_t CounterValue(const std::string& rendered, const std::string& series) {
  size_t pos = rendered.find(series + " ");
  if (pos == std::string::npos) return 0;
  return std::atoll(rendered.c_str() + pos + series.size() + 1);
}

class CollectorServerTest : public ::testing::Test {
 protected:
  void StartWith(CollectorOptions options) {
    options.port = 0;
    options.write_keys["wk_web"] = "web";
    auto c = Collector::Create(std::move(options), &log_, &clock_);
    ASSERT_TRUE(c.ok()) << c.status();
    collector_ = std::move(c).value();
    ASSERT_OK(collector_->Start());
    port_ = collector_->port();
    ASSERT_GT(port_, 0);
  }
  void SetUp() override {}
  void TearDown() override {
    if (collector_) {
      log_.Release();
      EXPECT_OK(collector_->Stop());
    }
  }
  RawResponse Post(const std::string& path, const std::string& body, std::map<std::string, std::string> headers = {}) {
    if (!headers.count("Content-Type")) headers["Content-Type"] = "application/json";
    return Request(port_, "POST", path, body, headers);
  }
  RawResponse PostAuth(const std::string& path, const std::string& body, const std::string& key = "wk_web") {
    return Post(path, body, {{"Authorization", BasicAuth(key)}});
  }

  FakeEventLog log_;
  FakeClock clock_{kNow};
  std::unique_ptr<Collector> collector_;
  int port_ = 0;
};

TEST_F(CollectorServerTest, EverySegmentRouteStoresOneEventAfterTheAck) {
  StartWith({});
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"track", R"({"userId":"u1","event":"Product Viewed","properties":{"sku":"A-1"},"messageId":"m-track"})"},
      {"page", R"({"anonymousId":"a1","name":"Home","messageId":"m-page"})"},
      {"screen", R"({"userId":"u1","name":"Cart","messageId":"m-screen"})"},
      {"identify", R"({"userId":"u1","anonymousId":"a1","traits":{"plan":"pro"},"messageId":"m-identify"})"},
      {"group", R"({"userId":"u1","groupId":"g1","messageId":"m-group"})"},
      {"alias", R"({"userId":"u1","previousId":"a1","messageId":"m-alias"})"},
  };
  for (const auto& [call, body] : calls) {
    RawResponse r = PostAuth("/v1/" + call, body);
    EXPECT_EQ(r.status, 200) << call << " " << r.body;
    EXPECT_EQ(r.body, R"({"success":true})");
  }
  auto events = log_.events();
  ASSERT_EQ(events.size(), calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(events[i].protocol, "segment");
    EXPECT_EQ(events[i].source, "web");
    EXPECT_EQ(events[i].client_ip, "127.0.0.1");
    EXPECT_EQ(events[i].received_at_us, kNow);
    EXPECT_NE(events[i].payload.find("\"type\":\"" + calls[i].first + "\""), std::string::npos) << events[i].payload;
    EXPECT_NE(events[i].payload.find("\"messageId\":\"m-" + calls[i].first + "\""), std::string::npos);
  }
  EXPECT_EQ(log_.entries()[0].key, "u1");
  EXPECT_EQ(log_.entries()[1].key, "a1");  // no userId: anonymousId
}

TEST_F(CollectorServerTest, BatchMergesContextIntegrationsAndSentAt) {
  StartWith({});
  std::string body = R"({"batch":[
      {"type":"track","event":"A","userId":"u1","context":{"ip":"1.2.3.4","page":{"path":"/a"}}},
      {"type":"track","event":"B","anonymousId":"a2","integrations":{"All":false},"sentAt":"2024-05-01T11:59:00Z"}],
    "context":{"library":{"name":"analytics-node"},"ip":"9.9.9.9"},
    "integrations":{"All":true},
    "sentAt":"2024-05-01T12:00:00Z",
    "writeKey":"wk_web"})";
  RawResponse r = Post("/v1/batch", body);
  ASSERT_EQ(r.status, 200) << r.body;
  auto events = log_.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(
      events[0].payload,
      R"({"type":"track","event":"A","userId":"u1","context":{"ip":"1.2.3.4","page":{"path":"/a"},"library":{"name":"analytics-node"}},"integrations":{"All":true},"sentAt":"2024-05-01T12:00:00Z"})");
  EXPECT_EQ(
      events[1].payload,
      R"({"type":"track","event":"B","anonymousId":"a2","integrations":{"All":false},"sentAt":"2024-05-01T11:59:00Z","context":{"library":{"name":"analytics-node"},"ip":"9.9.9.9"}})");
  EXPECT_EQ(events[0].payload.find("writeKey"), std::string::npos);
}

TEST_F(CollectorServerTest, UnknownOrMissingWriteKeyIs401AndStoresNothing) {
  StartWith({});
  RawResponse r = PostAuth("/v1/track", R"({"userId":"u","event":"x"})", "nope");
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("write key"), std::string::npos);
  r = Post("/v1/track", R"({"userId":"u","event":"x"})");
  EXPECT_EQ(r.status, 401);
  r = Post("/v1/track", R"({"userId":"u","event":"x","writeKey":"bad"})");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(log_.append_calls(), 0);
  r = Post("/v1/track", R"({"userId":"u","event":"x","writeKey":"wk_web"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(log_.events().size(), 1u);
}

TEST_F(CollectorServerTest, WriteKeysCanBeAddedAndRevokedLive) {
  StartWith({});
  std::string body = R"({"userId":"u","event":"x"})";
  EXPECT_EQ(PostAuth("/v1/track", body, "wk_new").status, 401);
  collector_->AddWriteKey("wk_new", "mobile");
  EXPECT_EQ(PostAuth("/v1/track", body, "wk_new").status, 200);
  collector_->RevokeWriteKey("wk_new");
  EXPECT_EQ(PostAuth("/v1/track", body, "wk_new").status, 401);
  auto events = log_.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].source, "mobile");
}

TEST_F(CollectorServerTest, BadInputGetsAClear4xxAndNothingIsStored) {
  CollectorOptions options;
  StartWith(options);
  auto auth = BasicAuth("wk_web");
  // Invalid JSON.
  RawResponse r = PostAuth("/v1/track", R"({"userId":"u","event":)");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("invalid JSON"), std::string::npos) << r.body;
  r = PostAuth("/v1/batch", R"({"batch":[{"type":"track"}]} trailing)");
  EXPECT_EQ(r.status, 400) << r.body;
  // Not an envelope.
  EXPECT_EQ(PostAuth("/v1/batch", R"([1,2,3])").status, 400);
  EXPECT_EQ(PostAuth("/v1/batch", R"({"batch":[1]})").status, 400);
  // Wrong content type.
  r = Post("/v1/track", R"({"userId":"u"})",
           {{"Authorization", auth}, {"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(r.status, 415);
  // Truncated gzip.
  std::string gz = Gzip(R"({"userId":"u","event":"gz"})");
  r = Post("/v1/track", gz.substr(0, gz.size() / 2), {{"Authorization", auth}, {"Content-Encoding", "gzip"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("gzip"), std::string::npos);
  // Not gzip at all.
  r = Post("/v1/track", "not gzip", {{"Authorization", auth}, {"Content-Encoding", "gzip"}});
  EXPECT_EQ(r.status, 400);
  // Deeply nested.
  std::string deep(100000, '[');
  r = PostAuth("/v1/track", deep);
  EXPECT_EQ(r.status, 400);
  std::string deep_closed = R"({"userId":"u","properties":)" + std::string(5000, '[') + std::string(5000, ']') + "}";
  r = PostAuth("/v1/track", deep_closed);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("nested"), std::string::npos) << r.body;
  // Invalid UTF-8.
  r = PostAuth("/v1/track", "{\"userId\":\"u\",\"event\":\"\xff\xfe\"}");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("UTF-8"), std::string::npos) << r.body;
  // Unknown route and wrong method.
  EXPECT_EQ(PostAuth("/v2/track", "{}").status, 404);
  EXPECT_EQ(Request(port_, "GET", "/v1/track", "").status, 405);
  EXPECT_EQ(log_.append_calls(), 0);
  // A valid gzip body works.
  r = Post("/v1/track", gz, {{"Authorization", auth}, {"Content-Encoding", "gzip"}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(log_.events().size(), 1u);
}

TEST_F(CollectorServerTest, OversizedEventsAndRequestsAre413NamingTheLimit) {
  StartWith({});
  std::string big(33 * 1024, 'x');
  RawResponse r = PostAuth("/v1/track", R"({"userId":"u","event":"big","properties":{"blob":")" + big + "\"}}");
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(r.body.find("collector.max_event_bytes"), std::string::npos) << r.body;
  std::string batch = R"({"batch":[)";
  std::string item =
      R"({"type":"track","userId":"u","event":"e","properties":{"blob":")" + std::string(20000, 'y') + "\"}}";
  for (int i = 0; i < 30; ++i) batch += (i ? "," : "") + item;
  batch += "]}";
  r = PostAuth("/v1/batch", batch);
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(r.body.find("collector.max_request_bytes"), std::string::npos) << r.body;
  // A gzip bomb: small on the wire, too large inflated.
  std::string bomb = R"({"batch":[{"type":"track","userId":"u","event":"e","properties":{"p":")" +
                     std::string(600 * 1024, 'z') + "\"}}]}";
  r = Post("/v1/batch", Gzip(bomb), {{"Authorization", BasicAuth("wk_web")}, {"Content-Encoding", "gzip"}});
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(log_.append_calls(), 0);
}

TEST_F(CollectorServerTest, MalformedHttpIsRefusedCleanly) {
  StartWith({});
  {
    RawConnection c(port_);
    ASSERT_TRUE(c.Send("POST /v1/track HTTP/1.1\r\nContent-Length: abc\r\n\r\n"));
    RawResponse r = c.Read();
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("malformed HTTP"), std::string::npos) << r.body;
  }
  {
    RawConnection c(port_);
    ASSERT_TRUE(c.Send("POST /v1/track HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n"));
    EXPECT_EQ(c.Read().status, 431);
  }
  {
    // Declared larger than collector.max_request_bytes: refused before the body is read.
    RawConnection c(port_);
    ASSERT_TRUE(c.Send("POST /v1/batch HTTP/1.1\r\nAuthorization: " + BasicAuth("wk_web") +
                       "\r\nContent-Length: 10000000\r\n\r\n{\"batch\":["));
    RawResponse r = c.Read();
    EXPECT_EQ(r.status, 413);
    EXPECT_NE(r.body.find("collector.max_request_bytes"), std::string::npos);
  }
  {
    // Chunked bodies work.
    RawConnection c(port_);
    std::string body = R"({"userId":"u","event":"chunked"})";
    char size[16];
    std::snprintf(size, sizeof(size), "%zx", body.size());
    ASSERT_TRUE(c.Send("POST /v1/track HTTP/1.1\r\nAuthorization: " + BasicAuth("wk_web") +
                       "\r\nTransfer-Encoding: chunked\r\n\r\n" + size + "\r\n" + body + "\r\n0\r\n\r\n"));
    EXPECT_EQ(c.Read().status, 200);
  }
  EXPECT_EQ(log_.events().size(), 1u);
  EXPECT_EQ(Request(port_, "GET", "/health", "").status, 200);
}

TEST_F(CollectorServerTest, SlowBodyTimesOutWithNothingStored) {
  CollectorOptions options;
  options.read_timeout_us = 300'000;
  StartWith(options);
  RawConnection c(port_);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.Send("POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: " + BasicAuth("wk_web") +
                     "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"userId\":"));
  EXPECT_TRUE(c.WaitClosed(3000));
  EXPECT_EQ(log_.append_calls(), 0);
  // The server is still healthy.
  EXPECT_EQ(Request(port_, "GET", "/health", "").status, 200);
}

TEST_F(CollectorServerTest, LogFailureIs503WithRetryAfterAndNothingAcked) {
  StartWith({});
  log_.FailWith(Status::Unavailable("broker down"));
  RawResponse r = PostAuth("/v1/track", R"({"userId":"u","event":"x"})");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_EQ(Request(port_, "GET", "/ready", "").status, 503);
  log_.FailWith(Status::IOError("disk"));
  EXPECT_EQ(PostAuth("/v1/track", R"({"userId":"u","event":"x"})").status, 503);
  EXPECT_TRUE(log_.events().empty());
  log_.FailWith(Status::OK());
  EXPECT_EQ(PostAuth("/v1/track", R"({"userId":"u","event":"x"})").status, 200);
  EXPECT_EQ(Request(port_, "GET", "/ready", "").status, 200);
}

TEST_F(CollectorServerTest, InlineLogFailureIs503) {
  StartWith({});
  log_.FailInline(Status::Unavailable("log buffer full"));
  RawResponse r = PostAuth("/v1/batch", R"({"batch":[{"type":"track","userId":"u","event":"x"}]})");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.headers["retry-after"], "1");
  // Keep-alive connections survive an inline failure.
  RawConnection c(port_);
  std::string body = R"({"userId":"u","event":"k"})";
  std::string req = "POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: " + BasicAuth("wk_web") +
                    "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_TRUE(c.Send(req));
  EXPECT_EQ(c.Read().status, 503);
  log_.FailInline(Status::OK());
  ASSERT_TRUE(c.Send(req));
  EXPECT_EQ(c.Read().status, 200);
  EXPECT_EQ(log_.events().size(), 1u);
}

TEST_F(CollectorServerTest, ShedsLowPriorityPastHighWaterAnd503sWhenFull) {
  CollectorOptions options;
  options.queue_max_events = 6;
  options.queue_high_water = 3;
  StartWith(options);
  std::string rendered = MetricsRegistry::Global()->RenderPrometheus();
  int64_t shed_low0 = CounterValue(rendered, R"(clicklake_collector_shed_events_total{reason="low_priority"})");
  int64_t shed_full0 = CounterValue(rendered, R"(clicklake_collector_shed_events_total{reason="queue_full"})");

  log_.Hold();
  auto batch = [](int n, const std::string& name) {
    std::string b = R"({"batch":[)";
    for (int i = 0; i < n; ++i)
      b += std::string(i ? "," : "") + R"({"type":"track","userId":"u","event":")" + name + "\"}";
    return b + "]}";
  };
  // 3 events queued (held by the log): at the high-water mark.
  auto first = std::async(std::launch::async, [&] { return PostAuth("/v1/batch", batch(3, "Order Completed")); });
  while (log_.held() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // Past high water: low-priority events are shed, never acknowledged.
  RawResponse r = PostAuth("/v1/batch", batch(2, "app_heartbeat"));
  EXPECT_EQ(r.status, 503);
  EXPECT_FALSE(r.headers["retry-after"].empty());
  // High-priority events still fit (3 + 2 <= 6).
  auto second = std::async(std::launch::async, [&] { return PostAuth("/v1/batch", batch(2, "Product Added")); });
  while (log_.held() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // Full: even high-priority events are refused with 503 + Retry-After.
  r = PostAuth("/v1/batch", batch(2, "Checkout Started"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_EQ(Request(port_, "GET", "/ready", "").status, 200);  // 5 < 6
  log_.Release();
  EXPECT_EQ(first.get().status, 200);
  EXPECT_EQ(second.get().status, 200);
  EXPECT_EQ(log_.events().size(), 5u);

  rendered = MetricsRegistry::Global()->RenderPrometheus();
  EXPECT_EQ(CounterValue(rendered, R"(clicklake_collector_shed_events_total{reason="low_priority"})") - shed_low0, 2);
  EXPECT_EQ(CounterValue(rendered, R"(clicklake_collector_shed_events_total{reason="queue_full"})") - shed_full0, 2);
}

TEST_F(CollectorServerTest, MixedRequestPastHighWaterStoresHighPriorityButIsNot200) {
  CollectorOptions options;
  options.queue_max_events = 10;
  options.queue_high_water = 1;
  StartWith(options);
  log_.Hold();
  auto first =
      std::async(std::launch::async, [&] { return PostAuth("/v1/track", R"({"userId":"u","event":"Signed Up"})"); });
  while (log_.held() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto mixed = std::async(std::launch::async, [&] {
    return PostAuth(
        "/v1/batch",
        R"({"batch":[{"type":"track","userId":"u","event":"debug_log"},{"type":"track","userId":"u","event":"Order Completed"}]})");
  });
  while (log_.held() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  log_.Release();
  EXPECT_EQ(first.get().status, 200);
  RawResponse r = mixed.get();
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("shed"), std::string::npos);
  auto events = log_.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_NE(events[1].payload.find("Order Completed"), std::string::npos);
}

TEST_F(CollectorServerTest, SnowplowPostAndPixel) {
  CollectorOptions options;
  options.snowplow_app_ids["shop"] = "web-shop";
  StartWith(options);
  std::string body = R"({"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[
      {"e":"pv","eid":"e1","aid":"shop","duid":"d1","url":"https://shop.example/a","tv":"js-4"},
      {"e":"pp","eid":"e2","aid":"other","uid":"u9","tv":"js-4"}]})";
  RawResponse r =
      Post("/com.snowplowanalytics.snowplow/tp2", body, {{"Content-Type", "application/json; charset=UTF-8"}});
  EXPECT_EQ(r.status, 200) << r.body;
  r = Request(port_, "GET",
              "/i?e=se&se_ca=shop&se_ac=add%20to%20cart&eid=e3&aid=shop&tv=js-4&url=https%3A%2F%2Fx.example%2F%3Fa%3D1",
              "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "image/gif");
  EXPECT_EQ(r.body.substr(0, 6), "GIF89a");
  auto events = log_.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].protocol, "snowplow");
  EXPECT_EQ(events[0].source, "web-shop");
  EXPECT_EQ(events[1].source, "snowplow");  // unmapped aid: the default source
  EXPECT_EQ(events[0].payload,
            R"({"e":"pv","eid":"e1","aid":"shop","duid":"d1","url":"https://shop.example/a","tv":"js-4"})");
  EXPECT_EQ(
      events[2].payload,
      R"({"e":"se","se_ca":"shop","se_ac":"add to cart","eid":"e3","aid":"shop","tv":"js-4","url":"https://x.example/?a=1"})");
  EXPECT_EQ(log_.entries()[0].key, "d1");
  EXPECT_EQ(log_.entries()[1].key, "u9");
  // Not a payload_data envelope.
  EXPECT_EQ(Post("/com.snowplowanalytics.snowplow/tp2", R"({"data":[]})").status, 400);
}

TEST_F(CollectorServerTest, SnowplowUnmappedAppIdRefusedWhenNoDefault) {
  CollectorOptions options;
  options.snowplow_app_ids["shop"] = "web-shop";
  options.snowplow_default_source = "";
  StartWith(options);
  EXPECT_EQ(Request(port_, "GET", "/i?e=pv&aid=intruder", "").status, 401);
  EXPECT_EQ(Request(port_, "GET", "/i?e=pv&aid=shop", "").status, 200);
  EXPECT_EQ(log_.events().size(), 1u);
}

TEST_F(CollectorServerTest, NativeCollect) {
  StartWith({});
  RawResponse r = PostAuth(
      "/collect",
      R"({"sentAt":"2024-05-01T12:00:01Z","events":[{"type":"track","event":"signup","userId":"u1","messageId":"n1","timestamp":"2024-05-01T12:00:00Z","properties":{"plan":"pro"}},{"type":"page","anonymousId":"a1","messageId":"n2"}]})");
  EXPECT_EQ(r.status, 200) << r.body;
  r = Post("/collect", R"({"type":"identify","userId":"u2","messageId":"n3","writeKey":"wk_web","traits":{}})");
  EXPECT_EQ(r.status, 200) << r.body;
  auto events = log_.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].protocol, "native");
  EXPECT_EQ(
      events[0].payload,
      R"({"type":"track","event":"signup","userId":"u1","messageId":"n1","timestamp":"2024-05-01T12:00:00Z","properties":{"plan":"pro"},"sentAt":"2024-05-01T12:00:01Z"})");
  EXPECT_EQ(events[2].payload, R"({"type":"identify","userId":"u2","messageId":"n3","traits":{}})");
}

TEST_F(CollectorServerTest, HealthReadyMetricsAndCors) {
  StartWith({});
  RawResponse r = Request(port_, "GET", "/health", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Request(port_, "GET", "/ready", "").status, 200);
  EXPECT_EQ(PostAuth("/v1/track", R"({"userId":"u","event":"x"})").status, 200);
  r = Request(port_, "GET", "/metrics", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"(clicklake_collector_requests_total{code="200",route="/v1/track"})"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find(R"(clicklake_collector_events_total{protocol="segment",source="web"})"), std::string::npos);
  EXPECT_NE(r.body.find("clicklake_collector_request_duration_seconds_bucket"), std::string::npos);
  EXPECT_NE(r.body.find("clicklake_collector_request_bytes_total"), std::string::npos);
  // Preflight from a browser tracker.
  r = Request(port_, "OPTIONS", "/com.snowplowanalytics.snowplow/tp2", "",
              {{"Origin", "http://127.0.0.1:9999"},
               {"Access-Control-Request-Method", "POST"},
               {"Access-Control-Request-Headers", "content-type"}});
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.headers["access-control-allow-origin"], "http://127.0.0.1:9999");
  EXPECT_EQ(r.headers["access-control-allow-credentials"], "true");
  EXPECT_NE(r.headers["access-control-allow-methods"].find("POST"), std::string::npos);
  EXPECT_EQ(r.headers["access-control-allow-headers"], "content-type");
  r = Post("/v1/track", R"({"userId":"u","event":"x","writeKey":"wk_web"})", {{"Origin", "http://site.example"}});
  EXPECT_EQ(r.headers["access-control-allow-origin"], "http://site.example");
}

TEST_F(CollectorServerTest, ForwardedForOnlyFromTrustedProxies) {
  CollectorOptions options;
  options.trusted_proxies = {"127.0.0.0/8"};
  StartWith(options);
  EXPECT_EQ(Post("/v1/track", R"({"userId":"u","event":"x","writeKey":"wk_web"})",
                 {{"X-Forwarded-For", "203.0.113.7, 127.0.0.5"}})
                .status,
            200);
  auto events = log_.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].client_ip, "203.0.113.7");
}

TEST_F(CollectorServerTest, ForwardedForIgnoredFromUntrustedPeers) {
  StartWith({});
  EXPECT_EQ(Post("/v1/track", R"({"userId":"u","event":"x","writeKey":"wk_web"})", {{"X-Forwarded-For", "203.0.113.7"}})
                .status,
            200);
  ASSERT_EQ(log_.events().size(), 1u);
  EXPECT_EQ(log_.events()[0].client_ip, "127.0.0.1");
}

TEST_F(CollectorServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  StartWith({});
  RawConnection c(port_);
  std::string body = R"({"userId":"u","event":"k"})";
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(c.Send("POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: " + BasicAuth("wk_web") +
                       "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\n\r\n" + body));
    EXPECT_EQ(c.Read().status, 200);
  }
  EXPECT_EQ(log_.events().size(), 20u);
}

TEST_F(CollectorServerTest, ExpectContinueIsHonoured) {
  StartWith({});
  RawConnection c(port_);
  std::string body = R"({"userId":"u","event":"k"})";
  ASSERT_TRUE(c.Send("POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: " + BasicAuth("wk_web") +
                     "\r\nExpect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(c.Send(body));
  EXPECT_EQ(c.Read().status, 200);
}

TEST_F(CollectorServerTest, StopDrainsInFlightRequests) {
  StartWith({});
  log_.Hold();
  auto pending =
      std::async(std::launch::async, [&] { return PostAuth("/v1/track", R"({"userId":"u","event":"drain"})"); });
  while (log_.held() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto stopped = std::async(std::launch::async, [&] { return collector_->Stop(); });
  EXPECT_EQ(stopped.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);  // waiting for the ack
  log_.Release();
  EXPECT_OK(stopped.get());
  EXPECT_EQ(pending.get().status, 200);
  EXPECT_EQ(log_.events().size(), 1u);
  // Stopped: nothing listens any more.
  RawConnection c(port_);
  EXPECT_FALSE(c.ok() && c.Send("GET /health HTTP/1.1\r\n\r\n") && c.Read(500).status == 200);
}

TEST(CollectorCreateTest, ConfigIsRead) {
  auto config = Config::Parse(R"(
[collector]
port = 0
max_event_bytes = 1000
read_timeout = "250ms"
low_priority_events = ["noise*"]
trusted_proxies = ["10.0.0.0/8"]
[collector.write_keys]
k1 = "web"
[collector.snowplow_app_ids]
shop = "s"
)");
  ASSERT_TRUE(config.ok());
  auto o = CollectorOptions::FromConfig(*config);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->port, 0);
  EXPECT_EQ(o->max_event_bytes, 1000u);
  EXPECT_EQ(o->read_timeout_us, 250000);
  EXPECT_EQ(o->low_priority_events, std::vector<std::string>{"noise*"});
  EXPECT_EQ(o->write_keys.at("k1"), "web");
  EXPECT_EQ(o->snowplow_app_ids.at("shop"), "s");
  FakeEventLog log;
  auto bad = Config::Parse("[collector]\ntrusted_proxies = [\"not-an-ip\"]\n");
  ASSERT_TRUE(bad.ok());
  EXPECT_STATUS(Collector::Create(*bad, &log).status(), kInvalidArgument);
  auto tls = Config::Parse("[collector]\ntls_cert = \"/nonexistent.pem\"\n");
  EXPECT_STATUS(Collector::Create(*tls, &log).status(), kInvalidArgument);
}

}  // namespace
}  // namespace clicklake::collector

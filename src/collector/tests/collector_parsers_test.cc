// Unit tests for the socket-free parts: body parsers, gzip, admission, proxies.
#include <gtest/gtest.h>
#include <zlib.h>

#include "collector/admission.h"
#include "collector/gzip.h"
#include "collector/json_util.h"
#include "collector/native_parser.h"
#include "collector/request_handler.h"
#include "collector/segment_parser.h"
#include "collector/snowplow_parser.h"
#include "common/test_util.h"

namespace clicklake::collector {
namespace {

BodyLimits Limits() { return BodyLimits{}; }

TEST(SegmentParserTest, SingleCallAddsTypeAndDropsWriteKey) {
  ParsedBody out;
  ASSERT_OK(ParseSegmentBody(R"( {"userId":42,"event":"Signed Up","writeKey":"k","n":123456789012345678901234567890} )",
                             SegmentCall::kTrack, Limits(), &out));
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.write_key, "k");
  EXPECT_EQ(out.events[0].payload,
            R"({"userId":42,"event":"Signed Up","n":123456789012345678901234567890,"type":"track"})");
  EXPECT_EQ(out.events[0].partition_key, "42");
  EXPECT_EQ(out.events[0].event_name, "Signed Up");
}

TEST(SegmentParserTest, EscapedKeysAndStringsSurvive) {
  ParsedBody out;
  ASSERT_OK(ParseSegmentBody(R"({"userId":"\u00e9\"q","event":"x","properties":{"k\n":"v\u0000"}})",
                             SegmentCall::kTrack, Limits(), &out));
  EXPECT_EQ(out.events[0].partition_key, "\xc3\xa9\"q");
  EXPECT_EQ(out.events[0].payload,
            R"({"userId":"\u00e9\"q","event":"x","properties":{"k\n":"v\u0000"},"type":"track"})");
}

TEST(SegmentParserTest, BatchContextIsShallowMergedEventKeysWin) {
  ParsedBody out;
  ASSERT_OK(ParseSegmentBody(
      R"({"batch":[{"type":"identify","userId":"u","context":{"ip":"1.1.1.1","library":"own"}}],"context":{"library":"batch","locale":"en"}})",
      SegmentCall::kBatch, Limits(), &out));
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].payload,
            R"({"type":"identify","userId":"u","context":{"ip":"1.1.1.1","library":"own","locale":"en"}})");
}

// Events are spliced from the body (fast path) unless they carry a writeKey
// (rebuilt member by member): both give the same payload for compact input.
TEST(SegmentParserTest, SplicedAndRebuiltPayloadsAgree) {
  const std::string batch_members =
      R"("context":{"library":{"name":"js"},"locale":"en"},"integrations":{"All":true},"sentAt":"2024-05-01T00:00:00Z")";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({})", R"({"context":{"library":{"name":"js"},"locale":"en"},"integrations":{"All":true},"sentAt":"2024-05-01T00:00:00Z"})"},
      {R"({"userId":"u","context":{}})",
       R"({"userId":"u","context":{"library":{"name":"js"},"locale":"en"},"integrations":{"All":true},"sentAt":"2024-05-01T00:00:00Z"})"},
      {R"({"context":{"locale":"de","ip":"1.2.3.4"},"userId":"u","sentAt":"x","integrations":null})",
       R"({"context":{"locale":"de","ip":"1.2.3.4","library":{"name":"js"}},"userId":"u","sentAt":"x","integrations":null})"},
      {R"({"context":"odd","type":"page"})",
       R"({"context":"odd","type":"page","integrations":{"All":true},"sentAt":"2024-05-01T00:00:00Z"})"},
      {R"({"context":{"a":1},"context":{"b":2}})",
       R"({"context":{"a":1,"library":{"name":"js"},"locale":"en"},"context":{"b":2},"integrations":{"All":true},"sentAt":"2024-05-01T00:00:00Z"})"},
  };
  for (const auto& [event, want] : cases) {
    for (bool with_key : {false, true}) {
      std::string ev = event;
      if (with_key) ev.insert(1, ev.size() > 2 ? R"("writeKey":"k",)" : R"("writeKey":"k")");
      ParsedBody out;
      ASSERT_OK(ParseSegmentBody("{\"batch\":[" + ev + "]," + batch_members + "}", SegmentCall::kBatch, Limits(), &out));
      ASSERT_EQ(out.events.size(), 1u);
      EXPECT_EQ(out.events[0].payload, want) << ev;
    }
  }
  // Whitespace inside a spliced event is kept as sent; the payload stays valid JSON.
  ParsedBody out;
  ASSERT_OK(ParseSegmentBody(R"({"batch":[ { "userId" : "u" , "context" : { "ip" : "1" } } ],"sentAt":"s","context":{"l":2}})",
                             SegmentCall::kBatch, Limits(), &out));
  EXPECT_EQ(out.events[0].payload, R"({ "userId" : "u" , "context" : { "ip" : "1" ,"l":2} ,"sentAt":"s"})");
  EXPECT_EQ(out.events[0].partition_key, "u");
  ASSERT_OK(ParseSegmentBody(R"( { "event" : "E" , "anonymousId" : "a" } )", SegmentCall::kTrack, Limits(), &out));
  EXPECT_EQ(out.events[0].payload, R"({ "event" : "E" , "anonymousId" : "a" ,"type":"track"})");
  EXPECT_EQ(out.events[0].partition_key, "a");
  EXPECT_EQ(out.events[0].event_name, "E");
}

TEST(SegmentParserTest, RejectsWhatCannotBeStored) {
  ParsedBody out;
  EXPECT_STATUS(ParseSegmentBody("", SegmentCall::kTrack, Limits(), &out), kInvalidArgument);
  EXPECT_STATUS(ParseSegmentBody("{", SegmentCall::kTrack, Limits(), &out), kInvalidArgument);
  EXPECT_STATUS(ParseSegmentBody("\"str\"", SegmentCall::kTrack, Limits(), &out), kInvalidArgument);
  EXPECT_STATUS(ParseSegmentBody("{} {}", SegmentCall::kTrack, Limits(), &out), kInvalidArgument);
  EXPECT_STATUS(ParseSegmentBody(R"({"a":01})", SegmentCall::kTrack, Limits(), &out), kInvalidArgument);
  EXPECT_STATUS(ParseSegmentBody(R"({"a":tru})", SegmentCall::kTrack, Limits(), &out), kInvalidArgument);
  EXPECT_STATUS(ParseSegmentBody(R"({"batch":{}})", SegmentCall::kBatch, Limits(), &out), kInvalidArgument);
  EXPECT_STATUS(ParseSegmentBody(R"({"batch":[{},"x"]})", SegmentCall::kBatch, Limits(), &out), kInvalidArgument);
  EXPECT_TRUE(out.events.empty());
  EXPECT_STATUS(ParseSegmentBody("{\"a\":\"\xc3\x28\"}", SegmentCall::kTrack, Limits(), &out), kInvalidArgument);
  std::string deep = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_STATUS(ParseSegmentBody(deep, SegmentCall::kTrack, Limits(), &out), kInvalidArgument);
  BodyLimits small{100, 1000};
  std::string big_event = R"({"batch":[{"type":"track","p":")" + std::string(200, 'x') + "\"}]}";
  Status s = ParseSegmentBody(big_event, SegmentCall::kBatch, small, &out);
  EXPECT_STATUS(s, kResourceExhausted);
  EXPECT_NE(s.message().find("collector.max_event_bytes"), std::string::npos);
  s = ParseSegmentBody(std::string(2000, ' '), SegmentCall::kBatch, small, &out);
  EXPECT_STATUS(s, kResourceExhausted);
  EXPECT_NE(s.message().find("collector.max_request_bytes"), std::string::npos);
}

TEST(SegmentParserTest, RoutesByPath) {
  EXPECT_EQ(SegmentCallForPath("/v1/batch"), SegmentCall::kBatch);
  EXPECT_EQ(SegmentCallForPath("/v1/import"), SegmentCall::kImport);
  EXPECT_EQ(SegmentCallForPath("/v1/screen/"), SegmentCall::kScreen);
  EXPECT_EQ(SegmentCallForPath("/v2/batch"), std::nullopt);
}

TEST(SnowplowParserTest, PostEnvelopeAndQuery) {
  ParsedBody out;
  ASSERT_OK(ParseSnowplowPost(
      R"({"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[{"e":"pp","aid":"a1","duid":"d"}]})",
      Limits(), &out));
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].payload, R"({"e":"pp","aid":"a1","duid":"d"})");
  EXPECT_EQ(out.events[0].event_name, "page_ping");
  EXPECT_EQ(out.events[0].app_id, "a1");
  EXPECT_EQ(out.events[0].partition_key, "d");
  ASSERT_OK(ParseSnowplowQuery("e=se&se_ac=Add+To%20Cart&tv=js&q=%22%5C", Limits(), &out));
  EXPECT_EQ(out.events[0].payload, R"({"e":"se","se_ac":"Add To Cart","tv":"js","q":"\"\\"})");
  EXPECT_EQ(out.events[0].event_name, "Add To Cart");
  EXPECT_STATUS(ParseSnowplowQuery("e=%zz", Limits(), &out), kInvalidArgument);
  EXPECT_STATUS(ParseSnowplowQuery("e=%ff", Limits(), &out), kInvalidArgument);
  EXPECT_STATUS(ParseSnowplowQuery("", Limits(), &out), kInvalidArgument);
  EXPECT_STATUS(ParseSnowplowPost(R"({"schema":"iglu:x/other","data":[]})", Limits(), &out), kInvalidArgument);
}

TEST(NativeParserTest, SingleAndBatch) {
  ParsedBody out;
  ASSERT_OK(ParseNativeBody(R"({"type":"track","event":"e","anonymousId":"a","writeKey":"k"})", Limits(), &out));
  EXPECT_EQ(out.write_key, "k");
  EXPECT_EQ(out.events[0].payload, R"({"type":"track","event":"e","anonymousId":"a"})");
  EXPECT_EQ(out.events[0].partition_key, "a");
  EXPECT_STATUS(ParseNativeBody(R"({"events":[1]})", Limits(), &out), kInvalidArgument);
  EXPECT_STATUS(ParseNativeBody(R"({"events":{}})", Limits(), &out), kInvalidArgument);
}

std::string Compress(const std::string& in, int window_bits) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
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

TEST(GzipTest, InflatesAndRefusesBadInput) {
  std::string text(100000, 'a');
  std::string out;
  ASSERT_OK(Inflate(Compress(text, 16 + MAX_WBITS), 1 << 20, false, &out));
  EXPECT_EQ(out, text);
  ASSERT_OK(Inflate(Compress(text, MAX_WBITS), 1 << 20, true, &out));
  EXPECT_EQ(out, text);
  std::string gz = Compress(text, 16 + MAX_WBITS);
  EXPECT_STATUS(Inflate(gz.substr(0, gz.size() - 5), 1 << 20, false, &out), kInvalidArgument);
  EXPECT_STATUS(Inflate("garbage", 1 << 20, false, &out), kInvalidArgument);
  EXPECT_STATUS(Inflate(gz, 1000, false, &out), kResourceExhausted);
  EXPECT_TRUE(out.empty());
}

TEST(AdmissionTest, GlobPatterns) {
  EXPECT_TRUE(GlobMatch("*debug*", "App Debug Log"));
  EXPECT_TRUE(GlobMatch("page_ping", "PAGE_PING"));
  EXPECT_TRUE(GlobMatch("a?c*", "abcdef"));
  EXPECT_FALSE(GlobMatch("page_ping", "page_pings"));
  EXPECT_FALSE(GlobMatch("*heartbeat*", "Order Completed"));
  EXPECT_TRUE(GlobMatch("*", ""));
}

TEST(AdmissionTest, ShedsLowPriorityPastHighWaterThenRefusesWhenFull) {
  AdmissionQueue q(AdmissionOptions{10, 1 << 20, 5, {"*debug*"}});
  auto d = q.Admit({{10, false}, {10, true}, {10, false}, {10, false}, {10, false}});
  EXPECT_TRUE(d.admitted);
  EXPECT_EQ(d.shed_count, 0);
  EXPECT_EQ(q.events(), 5);
  d = q.Admit({{10, true}, {10, false}});  // past high water: the debug one is shed
  EXPECT_TRUE(d.admitted);
  EXPECT_EQ(d.shed_count, 1);
  EXPECT_TRUE(d.shed[0]);
  EXPECT_EQ(q.events(), 6);
  d = q.Admit({{10, true}});  // only low priority: nothing queued
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.shed_count, 1);
  d = q.Admit({{10, false}, {10, false}, {10, false}, {10, false}, {10, false}});  // 6 + 5 > 10
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.shed_count, 0);
  q.Release(6, 60);
  EXPECT_EQ(q.events(), 0);
  EXPECT_TRUE(q.Admit({{10, true}}).admitted);
}

TEST(ProxyListTest, ClientIpFromTrustedProxiesOnly) {
  auto proxies = ProxyList::Parse({"10.0.0.0/8", "192.168.1.1", "::1"});
  ASSERT_TRUE(proxies.ok());
  EXPECT_EQ(ClientIp("10.1.2.3", "203.0.113.9, 10.0.0.2", *proxies), "203.0.113.9");
  EXPECT_EQ(ClientIp("192.168.1.1", "198.51.100.1", *proxies), "198.51.100.1");
  EXPECT_EQ(ClientIp("::1", "2001:db8::1", *proxies), "2001:db8::1");
  EXPECT_EQ(ClientIp("8.8.8.8", "203.0.113.9", *proxies), "8.8.8.8");
  EXPECT_EQ(ClientIp("10.1.2.3", "", *proxies), "10.1.2.3");
  EXPECT_FALSE(ProxyList::Parse({"10.0.0.0/33"}).ok());
  EXPECT_FALSE(ProxyList::Parse({"example.com"}).ok());
}

TEST(JsonUtilTest, StringsRoundTrip) {
  std::string out;
  AppendJsonString("a\"b\\c\n\x01", &out);
  EXPECT_EQ(out, R"("a\"b\\c\n\u0001")");
  std::string decoded;
  ASSERT_TRUE(DecodeJsonScalar(out, &decoded));
  EXPECT_EQ(decoded, "a\"b\\c\n\x01");
  ASSERT_TRUE(DecodeJsonScalar(R"("\ud83d\ude00")", &decoded));
  EXPECT_EQ(decoded, "\xf0\x9f\x98\x80");
}

}  // namespace
}  // namespace clicklake::collector

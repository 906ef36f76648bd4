// Unit tests of the Silver building blocks: parsing and event time
// (silver_parse.h), contracts (contracts.h), PII (silver.h), dedup (dedup.h),
// and SilverStage::BuildBatch's result on one or several threads.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/file_system.h"
#include "common/raw_event.h"
#include "common/test_util.h"
#include "engine/engine.h"
#include "pipeline/bronze.h"
#include "pipeline/contracts.h"
#include "pipeline/dedup.h"
#include "pipeline/silver.h"
#include "pipeline/silver_parse.h"
#include "simulate/simulator.h"

namespace clicklake::pipeline {
namespace {

using clicklake::testing::TempDir;

constexpr int64_t kReceived = 1714564800000000LL;  // 2024-05-01T12:00:00Z

int64_t Ts(const char* iso) {
  int64_t us = 0;
  EXPECT_TRUE(ParseTimestampMicros(iso, &us)) << iso;
  return us;
}

RawEvent Segment(const std::string& payload) {
  RawEvent e;
  e.received_at_us = kReceived;
  e.source = "web";
  e.protocol = "segment";
  e.client_ip = "203.0.113.9";
  e.user_agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
  e.payload = payload;
  return e;
}

RawEvent Snowplow(const std::string& payload) {
  RawEvent e = Segment(payload);
  e.protocol = "snowplow";
  return e;
}

struct Parsed {
  bool ok;
  CanonicalEvent ev;
  ParseError err;
};

class ParseTest : public ::testing::Test {
 protected:
  bool Parse(const RawEvent& raw) { return parser_.Parse(raw, "0-7", &ev_, &err_); }
  EventParser parser_{ParseOptions{}};
  CanonicalEvent ev_;
  ParseError err_;
};

TEST(CanonicalEventNameTest, SnakeCase) {
  EXPECT_EQ(CanonicalEventName("Product Viewed"), "product_viewed");
  EXPECT_EQ(CanonicalEventName("productViewed"), "product_viewed");
  EXPECT_EQ(CanonicalEventName("  Order-Completed! "), "order_completed");
  EXPECT_EQ(CanonicalEventName("already_snake"), "already_snake");
  EXPECT_EQ(CanonicalEventName("Step 2 Done"), "step_2_done");
  EXPECT_EQ(CanonicalEventName("!!!"), "");
}

TEST_F(ParseTest, SegmentTrackWithSentAtUsesTheSkewCorrection) {
  ASSERT_TRUE(Parse(Segment(R"({"type":"track","event":"Product Viewed","userId":"u1","anonymousId":"a1",
      "messageId":"m1","timestamp":"2024-05-01T10:00:00Z","sentAt":"2024-05-01T10:00:05Z",
      "properties":{"product_id":"p1"},"context":{"ip":"198.51.100.1","page":{"url":"https://shop.example/p?utm_source=x"}}})")))
      << err_.code;
  EXPECT_EQ(ev_.event_id, "m1");
  EXPECT_EQ(ev_.event_type, "track");
  EXPECT_EQ(ev_.event_name, "product_viewed");
  // received − (sent − original): the client clock is 2 h behind, the network took 5 s.
  EXPECT_EQ(ev_.event_ts, kReceived - 5000000);
  EXPECT_EQ(*ev_.original_ts, Ts("2024-05-01T10:00:00Z"));
  EXPECT_EQ(*ev_.sent_at, Ts("2024-05-01T10:00:05Z"));
  EXPECT_EQ(*ev_.user_id, "u1");
  EXPECT_EQ(*ev_.anonymous_id, "a1");
  EXPECT_EQ(*ev_.ip, "198.51.100.1");  // the payload's IP wins over the request's
  EXPECT_EQ(*ev_.page_url, "https://shop.example/p?utm_source=x");
  EXPECT_EQ(ev_.platform, "web");
  EXPECT_FALSE(ev_.future_dated);
  EXPECT_FALSE(ev_.late);
}

TEST_F(ParseTest, EventTimeFallbacks) {
  ASSERT_TRUE(Parse(Segment(R"({"type":"track","event":"E","userId":"u","timestamp":"2024-05-01T11:00:00.250Z"})")));
  EXPECT_EQ(ev_.event_ts, Ts("2024-05-01T11:00:00.250Z"));  // no sentAt → original
  ASSERT_TRUE(Parse(Segment(R"({"type":"track","event":"E","userId":"u"})")));
  EXPECT_EQ(ev_.event_ts, kReceived);  // no time at all → received_at
  EXPECT_FALSE(ev_.original_ts.has_value());
  // originalTimestamp is the client time when present.
  ASSERT_TRUE(Parse(Segment(R"({"type":"track","event":"E","userId":"u","timestamp":"2024-05-01T11:59:00Z",
      "originalTimestamp":"2024-05-01T11:58:00Z","sentAt":"2024-05-01T11:58:10Z"})")));
  EXPECT_EQ(ev_.event_ts, kReceived - 10000000);
}

TEST_F(ParseTest, FutureDatedIsClampedAndLateIsFlagged) {
  ASSERT_TRUE(Parse(Segment(R"({"type":"track","event":"E","userId":"u","timestamp":"2024-05-02T12:00:00Z"})")));
  EXPECT_TRUE(ev_.future_dated);
  EXPECT_EQ(ev_.event_ts, kReceived);
  ASSERT_TRUE(Parse(Segment(R"({"type":"track","event":"E","userId":"u","timestamp":"2024-05-01T12:05:00Z"})")));
  EXPECT_FALSE(ev_.future_dated);  // within the 10-minute tolerance
  // Lateness is decided against the newest event time seen, by the Silver
  // stage (pipeline_test LateIsMeasuredAgainstTheNewestEventTimeSeen), not here.
  ASSERT_TRUE(Parse(Segment(R"({"type":"track","event":"E","userId":"u","timestamp":"2024-04-27T12:00:00Z"})")));
  EXPECT_FALSE(ev_.late);
  EXPECT_EQ(ev_.event_ts, Ts("2024-04-27T12:00:00Z"));
}

TEST_F(ParseTest, QuarantineReasons) {
  struct Case {
    std::string payload;
    std::string code;
  } cases[] = {
      {"not json", "invalid_json"},
      {"[1,2]", "invalid_json"},
      {R"({"event":"E","userId":"u"})", "missing_type"},
      {R"({"type":"purchase","userId":"u"})", "unknown_type"},
      {R"({"type":"track","userId":"u"})", "missing_event"},
      {R"({"type":"track","event":"  ","userId":"u"})", "missing_event"},
      {R"({"type":"track","event":"E"})", "no_identity"},
      {R"({"type":"track","event":"E","userId":"u","timestamp":"2026-13-45T25:61:00Z"})", "bad_timestamp"},
      {R"({"type":"track","event":"E","userId":"u","timestamp":"not-a-timestamp"})", "bad_timestamp"},
      {R"({"type":"track","event":"E","userId":"u","sentAt":12345})", "bad_timestamp"},
  };
  for (const auto& c : cases) {
    EXPECT_FALSE(Parse(Segment(c.payload))) << c.payload;
    EXPECT_EQ(err_.code, c.code) << c.payload;
    EXPECT_FALSE(err_.detail.empty());
  }
  RawEvent other = Segment(R"({"type":"track"})");
  other.protocol = "carrier-pigeon";
  EXPECT_FALSE(Parse(other));
  EXPECT_EQ(err_.code, "unknown_protocol");
}

TEST_F(ParseTest, NamesTypesAndAliases) {
  ASSERT_TRUE(Parse(Segment(R"({"type":"page","anonymousId":"a","name":"Home","properties":{"path":"/","url":"https://s.example/","title":"Home","referrer":"https://www.google.com/"}})")));
  EXPECT_EQ(ev_.event_type, "page");
  EXPECT_EQ(ev_.event_name, "page_viewed");
  EXPECT_EQ(*ev_.page_path, "/");
  EXPECT_EQ(*ev_.page_title, "Home");
  EXPECT_EQ(*ev_.referrer_url, "https://www.google.com/");
  EXPECT_EQ(ev_.event_id, "ingest:0-7");  // no messageId: a stable id from the log position
  ASSERT_TRUE(Parse(Segment(R"({"type":"screen","userId":"u","name":"Home","context":{"device":{"type":"ios"}}})")));
  EXPECT_EQ(ev_.event_name, "screen_viewed");
  EXPECT_EQ(ev_.platform, "ios");
  ASSERT_TRUE(Parse(Segment(R"({"type":"alias","userId":"u","previousId":"anon-1"})")));
  EXPECT_EQ(ev_.event_name, "alias");
  EXPECT_EQ(*ev_.anonymous_id, "anon-1");

  ParseOptions options;
  options.event_aliases["order_complete"] = "order_completed";
  EventParser aliased(options);
  ASSERT_TRUE(aliased.Parse(Segment(R"({"type":"track","event":"Order Complete","userId":"u","properties":{"total":12.5}})"),
                            "0-1", &ev_, &err_));
  EXPECT_EQ(ev_.event_name, "order_completed");
  EXPECT_DOUBLE_EQ(*ev_.revenue, 12.5);  // no revenue property → total
}

TEST_F(ParseTest, AliasesFromConfig) {
  ASSERT_OK_AND_ASSIGN(Config config, Config::Parse("[silver.event_aliases]\n\"Purchase Done\" = \"Order Completed\"\n"));
  EventParser parser(ParseOptions::FromConfig(config));
  ASSERT_TRUE(parser.Parse(Segment(R"({"type":"track","event":"purchaseDone","userId":"u"})"), "0-1", &ev_, &err_));
  EXPECT_EQ(ev_.event_name, "order_completed");
}

TEST_F(ParseTest, RevenueAndServerEvents) {
  ASSERT_TRUE(Parse(Segment(R"({"type":"track","event":"Order Completed","userId":"u",
      "properties":{"revenue":59.97,"total":70.1,"currency":"EUR"}})")));
  EXPECT_DOUBLE_EQ(*ev_.revenue, 59.97);
  EXPECT_EQ(*ev_.currency, "EUR");
  ASSERT_TRUE(Parse(Segment(R"({"type":"track","event":"Product Viewed","userId":"u","properties":{"revenue":5}})")));
  EXPECT_FALSE(ev_.revenue.has_value());  // revenue counts for order_completed only
  ASSERT_TRUE(Parse(Segment(R"({"type":"track","event":"Order Shipped","userId":"u",
      "context":{"library":{"name":"analytics-node","version":"2.0"}}})")));
  EXPECT_EQ(ev_.platform, "server");
  EXPECT_FALSE(ev_.ip.has_value());  // the backend's address is not the user's
  EXPECT_FALSE(ev_.user_agent.has_value());
}

TEST_F(ParseTest, SnowplowPageViewAndDerivedTimestamp) {
  ASSERT_TRUE(Parse(Snowplow(R"({"e":"pv","eid":"e-1","duid":"d-1","uid":"u-1","p":"web","url":"https://s.example/a",
      "page":"A","refr":"https://t.co/x","dtm":"1714557600000","stm":"1714557605000","tna":"sp","aid":"shop"})")));
  EXPECT_EQ(ev_.event_type, "page");
  EXPECT_EQ(ev_.event_name, "page_viewed");
  EXPECT_EQ(ev_.event_id, "e-1");
  EXPECT_EQ(*ev_.user_id, "u-1");
  EXPECT_EQ(*ev_.anonymous_id, "d-1");
  EXPECT_EQ(ev_.event_ts, kReceived - 5000000);  // collector − (dvce_sent − dvce_created)
  EXPECT_EQ(*ev_.page_title, "A");
  ASSERT_TRUE(Parse(Snowplow(R"({"e":"pv","duid":"d","dtm":"1714557600000","ttm":"1714564790000"})")));
  EXPECT_EQ(ev_.event_ts, 1714564790000000LL);  // true timestamp wins
  EXPECT_FALSE(Parse(Snowplow(R"({"e":"pv","duid":"d","dtm":"yesterday"})")));
  EXPECT_EQ(err_.code, "bad_timestamp");
  EXPECT_FALSE(Parse(Snowplow(R"({"e":"xx","duid":"d"})")));
  EXPECT_EQ(err_.code, "unknown_type");
  EXPECT_FALSE(Parse(Snowplow(R"({"e":"pv"})")));
  EXPECT_EQ(err_.code, "no_identity");
}

TEST_F(ParseTest, SnowplowStructuredSelfDescribingAndTransactions) {
  ASSERT_TRUE(Parse(Snowplow(R"({"e":"se","duid":"d","se_ca":"shop","se_ac":"Add To Basket","se_la":"p1","se_va":"2.5"})")));
  EXPECT_EQ(ev_.event_name, "add_to_basket");
  EXPECT_EQ(simdjson::minify(ev_.properties),
            R"({"category":"shop","action":"Add To Basket","label":"p1","value":2.5})");
  EXPECT_FALSE(Parse(Snowplow(R"({"e":"se","duid":"d","se_ca":"shop"})")));
  EXPECT_EQ(err_.code, "missing_event");

  // ue_px: base64url of {"schema":"...unstruct_event...","data":{"schema":"iglu:com.acme/link_click/jsonschema/1-0-0","data":{"target":"x"}}}
  std::string ue = R"({"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0","data":{"schema":"iglu:com.acme/link_click/jsonschema/1-0-0","data":{"target":"x"}}})";
  static const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string px;
  for (size_t i = 0; i < ue.size(); i += 3) {
    uint32_t v = uint8_t(ue[i]) << 16;
    if (i + 1 < ue.size()) v |= uint8_t(ue[i + 1]) << 8;
    if (i + 2 < ue.size()) v |= uint8_t(ue[i + 2]);
    px.push_back(kB64[v >> 18]);
    px.push_back(kB64[(v >> 12) & 63]);
    if (i + 1 < ue.size()) px.push_back(kB64[(v >> 6) & 63]);
    if (i + 2 < ue.size()) px.push_back(kB64[v & 63]);
  }
  ASSERT_TRUE(Parse(Snowplow(R"({"e":"ue","duid":"d","ue_px":")" + px + R"(","co":"{\"schema\":\"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0\",\"data\":[{\"schema\":\"iglu:com.acme/user/jsonschema/1-0-0\",\"data\":{\"plan\":\"pro\"}}]}"})")))
      << err_.code << " " << err_.detail;
  EXPECT_EQ(ev_.event_name, "link_click");
  EXPECT_EQ(simdjson::minify(ev_.properties),
            R"({"target":"x","contexts":[{"schema":"iglu:com.acme/user/jsonschema/1-0-0","data":{"plan":"pro"}}]})");

  ASSERT_TRUE(Parse(Snowplow(R"({"e":"tr","uid":"u","tr_id":"o-1","tr_tt":"42.5","tr_cu":"USD"})")));
  EXPECT_EQ(ev_.event_name, "order_completed");
  EXPECT_DOUBLE_EQ(*ev_.revenue, 42.5);
  EXPECT_EQ(*ev_.currency, "USD");
}

// ---- contracts ----

class ContractTest : public ::testing::Test {
 protected:
  std::string Check(const std::string& event, const std::string& properties_json) {
    const Contract* c = registry_.Find(event);
    EXPECT_NE(c, nullptr);
    simdjson::dom::element e;
    EXPECT_FALSE(parser_.parse(properties_json).get(e));
    return ContractRegistry::Validate(*c, &e);
  }
  ContractRegistry registry_;
  simdjson::dom::parser parser_;
};

TEST_F(ContractTest, SchemaSubset) {
  ASSERT_OK(registry_.Add("Order Completed", 3, R"({"type":"object","required":["order_id","revenue"],
      "properties":{"order_id":{"type":"string","pattern":"^ord_[0-9a-z]+$"},
                    "revenue":{"type":"number","minimum":0,"maximum":100000},
                    "currency":{"enum":["USD","EUR"]},
                    "quantity":{"type":"integer"},
                    "products":{"type":"array","items":{"type":"object","required":["sku"]}}}})"));
  const Contract* c = registry_.Find("order_completed");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->version, 3);
  EXPECT_EQ(Check("order_completed", R"({"order_id":"ord_1","revenue":10,"currency":"EUR","quantity":2,"products":[{"sku":"a"}]})"), "");
  EXPECT_EQ(Check("order_completed", R"({"revenue":10})"), "properties.order_id: required but missing");
  EXPECT_NE(Check("order_completed", R"({"order_id":7,"revenue":10})").find("expected string"), std::string::npos);
  EXPECT_NE(Check("order_completed", R"({"order_id":"x-1","revenue":10})").find("does not match"), std::string::npos);
  EXPECT_NE(Check("order_completed", R"({"order_id":"ord_1","revenue":-1})").find("below the minimum"), std::string::npos);
  EXPECT_NE(Check("order_completed", R"({"order_id":"ord_1","revenue":1e9})").find("above the maximum"), std::string::npos);
  EXPECT_NE(Check("order_completed", R"({"order_id":"ord_1","revenue":1,"currency":"GBP"})").find("allowed values"), std::string::npos);
  EXPECT_NE(Check("order_completed", R"({"order_id":"ord_1","revenue":1,"quantity":1.5})").find("expected integer"), std::string::npos);
  EXPECT_EQ(Check("order_completed", R"({"order_id":"ord_1","revenue":1,"products":[{}]})"),
            "properties.products[0].sku: required but missing");
  // No properties at all: the required ones are missing.
  EXPECT_EQ(ContractRegistry::Validate(*c, nullptr), "properties: expected object, got nothing");
}

TEST_F(ContractTest, FromConfigAndErrors) {
  ASSERT_OK_AND_ASSIGN(Config config, Config::Parse(R"([[contracts]]
event = "Product Added"
version = 2
schema = '''{"properties":{"price":{"type":"number"}}}'''
)"));
  ASSERT_OK_AND_ASSIGN(ContractRegistry registry, ContractRegistry::FromConfig(config));
  ASSERT_NE(registry.Find("product_added"), nullptr);
  EXPECT_EQ(registry.Find("product_added")->version, 2);
  EXPECT_EQ(registry.Find("product_viewed"), nullptr);

  EXPECT_EQ(registry_.Add("e", 1, "{not json").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_.Add("e", 1, R"({"pattern":"(unclosed"})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_.Add("e", 1, R"({"type":"strnig"})").code(), StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(Config bad, Config::Parse("[[contracts]]\nversion = 1\n"));
  EXPECT_EQ(ContractRegistry::FromConfig(bad).status().code(), StatusCode::kInvalidArgument);
}

// ---- PII ----

TEST(PiiTest, ScrubsEmailsPhonesAndCards) {
  const std::string key = "k";
  std::string out;
  EXPECT_EQ(ScrubPii("call me back at +1 415-555-0123, thanks!", key, &out), 1);
  EXPECT_EQ(out, "call me back at hmac:" + HmacSha256Hex(key, "14155550123") + ", thanks!");
  EXPECT_EQ(ScrubPii("send it to Jane.Doe@Example.com or text (415) 555-0199", key, &out), 2);
  EXPECT_EQ(out, "send it to hmac:" + HmacSha256Hex(key, "jane.doe@example.com") + " or text hmac:" +
                     HmacSha256Hex(key, "4155550199"));
  EXPECT_EQ(ScrubPii("card 4111 1111 1111 1111 declined", key, &out), 1);
  EXPECT_EQ(out, "card hmac:" + HmacSha256Hex(key, "4111111111111111") + " declined");
  EXPECT_EQ(ScrubPii("amex 378282246310005", key, &out), 1);
  EXPECT_EQ(ScrubPii("5555-5555-5555-4444", key, &out), 1);
  // Not PII: Luhn-invalid digits, ids glued to words, dates, prices, short numbers.
  for (const char* text : {"4111111111111112", "ord_1234567890123", "2026-11-30T12:00:00Z", "price 1,299.99",
                           "sku-1234567890", "room 1234", "v1.2.3"}) {
    EXPECT_EQ(ScrubPii(text, key, &out), 0) << text << " → " << out;
    EXPECT_EQ(out, text);
  }
}

TEST(PiiTest, HmacIsKeyedAndKeyFileIsPrivate) {
  EXPECT_EQ(HmacSha256Hex("key", "The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");  // RFC 4231-style known answer
  TempDir dir;
  std::string path = JoinPath(dir.path(), "keys/pii.key");
  ASSERT_OK_AND_ASSIGN(std::string key, LoadOrCreatePiiKey(path));
  EXPECT_EQ(key.size(), 32u);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_OK_AND_ASSIGN(std::string again, LoadOrCreatePiiKey(path));
  EXPECT_EQ(again, key);  // created once, then read
}

// ---- dedup ----

TEST(DedupTest, FirstCopyWinsAcrossBatchesAndReRunsAreConsistent) {
  TempDir dir;
  {
    ASSERT_OK_AND_ASSIGN(auto store, DedupStore::Open(JoinPath(dir.path(), "dedup"), 7LL * 86400 * 1000000));
    store->BeginBatch(0);
    EXPECT_FALSE(*store->CheckAndAdd("a", kReceived));
    EXPECT_TRUE(*store->CheckAndAdd("a", kReceived));  // again in the same batch
    EXPECT_FALSE(*store->CheckAndAdd("b", kReceived));
    ASSERT_OK(store->CommitBatch(kReceived));
    store->BeginBatch(1);
    EXPECT_TRUE(*store->CheckAndAdd("a", kReceived));   // seen in batch 0
    EXPECT_FALSE(*store->CheckAndAdd("c", kReceived));
    ASSERT_OK(store->CommitBatch(kReceived));
  }
  // A crash after batch 1's state write but before its Delta commit: batch 1
  // runs again and must see "c" as new (its own entry), "a" still as a duplicate.
  ASSERT_OK_AND_ASSIGN(auto store, DedupStore::Open(JoinPath(dir.path(), "dedup"), 7LL * 86400 * 1000000));
  store->BeginBatch(1);
  EXPECT_FALSE(*store->CheckAndAdd("c", kReceived));
  EXPECT_TRUE(*store->CheckAndAdd("a", kReceived));
  ASSERT_OK(store->CommitBatch(kReceived));
  store->BeginBatch(2);
  EXPECT_TRUE(*store->CheckAndAdd("c", kReceived));
  // Expiry: entries older than the cutoff are forgotten.
  ASSERT_OK_AND_ASSIGN(int64_t expired, store->Expire(kReceived + 1));
  EXPECT_EQ(expired, 3);
  store->BeginBatch(3);
  EXPECT_FALSE(*store->CheckAndAdd("a", kReceived));
}

TEST(DedupTest, SecondOpenOfTheSameStoreFails) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, DedupStore::Open(JoinPath(dir.path(), "dedup"), 1));
  EXPECT_EQ(DedupStore::Open(JoinPath(dir.path(), "dedup"), 1).status().code(), StatusCode::kIOError);
}

// ---- BuildBatch on several threads ----

// Log records of simulated traffic (duplicates, late and out-of-order events,
// PII, malformed events) with hand-made records among them: undecodable ones,
// invalid JSON and UTF-8, an unknown protocol, contract violations, prop_ type
// conflicts, PII inside flattened properties, restricted traits, Snowplow,
// and repeats of those.
std::vector<log::LogRecord> MixedTraffic(size_t count) {
  simulate::SimulatorOptions so;
  so.users = 40;
  so.seed = 5;
  so.start_time_us = 1714550400000000LL;
  so.duplicate_rate = 0.03;
  so.malformed_rate = 0.01;
  so.pii_rate = 0.03;
  so.late_rate = 0.02;
  so.out_of_order_rate = 0.03;
  so.clock_skew_rate = 0.05;
  simulate::TrafficGenerator gen(so);
  const std::string ts = R"("timestamp":"2024-05-01T10:00:00Z")";
  const std::vector<std::string> handmade = {
      R"({"type":"track","event":"Checkout Step","userId":"u1","messageId":"h-step-bad","properties":{"step":"two"}})",
      R"({"type":"track","event":"Checkout Step","userId":"u1","messageId":"h-step","properties":{"step":2}})",
      R"({"type":"track","event":"Shape","userId":"u2","properties":{"shape":1,"size":{"w":2,"unit":"cm"}}})",
      R"({"type":"track","event":"Shape","userId":"u2","properties":{"shape":"round","size":{"w":"wide"}}})",
      R"({"type":"track","event":"Shape","userId":"u2","properties":{"shape":true,"size":[1,2]}})",
      R"({"type":"track","event":"Note","anonymousId":"a3","messageId":"h-note","properties":{"note":"mail a.b@example.com",)"
      R"("contact":{"phone":"+1 415-555-0123","n":3},"card":"4111 1111 1111 1111","shape":"square"}})",
      R"({"type":"identify","userId":"u4","messageId":"h-id","traits":{"email":"Jane@Example.com","phone":"+44 20 7946 0958",)"
      R"("name":"Jane","plan":"pro","age":41}})",
      R"({"type":"identify","userId":"u5","traits":{"email":"","phone":5551234567,"plan":"free"}})",
      R"({"type":"track","event":"Wide","userId":"u6","properties":{"a":{"b":{"c":{"d":{"e":1}}}},"k":null,)"
      R"("x\"y":1,"!!!":2,"dup":1,"Dup":"two"}})",
      "not json",
      R"({"type":"track","event":"E"})",
      R"({"type":"purchase","userId":"u"})",
      R"({"type":"track","event":"Late","userId":"u7","timestamp":"2024-04-01T00:00:00Z"})",
      R"({"type":"track","event":"Future","userId":"u7","timestamp":"2024-06-01T00:00:00Z"})",
      R"({"type":"track","event":"Note","anonymousId":"a3","messageId":"h-note","properties":{"note":"again"}})",
  };
  std::vector<log::LogRecord> records;
  std::vector<int64_t> offsets(3, 0);
  auto add = [&](std::string value) {
    log::LogRecord r;
    r.partition = static_cast<int32_t>(records.size() % 3);
    r.offset = offsets[r.partition]++;
    r.value = std::move(value);
    records.push_back(std::move(r));
  };
  // The hand-made events once first, so that their prop_ columns are among
  // the first silver.max_prop_columns.
  for (const std::string& payload : handmade) {
    RawEvent raw;
    raw.received_at_us = so.start_time_us;
    raw.source = "web";
    raw.protocol = "segment";
    raw.payload = payload;
    std::string value;
    EncodeRawEvent(raw, &value);
    add(std::move(value));
  }
  size_t next_handmade = 0;
  while (records.size() < count) {
    simulate::GeneratedBatch batch = gen.NextBatch();
    const int64_t sent = batch.DefaultSentAtMicros();
    for (const auto& e : batch.events) {
      RawEvent raw;
      raw.received_at_us = sent + 80000;
      raw.source = "web";
      raw.protocol = "segment";
      raw.client_ip = "203.0.113." + std::to_string(records.size() % 7);
      raw.user_agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/12" +
                       std::to_string(records.size() % 3) + ".0 Safari/537.36";
      raw.payload = batch.EventPayload(e, sent);
      std::string value;
      EncodeRawEvent(raw, &value);
      add(std::move(value));
      if (records.size() % 37 != 0) continue;
      const size_t k = next_handmade++;
      switch (k % (handmade.size() + 3)) {
        case 0: add("not a RawEvent frame"); break;
        case 1: raw.protocol = "carrier-pigeon"; break;
        case 2:
          raw.protocol = "snowplow";
          raw.payload = R"({"e":"pv","eid":"sp-)" + std::to_string(k % 50) +
                        R"(","duid":"d-1","url":"https://s.example/a?utm_source=news","refr":"https://t.co/x",)"
                        R"("dtm":"1714557600000","stm":"1714557605000","ue_pr":"{\"data\":{\"data\":{\"q\":\"x\"}}}"})";
          break;
        default:
          raw.payload = handmade[k % (handmade.size() + 3) - 3];
          if (k % 5 == 0) raw.payload.insert(raw.payload.size() - 1, "," + ts);
          if (k % 11 == 0) raw.source = "web\xff\xfe";  // not UTF-8
      }
      if (k % (handmade.size() + 3) != 0) {
        value.clear();
        EncodeRawEvent(raw, &value);
        add(std::move(value));
      }
    }
  }
  records.resize(count);
  return records;
}

struct BuiltBatch {
  SilverBatchStats stats;
  std::string silver_batch;
  std::string silver_rows;  // "" when silver_batch is a join (silver_rows dropped)
  std::string quarantine_batch;
  std::string restricted_batch;
};

// Builds `batches` consecutive batches of `records` on a fresh lake with
// processor.threads = `threads`.
std::vector<BuiltBatch> BuildBatches(const std::vector<std::vector<log::LogRecord>>& batches, int threads,
                                     const std::string& key_file) {
  TempDir lake;
  auto config = Config::Parse(R"([[contracts]]
event = "Checkout Step"
version = 3
schema = '''{"properties":{"step":{"type":"integer"}}}'''
[[contracts]]
event = "product_added"
version = 1
schema = '''{"properties":{"product_id":{"type":"string"},"price":{"type":"number"},"quantity":{"type":"integer"}}}'''
)");
  EXPECT_TRUE(config.ok()) << config.status();
  config->Set("privacy.key_file", key_file);
  config->Set("silver.max_prop_columns", "30");  // reached: which columns exist depends on the order
  config->Set("processor.threads", std::to_string(threads));
  auto stage = SilverStage::Open(*config, lake.path());
  EXPECT_TRUE(stage.ok()) << stage.status();
  EXPECT_EQ((*stage)->options().threads, threads);
  auto db = engine::Database::Open();
  EXPECT_TRUE(db.ok()) << db.status();
  auto conn = (*db)->Connect();
  EXPECT_TRUE(conn.ok()) << conn.status();
  auto dump = [&](const std::string& sql) -> std::string {
    auto r = (*conn)->Query(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status();
    return r.ok() ? r->ToCsv() : "";
  };
  delta::Schema schema = SilverEventsSchema();
  std::vector<BuiltBatch> out;
  for (size_t b = 0; b < batches.size(); b++) {
    int64_t undecodable = 0;
    EXPECT_OK(LoadBronzeBatch(conn->get(), batches[b], &undecodable));
    auto stats = (*stage)->BuildBatch(conn->get(), batches[b], static_cast<int64_t>(b), b == 0 ? nullptr : &schema);
    EXPECT_TRUE(stats.ok()) << stats.status();
    if (!stats.ok()) return out;
    BuiltBatch built;
    built.stats = *stats;
    built.silver_batch = dump("SELECT * FROM silver_batch ORDER BY log_partition, log_offset");
    if (stats->new_prop_columns.empty()) {
      built.silver_rows = dump("SELECT * FROM silver_rows ORDER BY log_partition, log_offset");
    }
    built.quarantine_batch = dump("SELECT * FROM quarantine_batch ORDER BY log_partition, log_offset");
    built.restricted_batch = dump("SELECT * FROM restricted_batch ORDER BY received_at, event_id, field, value");
    EXPECT_OK((*stage)->CommitState(*stats));
    for (const auto& f : stats->new_prop_columns) schema.fields.push_back(f);
    out.push_back(std::move(built));
  }
  return out;
}

// Parse and enrich run on processor.threads threads; everything that depends on
// the log order (dedup, lateness, prop_ columns and their types, the column
// cap, stats) must come out exactly as on one thread.
TEST(SilverBuildTest, SameTablesAndStatsOnOneOrSeveralThreads) {
  std::vector<log::LogRecord> all = MixedTraffic(21000);
  // Three batches: new prop columns, then a batch into existing ones, then a
  // small one (fewer chunks than threads).
  std::vector<std::vector<log::LogRecord>> batches(3);
  batches[0].assign(all.begin(), all.begin() + 10500);
  batches[1].assign(all.begin() + 10500, all.begin() + 20500);
  batches[2].assign(all.begin() + 20500, all.end());
  TempDir keys;
  const std::string key_file = JoinPath(keys.path(), "pii.key");
  std::vector<BuiltBatch> one = BuildBatches(batches, 1, key_file);
  ASSERT_EQ(one.size(), batches.size());
  // The traffic exercises what depends on the order.
  const SilverBatchStats& s = one[0].stats;
  EXPECT_GT(s.silver_rows, 9000);
  EXPECT_GT(s.duplicates, 100);
  EXPECT_GT(s.late, 10);
  EXPECT_GT(s.future_dated, 0);
  EXPECT_GT(s.pii_redactions, 100);
  EXPECT_GT(s.prop_type_conflicts, 0);
  EXPECT_GT(s.restricted_rows, 10);
  EXPECT_EQ(s.new_prop_columns.size(), 30u);
  for (const char* code : {"undecodable", "invalid_json", "unknown_protocol", "schema_violation", "no_identity",
                           "missing_event", "unknown_type", "bad_timestamp"}) {
    EXPECT_GT(s.quarantine_by_code.count(code), 0u) << code;
  }
  EXPECT_GT(one[1].stats.duplicates, 0);  // repeats of batch 0's events
  EXPECT_FALSE(one[1].silver_rows.empty());

  for (int threads : {2, 4}) {
    std::vector<BuiltBatch> many = BuildBatches(batches, threads, key_file);
    ASSERT_EQ(many.size(), batches.size());
    for (size_t b = 0; b < batches.size(); b++) {
      SCOPED_TRACE("threads " + std::to_string(threads) + ", batch " + std::to_string(b));
      const SilverBatchStats& x = one[b].stats;
      const SilverBatchStats& y = many[b].stats;
      EXPECT_EQ(x.silver_rows, y.silver_rows);
      EXPECT_EQ(x.quarantined, y.quarantined);
      EXPECT_EQ(x.duplicates, y.duplicates);
      EXPECT_EQ(x.future_dated, y.future_dated);
      EXPECT_EQ(x.late, y.late);
      EXPECT_EQ(x.pii_redactions, y.pii_redactions);
      EXPECT_EQ(x.prop_type_conflicts, y.prop_type_conflicts);
      EXPECT_EQ(x.newest_received_at_us, y.newest_received_at_us);
      EXPECT_EQ(x.restricted_rows, y.restricted_rows);
      EXPECT_EQ(x.quarantine_by_code, y.quarantine_by_code);
      ASSERT_EQ(x.new_prop_columns.size(), y.new_prop_columns.size());
      for (size_t i = 0; i < x.new_prop_columns.size(); i++) {
        EXPECT_EQ(x.new_prop_columns[i].name, y.new_prop_columns[i].name);
        EXPECT_EQ(x.new_prop_columns[i].type, y.new_prop_columns[i].type);
      }
      EXPECT_TRUE(one[b].silver_batch == many[b].silver_batch);  // (not printed: megabytes)
      EXPECT_TRUE(one[b].silver_rows == many[b].silver_rows);
      EXPECT_TRUE(one[b].quarantine_batch == many[b].quarantine_batch);
      EXPECT_TRUE(one[b].restricted_batch == many[b].restricted_batch);
    }
  }
}

}  // namespace
}  // namespace clicklake::pipeline

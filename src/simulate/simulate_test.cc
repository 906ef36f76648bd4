#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "common/test_util.h"
#include "simulate/json_writer.h"
#include "simulate/simulator.h"

namespace clicklake::simulate {
namespace {

constexpr int64_t kStart = 1764547200000000;  // 2025-12-01T00:00:00Z
constexpr int64_t kMinute = 60000000;

SimulatorOptions BaseOptions() {
  SimulatorOptions o;
  o.users = 50;
  o.rate = 200;
  o.time_scale = 60;
  o.seed = 7;
  o.start_time_us = kStart;
  return o;
}

std::vector<GeneratedBatch> Generate(const SimulatorOptions& o, int batches) {
  TrafficGenerator gen(o);
  std::vector<GeneratedBatch> out;
  for (int i = 0; i < batches; ++i) out.push_back(gen.NextBatch());
  return out;
}

std::vector<EventRecord> AllEvents(const std::vector<GeneratedBatch>& batches) {
  std::vector<EventRecord> all;
  for (const auto& b : batches) all.insert(all.end(), b.events.begin(), b.events.end());
  return all;
}

bool HasFault(const EventRecord& e, std::string_view prefix) {
  return std::any_of(e.faults.begin(), e.faults.end(), [&](const std::string& f) { return f.rfind(prefix, 0) == 0; });
}

// A parsed copy of one event's JSON.
struct Parsed {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  explicit Parsed(const std::string& json) {
    auto r = parser.parse(json);
    EXPECT_FALSE(r.error()) << simdjson::error_message(r.error()) << ": " << json;
    if (!r.error()) root = r.value();
  }
  bool Has(std::string_view pointer) { return !root.at_pointer(pointer).error(); }
  std::string Str(std::string_view pointer) {
    auto r = root.at_pointer(pointer).get_string();
    return r.error() ? std::string() : std::string(r.value());
  }
};

TEST(JsonWriterTest, EscapesAndNests) {
  JsonWriter w;
  w.BeginObject();
  w.Field("q", "say \"hi\"\\ \n\t\x01 é");
  w.Key("a").BeginArray().Int(-3).Double(0.1).Money(59.970000000000006).Bool(true).Null().EndArray();
  w.Key("o").BeginObject().EndObject();
  w.EndObject();
  EXPECT_EQ(w.str(), "{\"q\":\"say \\\"hi\\\"\\\\ \\n\\t\\u0001 é\",\"a\":[-3,0.1,59.97,true,null],\"o\":{}}");
  Parsed p(w.str());
  EXPECT_EQ(p.Str("/q"), "say \"hi\"\\ \n\t\x01 é");
}

TEST(FormatTest, IsoMillis) {
  EXPECT_EQ(FormatIsoMillis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoMillis(1700000000123456), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(FormatIsoMillis(kStart), "2025-12-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoMillis(951782400000000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatIsoMillis(-1000), "1969-12-31T23:59:59.999Z");
}

TEST(TrafficGeneratorTest, DeterministicForASeed) {
  SimulatorOptions o = BaseOptions();
  o.duplicate_rate = o.late_rate = o.out_of_order_rate = o.malformed_rate = o.pii_rate = o.clock_skew_rate = 0.05;
  auto a = Generate(o, 60), b = Generate(o, 60);
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].Body(a[i].DefaultSentAtMicros()), b[i].Body(b[i].DefaultSentAtMicros())) << "batch " << i;
  }
  o.seed = 8;
  auto c = Generate(o, 5);
  EXPECT_NE(a[0].Body(0), c[0].Body(0));
}

TEST(TrafficGeneratorTest, BodiesParseAndEventsAreWellFormed) {
  SimulatorOptions o = BaseOptions();
  o.duplicate_rate = o.late_rate = o.out_of_order_rate = o.malformed_rate = o.pii_rate = o.clock_skew_rate = 0.05;
  auto batches = Generate(o, 200);
  simdjson::dom::parser parser;
  std::set<std::string> types;
  for (const auto& b : batches) {
    ASSERT_FALSE(b.events.empty());
    std::string body = b.Body(b.DefaultSentAtMicros());
    simdjson::dom::element root;
    ASSERT_EQ(parser.parse(body).get(root), simdjson::SUCCESS) << body;
    simdjson::dom::array arr;
    ASSERT_EQ(root["batch"].get(arr), simdjson::SUCCESS);
    EXPECT_EQ(arr.size(), b.events.size());
    std::string_view sent_at;
    ASSERT_EQ(root["sentAt"].get(sent_at), simdjson::SUCCESS);
    int64_t sent_us = 0;
    ASSERT_TRUE(ParseTimestampMicros(sent_at, &sent_us));
    EXPECT_EQ(sent_us, (b.DefaultSentAtMicros() + b.clock_offset_us) / 1000 * 1000);
    for (const EventRecord& e : b.events) {
      Parsed p(e.json);
      types.insert(e.type);
      EXPECT_EQ(p.Str("/messageId"), e.message_id);
      EXPECT_EQ(p.Str("/type"), e.type);
      EXPECT_EQ(p.Str("/timestamp"), e.timestamp);
      EXPECT_TRUE(p.Has("/context/library/name"));
      if (HasFault(e, "malformed:")) continue;
      EXPECT_TRUE(!e.user_id.empty() || !e.anonymous_id.empty()) << e.json;
      EXPECT_EQ(p.Str("/anonymousId"), e.anonymous_id);
      EXPECT_EQ(p.Str("/userId"), e.user_id);
      if (e.type == "track") {
        EXPECT_EQ(p.Str("/event"), e.event) << e.json;
      }
      int64_t ts = 0;
      ASSERT_TRUE(ParseTimestampMicros(e.timestamp, &ts)) << e.timestamp;
      EXPECT_EQ(ts, (e.true_time_us + b.clock_offset_us) / 1000 * 1000);
      if (p.Str("/context/library/name") == "analytics-node") {
        EXPECT_EQ(e.event, "Order Shipped");  // server-side: userId only, no browser context
        EXPECT_FALSE(e.user_id.empty());
        EXPECT_TRUE(e.anonymous_id.empty());
        continue;
      }
      EXPECT_TRUE(p.Has("/context/userAgent"));
      EXPECT_TRUE(p.Has("/context/ip"));
    }
  }
  EXPECT_EQ(types, (std::set<std::string>{"track", "page", "screen", "identify", "group", "alias"}));
}

// Sessions (30 min gap on the true time, per anonymousId) keep the funnel in order.
TEST(TrafficGeneratorTest, FunnelOrderHoldsWithinSessions) {
  SimulatorOptions o = BaseOptions();
  auto events = AllEvents(Generate(o, 1500));
  std::map<std::string, std::vector<const EventRecord*>> by_device;
  for (const auto& e : events) by_device[e.anonymous_id].push_back(&e);
  std::map<std::string, int> steps;
  int sessions = 0, multi_session_devices = 0;
  for (auto& [anon, evs] : by_device) {
    std::stable_sort(evs.begin(), evs.end(),
                     [](const EventRecord* a, const EventRecord* b) { return a->true_time_us < b->true_time_us; });
    std::set<std::string> viewed, added, checkout_orders;
    int device_sessions = 0;
    for (size_t i = 0; i < evs.size(); ++i) {
      const EventRecord& e = *evs[i];
      if (i == 0 || e.true_time_us - evs[i - 1]->true_time_us > 30 * kMinute) {
        viewed.clear(), added.clear(), checkout_orders.clear();
        ++device_sessions;
      }
      Parsed p(e.json);
      if (e.event == "Product Viewed") {
        viewed.insert(p.Str("/properties/product_id"));
      } else if (e.event == "Product Added") {
        EXPECT_TRUE(viewed.count(p.Str("/properties/product_id"))) << "added before viewed: " << e.json;
        added.insert(p.Str("/properties/product_id"));
      } else if (e.event == "Checkout Started") {
        EXPECT_FALSE(added.empty()) << "checkout without an add: " << e.json;
        checkout_orders.insert(p.Str("/properties/order_id"));
      } else if (e.event == "Order Completed") {
        EXPECT_TRUE(checkout_orders.count(e.order_id)) << "order without checkout: " << e.json;
        EXPECT_TRUE(e.has_revenue);
        EXPECT_GT(e.revenue, 0);
      }
      steps[e.event] += 1;
    }
    sessions += device_sessions;
    if (device_sessions > 1) ++multi_session_devices;
  }
  EXPECT_GT(steps["Product Viewed"], steps["Product Added"]);
  EXPECT_GT(steps["Product Added"], steps["Checkout Started"]);
  EXPECT_GT(steps["Checkout Started"], steps["Order Completed"]);
  EXPECT_GT(steps["Order Completed"], 0);
  EXPECT_GT(multi_session_devices, 10) << "users should return";
  EXPECT_GT(sessions, static_cast<int>(by_device.size()));
}

TEST(TrafficGeneratorTest, RealisticMix) {
  SimulatorOptions o = BaseOptions();
  o.users = 300;
  auto events = AllEvents(Generate(o, 800));
  std::set<std::string> device_types, currencies, libraries;
  int ipv6 = 0, campaigns = 0, bots = 0, identify_with_traits = 0, experiments = 0, mobile_ua = 0, desktop_ua = 0;
  for (const auto& e : events) {
    Parsed p(e.json);
    std::string ua = p.Str("/context/userAgent");
    if (ua.find("bot") != std::string::npos) ++bots;
    if (ua.find("Mobile") != std::string::npos) ++mobile_ua;
    if (ua.find("Windows NT") != std::string::npos || ua.find("Macintosh") != std::string::npos) ++desktop_ua;
    if (p.Str("/context/ip").find(':') != std::string::npos) ++ipv6;
    if (p.Has("/context/campaign/source")) ++campaigns;
    if (p.Has("/context/device/type")) device_types.insert(p.Str("/context/device/type"));
    libraries.insert(p.Str("/context/library/name"));
    if (e.type == "identify" && p.Has("/traits/email") && p.Has("/traits/plan") && p.Has("/traits/created_at")) {
      ++identify_with_traits;
      EXPECT_FALSE(e.user_id.empty());
      EXPECT_FALSE(e.anonymous_id.empty());
    }
    if (p.Has("/properties/experiment_id") && p.Has("/properties/experiment_variant")) ++experiments;
    if (e.event == "Order Completed") {
      currencies.insert(e.currency);
      // revenue = sum(price × quantity) when `revenue` is present.
      double sum = 0;
      simdjson::dom::array products;
      ASSERT_EQ(p.root.at_pointer("/properties/products").get(products), simdjson::SUCCESS);
      for (auto prod : products) sum += double(prod["price"]) * double(int64_t(prod["quantity"]));
      if (p.Has("/properties/revenue")) {
        EXPECT_NEAR(e.revenue, sum, 0.005);
      } else {
        EXPECT_GT(e.revenue, sum);  // total includes tax (and shipping)
      }
    }
  }
  EXPECT_GT(ipv6, 0);
  EXPECT_GT(campaigns, 0);
  EXPECT_GT(bots, 0);
  EXPECT_GT(identify_with_traits, 0);
  EXPECT_GT(experiments, 0);
  EXPECT_GT(mobile_ua, 0);
  EXPECT_GT(desktop_ua, 0);
  EXPECT_EQ(device_types, (std::set<std::string>{"ios", "android"}));
  EXPECT_TRUE(currencies.count("USD"));
  EXPECT_TRUE(currencies.count("EUR"));
  EXPECT_TRUE(libraries.count("analytics.js"));
}

TEST(TrafficGeneratorTest, DuplicatesReuseMessageIdsAndFollowTheirOriginal) {
  SimulatorOptions o = BaseOptions();
  o.duplicate_rate = 0.1;
  auto batches = Generate(o, 200);
  std::map<std::string, std::pair<int64_t, std::string>> first;  // id → (batch, json)
  int dups = 0;
  for (const auto& b : batches) {
    for (const auto& e : b.events) {
      if (e.duplicate_of.empty()) {
        EXPECT_TRUE(first.emplace(e.message_id, std::make_pair(b.sequence, e.json)).second)
            << "messageId reused without being a duplicate: " << e.message_id;
        continue;
      }
      ++dups;
      EXPECT_EQ(e.duplicate_of, e.message_id);
      EXPECT_TRUE(HasFault(e, "duplicate"));
      auto it = first.find(e.message_id);
      ASSERT_NE(it, first.end());
      EXPECT_LT(it->second.first, b.sequence);
      EXPECT_EQ(it->second.second, e.json) << "a duplicate is the same bytes";
      EXPECT_TRUE(std::count(b.after_batches.begin(), b.after_batches.end(), it->second.first));
    }
  }
  EXPECT_GT(dups, 100);
}

TEST(TrafficGeneratorTest, MalformedEventsAreMalformedAsIntended) {
  SimulatorOptions o = BaseOptions();
  o.malformed_rate = 0.2;
  auto events = AllEvents(Generate(o, 100));
  std::map<std::string, int> kinds;
  for (const auto& e : events) {
    Parsed p(e.json);
    int64_t ts = 0;
    if (!HasFault(e, "malformed:")) {
      EXPECT_TRUE(p.Has("/anonymousId") || p.Has("/userId"));
      if (e.type == "track") {
        EXPECT_TRUE(p.Has("/event"));
      }
      EXPECT_TRUE(ParseTimestampMicros(p.Str("/timestamp"), &ts));
      continue;
    }
    std::string kind = e.faults.back().substr(10);
    kinds[kind]++;
    if (kind == "no_identity") {
      EXPECT_FALSE(p.Has("/userId"));
      EXPECT_FALSE(p.Has("/anonymousId"));
      EXPECT_TRUE(e.user_id.empty() && e.anonymous_id.empty());
    } else if (kind == "missing_event") {
      EXPECT_EQ(p.Str("/type"), "track");
      EXPECT_FALSE(p.Has("/event"));
      EXPECT_TRUE(e.event.empty());
    } else if (kind == "bad_timestamp") {
      EXPECT_TRUE(p.Has("/timestamp"));
      EXPECT_FALSE(ParseTimestampMicros(p.Str("/timestamp"), &ts)) << p.Str("/timestamp");
      EXPECT_EQ(p.Str("/timestamp"), e.timestamp);
    } else if (kind == "wrong_types") {
      EXPECT_EQ(p.Str("/event"), "Product Added");
      EXPECT_TRUE(p.root.at_pointer("/properties/price").is_string());
      EXPECT_TRUE(p.root.at_pointer("/properties/quantity").is_string());
      EXPECT_TRUE(p.root.at_pointer("/properties/product_id").is_int64());
    } else {
      ADD_FAILURE() << "unknown kind " << kind;
    }
  }
  EXPECT_EQ(kinds.size(), 4u);
}

TEST(TrafficGeneratorTest, ClockSkewShiftsTimestampAndSentAtTogether) {
  SimulatorOptions o = BaseOptions();
  o.clock_skew_rate = 0.3;
  auto batches = Generate(o, 200);
  int skewed_batches = 0;
  for (const auto& b : batches) {
    if (b.clock_offset_us == 0) {
      for (const auto& e : b.events) EXPECT_FALSE(HasFault(e, "skewed"));
      continue;
    }
    ++skewed_batches;
    EXPECT_GE(std::abs(b.clock_offset_us), 5 * kMinute);
    const int64_t received = b.DefaultSentAtMicros() + 250000;  // 250 ms in flight
    Parsed body(b.Body(b.DefaultSentAtMicros()));
    int64_t sent_at = 0;
    ASSERT_TRUE(ParseTimestampMicros(body.Str("/sentAt"), &sent_at));
    for (const auto& e : b.events) {
      EXPECT_TRUE(HasFault(e, "skewed"));
      EXPECT_EQ(e.anonymous_id, b.events[0].anonymous_id) << "a skewed batch is one client's";
      int64_t ts = 0;
      ASSERT_TRUE(ParseTimestampMicros(e.timestamp, &ts));
      // The Segment rule recovers the true time (to the millisecond).
      int64_t event_ts = received - (sent_at - ts);
      EXPECT_LE(std::abs(event_ts - (e.true_time_us + 250000)), 2000);
    }
  }
  EXPECT_GT(skewed_batches, 10);
}

TEST(TrafficGeneratorTest, LateAndPiiAndOutOfOrder) {
  SimulatorOptions o = BaseOptions();
  o.late_rate = 0.05;
  o.pii_rate = 0.05;
  o.out_of_order_rate = 0.05;
  auto batches = Generate(o, 200);
  int late = 0, very_late = 0, pii = 0, held = 0;
  const std::regex pii_re(R"([\w.+-]+@[\w-]+\.[\w.]+|\+1 415-555-\d{4}|\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{3,4}|\d{15})");
  for (const auto& b : batches) {
    int64_t newest = 0;
    for (const auto& e : b.events) {
      if (!HasFault(e, "late")) newest = std::max(newest, e.true_time_us);
    }
    for (const auto& e : b.events) {
      if (HasFault(e, "late")) {
        ++late;
        EXPECT_GE(newest - e.true_time_us, 55 * kMinute) << "late means hours old";
        if (newest - e.true_time_us > 72 * 60 * kMinute) ++very_late;
      }
      if (HasFault(e, "pii")) {
        ++pii;
        Parsed p(e.json);
        std::string props = simdjson::to_string(p.root["properties"]);
        EXPECT_TRUE(std::regex_search(props, pii_re)) << props;
      }
      if (HasFault(e, "out_of_order")) ++held;
    }
  }
  EXPECT_GT(late, 50);
  EXPECT_GT(very_late, 0);
  EXPECT_GT(pii, 50);
  EXPECT_GT(held, 50);
}

// ---- over HTTP ----

// A collector stand-in: 503 + Retry-After for the first `fail_first` requests,
// 400 for requests whose number is in `reject`, else 200; keeps what it accepted.
// Each answer takes at least `ack_delay` (a durable collector's flush).
class FakeCollector {
 public:
  FakeCollector(int fail_first, std::set<int> reject, std::chrono::milliseconds ack_delay = {})
      : fail_first_(fail_first), reject_(std::move(reject)) {
    server_.new_task_queue = [] { return new httplib::ThreadPool(64); };
    server_.Post("/v1/batch", [this, ack_delay](const httplib::Request& req, httplib::Response& res) {
      if (ack_delay.count() > 0) std::this_thread::sleep_for(ack_delay);
      int n = requests_.fetch_add(1) + 1;
      if (req.get_header_value("Authorization") != "Basic a2V5LTE6") {  // base64("key-1:")
        res.status = 401;
        return;
      }
      if (n <= fail_first_) {
        res.status = 503;
        res.set_header("Retry-After", "0");
        return;
      }
      if (reject_.count(n)) {
        res.status = 400;
        return;
      }
      simdjson::dom::parser parser;
      simdjson::dom::element root;
      if (parser.parse(req.body).get(root) != simdjson::SUCCESS) {
        res.status = 400;
        return;
      }
      const int64_t received_us = SystemClock()->NowMicros();
      int64_t sent_at_us = 0;
      EXPECT_TRUE(ParseTimestampMicros(root["sentAt"].get_string().value(), &sent_at_us));
      std::lock_guard lock(mu_);
      for (auto e : root["batch"].get_array()) {
        std::string id(e["messageId"].get_string().value());
        ids_.push_back(id);
        // The Segment rule: event_ts = received_at − (sentAt − timestamp).
        int64_t ts = 0;
        if (ParseTimestampMicros(e["timestamp"].get_string().value(), &ts)) {
          corrected_[id] = received_us - (sent_at_us - ts);
        }
      }
      res.status = 200;
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeCollector() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> ids() {
    std::lock_guard lock(mu_);
    return ids_;
  }
  int requests() const { return requests_.load(); }
  std::map<std::string, int64_t> corrected() {
    std::lock_guard lock(mu_);
    return corrected_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  const int fail_first_;
  const std::set<int> reject_;
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::vector<std::string> ids_;             // GUARDED_BY(mu_)
  std::map<std::string, int64_t> corrected_;  // GUARDED_BY(mu_) messageId → event_ts (last copy)
};

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(RunSimulatorTest, RetriesUntilAcceptedAndRecordsEachEventOnce) {
  FakeCollector collector(/*fail_first=*/6, {});
  testing::TempDir dir;
  SimulatorOptions o;
  o.url = collector.url();
  o.write_key = "key-1";
  o.rate = 400;
  o.duration_s = 1.5;
  o.duplicate_rate = 0.05;
  o.gzip = true;
  o.clock_skew_rate = 0.2;
  o.out_path = dir.Sub("out.jsonl");
  std::ostringstream progress;
  ASSERT_OK_AND_ASSIGN(SimulatorReport r, RunSimulator(o, progress));
  EXPECT_EQ(r.batches_failed, 0);
  EXPECT_EQ(r.status_counts[503], 6);
  EXPECT_GE(r.retries, 6);
  EXPECT_GT(r.events_sent, 300);

  std::vector<std::string> received = collector.ids();
  std::vector<std::string> lines = ReadLines(o.out_path);
  ASSERT_EQ(static_cast<int64_t>(lines.size()), r.events_sent);
  ASSERT_EQ(lines.size(), received.size());
  std::multiset<std::string> out_ids;
  int64_t dups = 0, skewed = 0;
  std::map<std::string, int64_t> corrected = collector.corrected();
  simdjson::dom::parser parser;
  for (const std::string& line : lines) {
    simdjson::dom::element rec;
    ASSERT_EQ(parser.parse(line).get(rec), simdjson::SUCCESS) << line;
    out_ids.insert(std::string(rec["messageId"].get_string().value()));
    EXPECT_TRUE(rec["acked"].get_bool().value());
    if (!rec["duplicate_of"].error()) ++dups;
    std::string id(rec["messageId"].get_string().value());
    std::string faults = simdjson::to_string(rec["fault"]);
    int64_t true_time = 0, sent_at = 0;
    ASSERT_TRUE(ParseTimestampMicros(rec["true_time"].get_string().value(), &true_time));
    ASSERT_TRUE(ParseTimestampMicros(rec["sentAt"].get_string().value(), &sent_at));
    // Nothing from the future: user time is behind the (unskewed) send time.
    if (faults.find("skewed") == std::string::npos) {
      EXPECT_LT(true_time, sent_at);
    } else {
      ++skewed;
    }
    // Skewed or not, the Segment rule gives back the true time within latency.
    if (rec["duplicate_of"].error()) {
      EXPECT_NEAR(static_cast<double>(corrected.at(id)), static_cast<double>(true_time), 2e6) << line;
    }
    EXPECT_EQ(std::string(rec["payload"]["messageId"].get_string().value()),
              std::string(rec["messageId"].get_string().value()));
  }
  EXPECT_EQ(out_ids, std::multiset<std::string>(received.begin(), received.end()));
  EXPECT_EQ(dups, r.duplicates_sent);
  // Every event arrived exactly once, apart from the deliberate duplicates.
  EXPECT_EQ(std::set<std::string>(received.begin(), received.end()).size(), received.size() - dups);
  EXPECT_GT(skewed, 0);
  EXPECT_NE(progress.str().find("simulate:"), std::string::npos);
}

TEST(RunSimulatorTest, OutHoldsOnlyAcknowledgedBatches) {
  FakeCollector collector(0, {2, 5, 9});
  testing::TempDir dir;
  SimulatorOptions o;
  o.url = collector.url();
  o.write_key = "key-1";
  o.rate = 400;
  o.duration_s = 1;
  o.concurrency = 1;
  o.out_path = dir.Sub("out.jsonl");
  std::ostringstream progress;
  ASSERT_OK_AND_ASSIGN(SimulatorReport r, RunSimulator(o, progress));
  EXPECT_EQ(r.batches_failed, 3);
  EXPECT_EQ(r.status_counts[400], 3);
  std::vector<std::string> received = collector.ids();
  std::vector<std::string> lines = ReadLines(o.out_path);
  ASSERT_EQ(lines.size(), received.size());
  std::set<std::string> out_ids;
  for (const std::string& line : lines) {
    simdjson::dom::parser parser;
    out_ids.insert(std::string(parser.parse(line)["messageId"].get_string().value()));
  }
  EXPECT_EQ(out_ids, std::set<std::string>(received.begin(), received.end()));
  EXPECT_EQ(r.events_sent + r.events_failed, static_cast<int64_t>(received.size()) + r.events_failed);
}

TEST(RunSimulatorTest, GivesUpWhenNothingListens) {
  // A port that was free a moment ago: bind, read it back, close.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  SimulatorOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(port);
  o.write_key = "key-1";
  o.duration_s = 0.5;
  o.drain_timeout_s = 1;
  std::ostringstream progress;
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(SimulatorReport r, RunSimulator(o, progress));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10);
  EXPECT_EQ(r.batches_sent, 0);
  EXPECT_GT(r.batches_failed, 0);
  EXPECT_GT(r.status_counts[0], 0);  // network errors
  EXPECT_GT(r.retries, 0);
}

TEST(RunSimulatorTest, AutoConcurrencyCarriesTheRate) {
  EXPECT_EQ(AutoConcurrency(200, 20), 4);  // the old default at the default rate
  EXPECT_EQ(AutoConcurrency(10000, 20), 100);
  EXPECT_EQ(AutoConcurrency(20000, 100), 40);
  EXPECT_EQ(AutoConcurrency(1e7, 1), 256);
  EXPECT_EQ(AutoConcurrency(1, 10000), 4);
}

// With acks that take 50 ms, 2 connections of 10-event batches carry at most
// 400 events/s: the run says so. With the default (chosen from the rate) the
// same collector gets the rate asked for.
TEST(RunSimulatorTest, SlowAcksNeedMoreConnections) {
  FakeCollector collector(0, {}, std::chrono::milliseconds(50));
  SimulatorOptions o;
  o.url = collector.url();
  o.write_key = "key-1";
  o.users = 2000;
  o.rate = 2000;
  o.batch_size = 10;
  o.duration_s = 2;
  o.duplicate_rate = 0.02;
  o.late_rate = 0.01;
  o.out_of_order_rate = 0.02;
  o.concurrency = 2;
  std::ostringstream slow;
  ASSERT_OK_AND_ASSIGN(SimulatorReport r1, RunSimulator(o, slow));
  EXPECT_LT(r1.events_sent, 0.5 * o.rate * o.duration_s);
  EXPECT_NE(slow.str().find("raise --concurrency"), std::string::npos) << slow.str();

  o.concurrency = 0;  // AutoConcurrency(2000, 10) = 40 connections
  std::ostringstream fast;
  ASSERT_OK_AND_ASSIGN(SimulatorReport r2, RunSimulator(o, fast));
  EXPECT_NE(fast.str().find("40 connections"), std::string::npos) << fast.str();
  EXPECT_GE(r2.events_sent, 0.95 * o.rate * o.duration_s);
  EXPECT_EQ(fast.str().find("raise --concurrency"), std::string::npos) << fast.str();
  EXPECT_EQ(r2.batches_failed, 0);
  EXPECT_GT(r2.duplicates_sent, 0);
}

TEST(RunSimulatorTest, RejectsUnusableOptions) {
  std::ostringstream progress;
  SimulatorOptions o;
  o.url = "http://127.0.0.1:1";
  EXPECT_STATUS(RunSimulator(o, progress), kInvalidArgument);  // no write key
  o.write_key = "k";
  o.url = "127.0.0.1:8080";
  EXPECT_STATUS(RunSimulator(o, progress), kInvalidArgument);
  o.url = "http://127.0.0.1:1";
  o.concurrency = -1;
  EXPECT_STATUS(RunSimulator(o, progress), kInvalidArgument);
  o.concurrency = 257;
  EXPECT_STATUS(RunSimulator(o, progress), kInvalidArgument);
  o.concurrency = 0;
  o.out_path = "/nonexistent-dir/out.jsonl";
  EXPECT_STATUS(RunSimulator(o, progress), kIOError);
}

TEST(RunSimulateCommandTest, FlagsAndExitCodes) {
  std::ostringstream out, err;
  EXPECT_EQ(RunSimulateCommand({"--help"}, out, err), 0);
  EXPECT_NE(out.str().find("--write-key"), std::string::npos);
  EXPECT_EQ(RunSimulateCommand({"--url", "http://127.0.0.1:1"}, out, err), 2);  // no write key
  EXPECT_EQ(RunSimulateCommand({"--url", "ftp://x", "--write-key", "k"}, out, err), 2);
  EXPECT_EQ(RunSimulateCommand({"--url", "http://127.0.0.1:1", "--write-key", "k", "--faults", "2"}, out, err), 2);

  FakeCollector collector(0, {});
  testing::TempDir dir;
  std::ostringstream out2, err2;
  int rc = RunSimulateCommand({"simulate", "--url", collector.url(), "--write-key", "key-1", "--duration", "1",
                               "--rate", "100", "--faults", "0.05", "--seed", "3", "--out", dir.Sub("o.jsonl")},
                              out2, err2);
  EXPECT_EQ(rc, 0) << err2.str();
  EXPECT_NE(out2.str().find("simulate: done"), std::string::npos) << out2.str();
  EXPECT_EQ(ReadLines(dir.Sub("o.jsonl")).size(), collector.ids().size());

  // A wrong key: every batch is refused with 401, exit code 1.
  std::ostringstream out3, err3;
  EXPECT_EQ(RunSimulateCommand({"--url", collector.url(), "--write-key", "wrong", "--duration", "0.3"}, out3, err3), 1);
}

}  // namespace
}  // namespace clicklake::simulate

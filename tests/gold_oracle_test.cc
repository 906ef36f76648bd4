// Gold oracle test: simulated traffic goes through the real log and processor
// (Bronze → Silver → Gold, several micro-batches); the expected Gold numbers are
// computed here, from the simulator's record of what it sent, by plain loops
// that share no code with the pipeline (DESIGN.md §6 read literally): event
// time, duplicates, identity, sessions, funnels, revenue, SCD2 user versions and
// point-in-time user features. Every number must match.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/raw_event.h"
#include "common/test_util.h"
#include "delta/table.h"
#include "engine/engine.h"
#include "log/event_log.h"
#include "pipeline/pipeline.h"
#include "simulate/simulator.h"

namespace clicklake {
namespace {

using clicklake::testing::TempDir;

constexpr int64_t kMinute = 60'000'000;
constexpr int64_t kDay = 86'400'000'000;
constexpr int64_t kSessionTimeout = 30 * kMinute;
constexpr int64_t kNetworkDelay = 80'000;  // received_at = sent + 80 ms

// "2024-05-01T10:00:00.123Z" → µs since the epoch (-1 when not that shape).
int64_t ParseIsoMillis(const std::string& s) {
  struct tm tm = {};
  int ms = 0;
  if (sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
             &tm.tm_min, &tm.tm_sec, &ms) != 7)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1'000'000 + ms * 1000LL;
}

std::string DateOf(int64_t us) {
  time_t secs = static_cast<time_t>(us / 1'000'000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[16];
  strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

int64_t DayNumber(int64_t us) { return us / kDay; }

// "Product Viewed" → "product_viewed" (the simulator only uses Title Case words).
std::string SnakeCase(const std::string& name) {
  std::string out;
  for (char c : name) out.push_back(c == ' ' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

struct Event {
  std::string id, type, name, user_id, anonymous_id, user_key;
  int64_t ts = 0;
  bool activity = false;
  double revenue = 0;
  bool has_revenue = false;
  std::map<std::string, std::string> traits;  // identify: tracked traits present
};

struct Session {
  std::string user_key;
  int64_t start = 0, end = 0;
  std::vector<const Event*> events;  // activity events, in order
  double revenue = 0;
  bool converted = false;
};

class GoldOracleTest : public ::testing::Test {
 protected:
  // Sends `batches` simulated batches through the log, a micro-batch after every
  // `per_batch` of them, and records the oracle's input.
  void RunPipeline(int batches, int per_batch) {
    Config log_config;
    log_config.Set("lake.dir", lake_.path());
    log_config.Set("log.partitions", "3");
    ASSERT_OK_AND_ASSIGN(auto log, log::OpenEventLog(log_config));
    pipeline::PipelineOptions options;
    options.lake_dir = lake_.path();
    ASSERT_OK_AND_ASSIGN(options.config, Config::Parse(R"([[contracts]]
event = "product_added"
version = 1
schema = '''{"properties":{"product_id":{"type":"string"},"price":{"type":"number"},"quantity":{"type":"integer"}}}'''
)"));
    options.config.Set("privacy.key_file", JoinPath(key_dir_.path(), "pii.key"));
    options.config.Set("silver.quarantine_min_batch", "1000000");
    ASSERT_OK_AND_ASSIGN(auto runner, pipeline::MicroBatchRunner::Create(options, log.get()));

    simulate::SimulatorOptions so;
    so.users = 60;
    so.seed = 20261130;
    so.start_time_us = 1714521600000000LL;  // 2024-05-01T00:00:00Z
    so.duplicate_rate = 0.03;
    so.malformed_rate = 0.01;
    so.pii_rate = 0.01;
    so.out_of_order_rate = 0.05;
    so.clock_skew_rate = 0.15;
    so.rate = 1;  // with time_scale: ~1,800 events per simulated day, sessions hours apart
    so.time_scale = 48;
    simulate::TrafficGenerator gen(so);
    std::set<std::string> seen;
    for (int b = 0; b < batches; b++) {
      simulate::GeneratedBatch batch = gen.NextBatch();
      const int64_t sent = batch.DefaultSentAtMicros();
      const int64_t sent_at = sent + batch.clock_offset_us;  // the client's clock
      std::vector<log::LogEntry> entries;
      for (const auto& e : batch.events) {
        RawEvent raw;
        raw.received_at_us = sent + kNetworkDelay;
        raw.source = "web";
        raw.protocol = "segment";
        raw.client_ip = "203.0.113.7";
        raw.payload = batch.EventPayload(e, sent);
        log::LogEntry entry;
        entry.key = e.user_id.empty() ? e.anonymous_id : e.user_id;
        EncodeRawEvent(raw, &entry.value);
        entries.push_back(std::move(entry));
        if (!seen.insert(e.message_id).second) continue;  // a duplicate: the first copy wins
        bool malformed = false;
        for (const auto& f : e.faults) malformed |= f.rfind("malformed", 0) == 0;
        if (!malformed) Record(e, raw.received_at_us, sent_at);
      }
      ASSERT_OK(log->Append(std::move(entries)));
      if ((b + 1) % per_batch == 0 || b + 1 == batches) ASSERT_OK(runner->Drain());
    }
    ASSERT_OK(log->Close());
  }

  // One valid, first-seen event as the oracle sees it.
  void Record(const simulate::EventRecord& e, int64_t received_us, int64_t sent_at_us) {
    Event ev;
    ev.id = e.message_id;
    ev.type = e.type;
    ev.user_id = e.user_id;
    ev.anonymous_id = e.anonymous_id;
    simdjson::dom::parser parser;
    simdjson::dom::element doc = parser.parse(e.json);
    if (ev.type == "alias" && ev.anonymous_id.empty()) {
      std::string_view prev;
      if (doc["previousId"].get(prev) == simdjson::SUCCESS) ev.anonymous_id = std::string(prev);
    }
    // Segment's rule: received_at − (sent_at − timestamp).
    const int64_t original = ParseIsoMillis(e.timestamp);
    ASSERT_GE(original, 0) << e.timestamp;
    ev.ts = received_us - (sent_at_us - original);
    ev.activity = ev.type == "track" || ev.type == "page" || ev.type == "screen";
    if (ev.type == "track") ev.name = SnakeCase(e.event);
    if (ev.type == "page") ev.name = "page_viewed";
    if (ev.type == "screen") ev.name = "screen_viewed";
    if (e.has_revenue && ev.name == "order_completed") {
      ev.has_revenue = true;
      ev.revenue = e.revenue;
    }
    if (ev.type == "identify") {
      simdjson::dom::object traits;
      if (doc["traits"].get(traits) == simdjson::SUCCESS) {
        for (auto [key, value] : traits) {
          std::string k(key);
          if (k != "plan" && k != "country" && k != "created_at") continue;
          std::string_view v;
          if (value.get(v) == simdjson::SUCCESS) ev.traits[k] = std::string(v);
        }
      }
    }
    events_.push_back(std::move(ev));
  }

  // Identity (latest link by event time) and sessions, DESIGN.md §6.
  void ComputeOracle() {
    std::map<std::string, std::pair<std::pair<int64_t, std::string>, std::string>> links;  // anon → ((ts, id), user)
    for (const Event& e : events_) {
      if (e.user_id.empty() || e.anonymous_id.empty()) continue;
      auto key = std::make_pair(e.ts, e.id);
      auto it = links.find(e.anonymous_id);
      if (it == links.end() || it->second.first < key) links[e.anonymous_id] = {key, e.user_id};
    }
    std::map<std::string, std::vector<Event*>> by_user;
    for (Event& e : events_) {
      if (!e.user_id.empty()) {
        e.user_key = e.user_id;
      } else if (links.count(e.anonymous_id)) {
        e.user_key = links[e.anonymous_id].second;
      } else {
        e.user_key = "anon:" + e.anonymous_id;
      }
      by_user[e.user_key].push_back(&e);
    }
    for (auto& [user, list] : by_user) {
      std::sort(list.begin(), list.end(),
                [](const Event* a, const Event* b) { return std::tie(a->ts, a->id) < std::tie(b->ts, b->id); });
      Session* current = nullptr;
      for (const Event* e : list) {
        if (!e->activity) continue;
        if (current == nullptr || e->ts - current->end > kSessionTimeout) {
          sessions_.push_back(Session{});
          current = &sessions_.back();
          current->user_key = user;
          current->start = e->ts;
        }
        current->end = e->ts;
        current->events.push_back(e);
        if (e->has_revenue) current->revenue += e->revenue;
        if (e->name == "order_completed") current->converted = true;
      }
    }
  }

  engine::QueryResult Query(const std::string& sql) {
    auto db = engine::Database::Open();
    EXPECT_TRUE(db.ok());
    auto conn = (*db)->Connect();
    EXPECT_TRUE(conn.ok());
    EXPECT_OK(delta::RegisterLakeViews(conn->get(), lake_.path(), std::nullopt));
    auto r = (*conn)->Query(sql);
    EXPECT_TRUE(r.ok()) << r.status() << "\n" << sql;
    return r.ok() ? std::move(r).value() : engine::QueryResult();
  }

  TempDir lake_;
  TempDir key_dir_;
  std::vector<Event> events_;
  std::deque<Session> sessions_;
};

TEST_F(GoldOracleTest, GoldMatchesNumbersComputedFromTheSimulatorRecord) {
  RunPipeline(/*batches=*/900, /*per_batch=*/60);
  ComputeOracle();
  ASSERT_GT(events_.size(), 5000u);

  // Silver holds exactly the valid unique events (the oracle's input is right).
  EXPECT_EQ(Query("SELECT count(*) FROM silver.events").GetInt64(0, 0), static_cast<int64_t>(events_.size()));
  EXPECT_EQ(Query("SELECT count(DISTINCT session_id) FROM silver.events WHERE session_event_index IS NOT NULL")
                .GetInt64(0, 0),
            static_cast<int64_t>(sessions_.size()));

  // Sessions, revenue and conversions per session date.
  std::map<std::string, std::tuple<int64_t, double, int64_t, int64_t>> by_date;  // sessions, revenue, converted, bounces
  for (const Session& s : sessions_) {
    auto& [n, revenue, converted, bounces] = by_date[DateOf(s.start)];
    n++;
    revenue += s.revenue;
    converted += s.converted ? 1 : 0;
    bounces += s.events.size() == 1 ? 1 : 0;
  }
  ASSERT_GE(by_date.size(), 8u) << "the traffic should span more than a week";
  auto got = Query(
      "SELECT strftime(session_date, '%Y-%m-%d'), count(*), sum(revenue), count(*) FILTER (WHERE converted), "
      "count(*) FILTER (WHERE is_bounce) FROM gold.fact_session_daily GROUP BY 1 ORDER BY 1");
  ASSERT_EQ(got.row_count(), by_date.size());
  for (size_t i = 0; i < got.row_count(); i++) {
    const std::string date = got.GetString(i, 0);
    ASSERT_TRUE(by_date.count(date)) << date;
    const auto& [n, revenue, converted, bounces] = by_date[date];
    EXPECT_EQ(got.GetInt64(i, 1), n) << "sessions on " << date;
    EXPECT_NEAR(got.GetDouble(i, 2), revenue, 0.005) << "session revenue on " << date;
    EXPECT_EQ(got.GetInt64(i, 3), converted) << "converted sessions on " << date;
    EXPECT_EQ(got.GetInt64(i, 4), bounces) << "bounced sessions on " << date;
  }

  // Revenue per event date in fact_events.
  std::map<std::string, double> revenue_by_day;
  for (const Event& e : events_)
    if (e.has_revenue) revenue_by_day[DateOf(e.ts)] += e.revenue;
  auto rev = Query(
      "SELECT strftime(event_date, '%Y-%m-%d'), sum(revenue) FROM gold.fact_events WHERE revenue IS NOT NULL "
      "GROUP BY 1 ORDER BY 1");
  ASSERT_EQ(rev.row_count(), revenue_by_day.size());
  for (size_t i = 0; i < rev.row_count(); i++)
    EXPECT_NEAR(rev.GetDouble(i, 1), revenue_by_day[rev.GetString(i, 0)], 0.005) << rev.GetString(i, 0);

  // The purchase funnel: per session date and step, sessions and users that
  // reached it (steps matched in order, non-decreasing event time).
  const std::vector<std::string> steps = {"product_viewed", "product_added", "checkout_started", "order_completed"};
  std::map<std::pair<std::string, int>, std::pair<int64_t, std::set<std::string>>> funnel;
  for (const Session& s : sessions_) {
    int64_t t = INT64_MIN;
    for (size_t k = 0; k < steps.size(); k++) {
      int64_t best = INT64_MAX;
      for (const Event* e : s.events)
        if (e->name == steps[k] && e->ts >= t) best = std::min(best, e->ts);
      if (best == INT64_MAX) break;
      t = best;
      auto& cell = funnel[{DateOf(s.start), static_cast<int>(k + 1)}];
      cell.first++;
      cell.second.insert(s.user_key);
    }
  }
  int64_t purchases = 0;
  for (const auto& [key, cell] : funnel)
    if (key.second == 4) purchases += cell.first;
  ASSERT_GT(purchases, 10) << "the traffic should complete the funnel";
  auto f = Query(
      "SELECT strftime(event_date, '%Y-%m-%d'), step_index, step_name, sessions, users, conversion_from_start, "
      "conversion_from_previous FROM gold.fact_funnel_daily WHERE funnel = 'purchase' AND sessions > 0 ORDER BY 1, 2");
  ASSERT_EQ(f.row_count(), funnel.size());
  for (size_t i = 0; i < f.row_count(); i++) {
    const std::string date = f.GetString(i, 0);
    const int step = static_cast<int>(f.GetInt64(i, 1));
    ASSERT_TRUE(funnel.count({date, step})) << date << " step " << step;
    const auto& cell = funnel[{date, step}];
    EXPECT_EQ(f.GetString(i, 2), steps[static_cast<size_t>(step - 1)]);
    EXPECT_EQ(f.GetInt64(i, 3), cell.first) << date << " step " << step << " sessions";
    EXPECT_EQ(f.GetInt64(i, 4), static_cast<int64_t>(cell.second.size())) << date << " step " << step << " users";
    const double first = static_cast<double>(funnel[{date, 1}].first);
    EXPECT_NEAR(f.GetDouble(i, 5), static_cast<double>(cell.first) / first, 1e-9);
    if (step > 1) {
      const double previous = static_cast<double>(funnel[{date, step - 1}].first);
      EXPECT_NEAR(f.GetDouble(i, 6), static_cast<double>(cell.first) / previous, 1e-9);
    }
  }

  // SCD2 users: a new version whenever the merged tracked traits change.
  std::map<std::string, std::vector<const Event*>> identifies;
  for (const Event& e : events_)
    if (e.type == "identify" && !e.traits.empty()) identifies[e.user_key].push_back(&e);
  std::map<std::string, std::pair<int64_t, std::string>> versions;  // user → (versions, current plan)
  for (auto& [user, list] : identifies) {
    std::sort(list.begin(), list.end(),
              [](const Event* a, const Event* b) { return std::tie(a->ts, a->id) < std::tie(b->ts, b->id); });
    std::map<std::string, std::string> state;
    int64_t n = 0;
    for (const Event* e : list) {
      auto next = state;
      for (const auto& [k, v] : e->traits) next[k] = v;
      if (next != state || n == 0) n++;
      state = next;
    }
    versions[user] = {n, state["plan"]};
  }
  ASSERT_GT(versions.size(), 10u);
  int64_t multi = 0;
  for (const auto& [user, v] : versions) multi += v.first > 1 ? 1 : 0;
  ASSERT_GT(multi, 0) << "some users should change plan";
  auto u = Query(
      "SELECT user_key, count(*), max(plan) FILTER (WHERE is_current), count(*) FILTER (WHERE is_current), "
      "count(*) FILTER (WHERE valid_to IS NULL) FROM gold.dim_user GROUP BY 1 ORDER BY 1");
  ASSERT_EQ(u.row_count(), versions.size());
  for (size_t i = 0; i < u.row_count(); i++) {
    const std::string user = u.GetString(i, 0);
    ASSERT_TRUE(versions.count(user)) << user;
    EXPECT_EQ(u.GetInt64(i, 1), versions[user].first) << "versions of " << user;
    EXPECT_EQ(u.GetString(i, 2), versions[user].second) << "current plan of " << user;
    EXPECT_EQ(u.GetInt64(i, 3), 1);
    EXPECT_EQ(u.GetInt64(i, 4), 1);
  }

  // Point-in-time user features: for every day D from the first to the newest
  // event date, one row per user with an event in [D-29, D], from days <= D only.
  std::map<std::string, std::vector<const Event*>> by_user;
  int64_t first_day = INT64_MAX, last_day = INT64_MIN;
  for (const Event& e : events_) {
    by_user[e.user_key].push_back(&e);
    first_day = std::min(first_day, DayNumber(e.ts));
    last_day = std::max(last_day, DayNumber(e.ts));
  }
  std::map<std::string, std::vector<const Session*>> sessions_of;
  for (const Session& s : sessions_) sessions_of[s.user_key].push_back(&s);
  struct Sums {
    int64_t rows = 0, events_7d = 0, sessions_7d = 0, active_days_7d = 0, page_views_7d = 0, product_views_7d = 0,
            add_to_cart_7d = 0, checkouts_7d = 0, purchases_30d = 0, recency_days = 0, frequency_30d = 0;
    double revenue_30d = 0, avg_session_duration_7d = 0;
  };
  std::map<int64_t, Sums> features;
  for (const auto& [user, list] : by_user) {
    for (int64_t d = first_day; d <= last_day; d++) {
      std::set<int64_t> days_7, days_30;
      Sums row;
      int64_t last_active = INT64_MIN;
      for (const Event* e : list) {
        const int64_t day = DayNumber(e->ts);
        if (day > d || day < d - 29) continue;
        days_30.insert(day);
        last_active = std::max(last_active, day);
        if (e->name == "order_completed") row.purchases_30d++;
        if (e->has_revenue) row.revenue_30d += e->revenue;
        if (day < d - 6) continue;
        days_7.insert(day);
        row.events_7d++;
        row.page_views_7d += e->type == "page" || e->type == "screen" ? 1 : 0;
        row.product_views_7d += e->name == "product_viewed" ? 1 : 0;
        row.add_to_cart_7d += e->name == "product_added" ? 1 : 0;
        row.checkouts_7d += e->name == "checkout_started" ? 1 : 0;
      }
      if (days_30.empty()) continue;
      // Sessions that started in the 7 days, each as long as what is known on day D.
      double duration_total = 0;
      for (const Session* s : sessions_of[user]) {
        const int64_t day = DayNumber(s->start);
        if (day > d || day < d - 6) continue;
        row.sessions_7d++;
        int64_t end = s->start;
        for (const Event* e : s->events)
          if (DayNumber(e->ts) <= d) end = std::max(end, e->ts);
        duration_total += static_cast<double>(end - s->start) / 1e6;
      }
      if (row.sessions_7d > 0) row.avg_session_duration_7d = duration_total / static_cast<double>(row.sessions_7d);
      Sums& sum = features[d];
      sum.rows++;
      sum.events_7d += row.events_7d;
      sum.sessions_7d += row.sessions_7d;
      sum.active_days_7d += static_cast<int64_t>(days_7.size());
      sum.page_views_7d += row.page_views_7d;
      sum.product_views_7d += row.product_views_7d;
      sum.add_to_cart_7d += row.add_to_cart_7d;
      sum.checkouts_7d += row.checkouts_7d;
      sum.purchases_30d += row.purchases_30d;
      sum.revenue_30d += row.revenue_30d;
      sum.recency_days += d - last_active;
      sum.frequency_30d += static_cast<int64_t>(days_30.size());
      sum.avg_session_duration_7d += row.avg_session_duration_7d;
    }
  }
  auto fd = Query(
      "SELECT epoch(feature_date)::BIGINT // 86400, count(*), sum(events_7d), sum(sessions_7d), sum(active_days_7d), "
      "sum(page_views_7d), sum(product_views_7d), sum(add_to_cart_7d), sum(checkouts_7d), sum(purchases_30d), "
      "sum(revenue_30d), sum(recency_days), sum(frequency_30d), coalesce(sum(avg_session_duration_7d), 0) "
      "FROM gold.user_features_daily GROUP BY 1 ORDER BY 1");
  ASSERT_EQ(fd.row_count(), features.size());
  for (size_t i = 0; i < fd.row_count(); i++) {
    const int64_t d = fd.GetInt64(i, 0);
    ASSERT_TRUE(features.count(d)) << "feature day " << d;
    const Sums& want = features[d];
    const std::string day = DateOf(d * kDay);
    EXPECT_EQ(fd.GetInt64(i, 1), want.rows) << "users with features on " << day;
    EXPECT_EQ(fd.GetInt64(i, 2), want.events_7d) << "events_7d on " << day;
    EXPECT_EQ(fd.GetInt64(i, 3), want.sessions_7d) << "sessions_7d on " << day;
    EXPECT_EQ(fd.GetInt64(i, 4), want.active_days_7d) << "active_days_7d on " << day;
    EXPECT_EQ(fd.GetInt64(i, 5), want.page_views_7d) << "page_views_7d on " << day;
    EXPECT_EQ(fd.GetInt64(i, 6), want.product_views_7d) << "product_views_7d on " << day;
    EXPECT_EQ(fd.GetInt64(i, 7), want.add_to_cart_7d) << "add_to_cart_7d on " << day;
    EXPECT_EQ(fd.GetInt64(i, 8), want.checkouts_7d) << "checkouts_7d on " << day;
    EXPECT_EQ(fd.GetInt64(i, 9), want.purchases_30d) << "purchases_30d on " << day;
    EXPECT_NEAR(fd.GetDouble(i, 10), want.revenue_30d, 0.005) << "revenue_30d on " << day;
    EXPECT_EQ(fd.GetInt64(i, 11), want.recency_days) << "recency_days on " << day;
    EXPECT_EQ(fd.GetInt64(i, 12), want.frequency_30d) << "frequency_30d on " << day;
    EXPECT_NEAR(fd.GetDouble(i, 13), want.avg_session_duration_7d, 0.01) << "avg_session_duration_7d on " << day;
  }
}

}  // namespace
}  // namespace clicklake

// gold_bench: the Gold layer over a large Silver table (see README.md).
//
//  1. prepare: synthetic silver.events (sessions of activity events walking the
//     purchase funnel, identify calls with traits, campaigns, devices) and the
//     same events as Segment JSON in bronze.events, written with the Delta library;
//  2. full rebuild of every Gold table from Silver (GoldStage::Rebuild);
//  3. a 100K-event micro-batch lands in Silver (a new day, plus 10% late events
//     two days back) and Gold refreshes incrementally (GoldStage::Refresh);
//  4. the purchase funnel per day: from gold.fact_funnel_daily vs the same
//     question answered from bronze.events' JSON (parse, dedup, sessionize,
//     ordered steps). Both answers must be equal.
// Prints the times and the ratios full/incremental and bronze/gold.
//
// usage: gold_bench LAKE_DIR [EVENTS=10000000] [BATCH=100000]
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/file_system.h"
#include "delta/table.h"
#include "engine/engine.h"
#include "pipeline/bronze.h"
#include "pipeline/gold/gold.h"
#include "pipeline/silver.h"

namespace clicklake {
namespace {

constexpr int64_t kEventsPerSession = 10;
constexpr int64_t kSessionsPerUser = 10;
constexpr int kDays = 30;

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

#define CHECK_OK(expr)                                                    \
  do {                                                                    \
    ::clicklake::Status _s = ::clicklake::internal::ToStatus(expr);       \
    if (!_s.ok()) {                                                       \
      std::cerr << #expr << ": " << _s.ToString() << "\n";                \
      std::exit(1);                                                       \
    }                                                                     \
  } while (0)

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r.ok()) {
    std::cerr << what << ": " << r.status().ToString() << "\n";
    std::exit(1);
  }
  return std::move(r).value();
}

// Synthetic silver rows for sessions [first, first + count): session s belongs to
// user s % users and is that user's (s / users)-th session; sessions of one user
// are days apart, events of a session 30 s apart (so any sessionizer agrees).
// Event 0 is a page view, then product views, and the funnel steps with falling
// probability; every user's first session also has an identify call.
// `day_override` >= 0 puts every session on that day instead, late in the day
// but more than 30 minutes from any session of the base data (which start in
// the first 80,000 s of a day and last 4.5 minutes), before and after midnight.
std::string SilverRowsSql(int64_t first, int64_t count, int64_t users, int day_override) {
  const std::string start_s = day_override >= 0 ? "(82100 + h % 2200)" : "(h % 80000)";
  const std::string n = std::to_string(kEventsPerSession);
  const std::string base = "TIMESTAMP '2026-01-01 00:00:00'";
  // Spread over the days: the user's j-th session on day 3j + (0..2).
  std::string day = day_override >= 0 ? std::to_string(day_override)
                                      : "((s // " + std::to_string(users) + ") * " + std::to_string(kDays) + " // " +
                                            std::to_string(kSessionsPerUser) + " + (h // 1000) % 3)";
  return "WITH base AS (SELECT s, (hash(s) % 1000000007)::BIGINT AS h FROM range(" + std::to_string(first) + ", " +
         std::to_string(first + count) + ") t(s)), sess AS (SELECT s, h, s % " + std::to_string(users) + " AS u, " +
         day + " AS d FROM base), "
         "ev AS (SELECT sess.*, i, " + base +
         " + to_days(d::INTEGER) + to_seconds(" + start_s + "::BIGINT) + to_seconds(i * 30) AS ts, "
         "CASE WHEN i = 0 THEN 'page_viewed' WHEN i < 5 THEN 'product_viewed' "
         "  WHEN i = 5 AND h % 3 = 0 THEN 'product_added' WHEN i = 6 AND h % 6 = 0 THEN 'checkout_started' "
         "  WHEN i = 7 AND h % 12 = 0 THEN 'order_completed' WHEN i = 9 AND s < " + std::to_string(users) +
         " THEN 'identify' ELSE 'page_viewed' END AS name FROM sess, range(" + n + ") r(i)) "
         "SELECT md5(s::VARCHAR || ':' || i::VARCHAR) AS event_id, "
         "CASE name WHEN 'identify' THEN 'identify' WHEN 'page_viewed' THEN 'page' ELSE 'track' END AS event_type, "
         "name AS event_name, ts AS event_ts, ts AS original_ts, ts AS sent_at, ts + INTERVAL 1 SECOND AS received_at, "
         "CAST(ts AS DATE) AS event_date, 'user' || u AS user_id, 'anon' || u AS anonymous_id, 'user' || u AS user_key, "
         "md5('user' || u || '|' || s) AS session_id, "
         "CASE WHEN name = 'identify' THEN NULL ELSE i + 1 END AS session_event_index, 'web' AS platform, "
         "'https://shop.example/p/' || (h % 500) AS page_url, '/p/' || (h % 500) AS page_path, 'Product' AS page_title, "
         "CASE WHEN h % 4 = 0 THEN 'https://www.google.com/' END AS referrer_url, "
         "CASE WHEN h % 4 = 0 THEN 'www.google.com' END AS referrer_host, "
         "CASE WHEN h % 5 = 0 THEN 'newsletter' END AS utm_source, CASE WHEN h % 5 = 0 THEN 'email' END AS utm_medium, "
         "CASE WHEN h % 5 = 0 THEN 'spring-' || (h % 20) END AS utm_campaign, "
         "CASE WHEN h % 5 = 0 THEN 'newsletter|email|spring-' || (h % 20) END AS campaign_id, "
         "['desktop', 'mobile', 'tablet'][1 + h % 3] AS device_type, ['Other', 'iPhone', 'iPad'][1 + h % 3] AS device_family, "
         "['Chrome', 'Safari', 'Firefox'][1 + (h // 7) % 3] AS browser_family, '120' AS browser_version, "
         "['Windows', 'iOS', 'Mac OS X'][1 + (h // 11) % 3] AS os_family, '10' AS os_version, "
         "['US', 'DE', 'FR', 'GB'][1 + u % 4] AS geo_country, md5(u::VARCHAR) AS ip_hash, "
         "CASE WHEN name = 'order_completed' THEN 10 + (h % 9000) / 100.0 END AS revenue, "
         "CASE WHEN name = 'order_completed' THEN 'USD' END AS currency, "
         "CASE WHEN name = 'identify' THEN json_object('plan', ['free', 'pro', 'team'][1 + (s // " +
         std::to_string(users) + ") % 3], 'country', 'US', 'created_at', '2025-01-01') "
         "  ELSE json_object('product_id', 'p' || (h % 500)) END::VARCHAR AS properties, 'web' AS source, "
         "(s % 8)::INTEGER AS log_partition, s * " + n + " + i AS log_offset, false AS is_future_dated, "
         "false AS is_late FROM ev";
}

// The same events as the collector would have stored them in Bronze.
std::string BronzeRowsSql(const std::string& silver_rows) {
  return "SELECT event_id AS ingest_id, received_at, event_date, source, 'segment' AS protocol, "
         "'203.0.113.7' AS client_ip, 'Mozilla/5.0' AS user_agent, "
         "CASE event_type WHEN 'identify' THEN json_object('type', 'identify', 'messageId', event_id, 'userId', "
         "  user_id, 'anonymousId', anonymous_id, 'timestamp', strftime(event_ts, '%Y-%m-%dT%H:%M:%S.%gZ'), "
         "  'traits', properties::JSON) "
         "WHEN 'page' THEN json_object('type', 'page', 'name', page_title, 'messageId', event_id, 'userId', user_id, "
         "  'anonymousId', anonymous_id, 'timestamp', strftime(event_ts, '%Y-%m-%dT%H:%M:%S.%gZ'), "
         "  'properties', json_object('url', page_url, 'path', page_path)) "
         "ELSE json_object('type', 'track', 'event', CASE event_name WHEN 'product_viewed' THEN 'Product Viewed' "
         "  WHEN 'product_added' THEN 'Product Added' WHEN 'checkout_started' THEN 'Checkout Started' "
         "  ELSE 'Order Completed' END, 'messageId', event_id, 'userId', user_id, 'anonymousId', anonymous_id, "
         "  'timestamp', strftime(event_ts, '%Y-%m-%dT%H:%M:%S.%gZ'), 'properties', properties::JSON) "
         "END::VARCHAR AS payload, log_partition, log_offset FROM (" + silver_rows + ")";
}

// The purchase funnel per session day from Bronze's JSON: parse, dedup by
// messageId, sessionize (30 min), then the steps in order (non-decreasing time).
const char* kFunnelFromBronze = R"(
WITH raw AS (
  SELECT json_extract_string(payload, '$.messageId') AS id, json_extract_string(payload, '$.type') AS type,
         json_extract_string(payload, '$.event') AS event,
         coalesce(json_extract_string(payload, '$.userId'), 'anon:' || json_extract_string(payload, '$.anonymousId')) AS user_key,
         CAST(json_extract_string(payload, '$.timestamp') AS TIMESTAMP) AS ts, received_at
  FROM bronze.events),
dedup AS (SELECT * FROM raw QUALIFY row_number() OVER (PARTITION BY id ORDER BY received_at) = 1),
act AS (SELECT *, CASE WHEN type = 'track' THEN lower(replace(event, ' ', '_')) ELSE type || '_viewed' END AS name
        FROM dedup WHERE type IN ('track', 'page', 'screen')),
gaps AS (SELECT *, CASE WHEN lag(ts) OVER w IS NULL OR ts - lag(ts) OVER w > INTERVAL 30 MINUTE THEN 1 ELSE 0 END AS new_session
         FROM act WINDOW w AS (PARTITION BY user_key ORDER BY ts, id)),
numbered AS (SELECT *, sum(new_session) OVER (PARTITION BY user_key ORDER BY ts, id ROWS UNBOUNDED PRECEDING) AS sn FROM gaps),
s AS (SELECT *, min(ts) OVER (PARTITION BY user_key, sn) AS session_start FROM numbered),
s1 AS (SELECT user_key, sn, any_value(CAST(session_start AS DATE)) AS day,
              min(ts) FILTER (WHERE name = 'product_viewed') AS t1 FROM s GROUP BY user_key, sn),
s2 AS (SELECT s1.*, (SELECT min(ts) FROM s WHERE s.user_key = s1.user_key AND s.sn = s1.sn AND name = 'product_added' AND ts >= t1) AS t2 FROM s1 WHERE t1 IS NOT NULL),
s3 AS (SELECT s2.*, (SELECT min(ts) FROM s WHERE s.user_key = s2.user_key AND s.sn = s2.sn AND name = 'checkout_started' AND ts >= t2) AS t3 FROM s2),
s4 AS (SELECT s3.*, (SELECT min(ts) FROM s WHERE s.user_key = s3.user_key AND s.sn = s3.sn AND name = 'order_completed' AND ts >= t3) AS t4 FROM s3)
SELECT day, step, sessions FROM (
  SELECT day, count(*) AS "1", count(t2) AS "2", count(t3) AS "3", count(t4) AS "4" FROM s4 GROUP BY day
) UNPIVOT (sessions FOR step IN ("1", "2", "3", "4")) WHERE sessions > 0 ORDER BY day, step
)";

const char* kFunnelFromGold =
    "SELECT event_date AS day, step_index::VARCHAR AS step, sessions FROM gold.fact_funnel_daily "
    "WHERE funnel = 'purchase' AND sessions > 0 ORDER BY day, step";

void WriteTable(engine::Database* db, engine::Connection* conn, const std::string& path, const delta::Schema& schema,
                const std::string& rows, const std::string& op) {
  auto table = Must(delta::Table::OpenOrCreate(path, schema, {"event_date"}, {}, db), "open table");
  auto txn = table->StartTransaction();
  Must(txn->WriteFiles(conn, rows), "write files");
  txn->SetBlindAppend(true);
  txn->SetOperation(op, {});
  Must(txn->Commit(), "commit");
}

// Median of three runs of `sql`; the answer as CSV in *answer.
double TimeQuery(engine::Database* db, const std::string& lake, const std::string& sql, std::string* answer) {
  std::vector<double> times;
  for (int i = 0; i < 3; i++) {
    auto conn = Must(db->Connect(), "connect");
    CHECK_OK(delta::RegisterLakeViews(conn.get(), lake, std::nullopt));
    auto t0 = std::chrono::steady_clock::now();
    auto result = Must(conn->Query(sql), "query");
    times.push_back(Seconds(t0));
    *answer = result.ToCsv();
  }
  std::sort(times.begin(), times.end());
  return times[1];
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: gold_bench LAKE_DIR [EVENTS=10000000] [BATCH=100000]\n";
    return 2;
  }
  const std::string lake = argv[1];
  const int64_t events = argc > 2 ? std::atoll(argv[2]) : 10'000'000;
  const int64_t batch = argc > 3 ? std::atoll(argv[3]) : 100'000;
  const int64_t sessions = events / kEventsPerSession;
  const int64_t users = std::max<int64_t>(1, sessions / kSessionsPerUser);
  auto db = Must(engine::Database::Open(), "open database");
  auto conn = Must(db->Connect(), "connect");
  CHECK_OK(conn->Execute("SET TimeZone = 'UTC'"));

  auto t0 = std::chrono::steady_clock::now();
  const std::string silver_path = JoinPath(lake, pipeline::kSilverEventsTable);
  const std::string rows = SilverRowsSql(0, sessions, users, -1);
  WriteTable(db.get(), conn.get(), silver_path, pipeline::SilverEventsSchema(), rows, "WRITE");
  std::cerr << "prepared silver.events: " << sessions * kEventsPerSession << " events, " << users << " users, "
            << sessions << " sessions over " << kDays << " days (" << Seconds(t0) << " s)\n";
  t0 = std::chrono::steady_clock::now();
  WriteTable(db.get(), conn.get(), JoinPath(lake, pipeline::kBronzeTable), pipeline::BronzeSchema(),
             BronzeRowsSql(rows), "WRITE");
  std::cerr << "prepared bronze.events with the same events as Segment JSON (" << Seconds(t0) << " s)\n";

  Config config;
  auto gold = Must(pipeline::gold::GoldStage::Open(config, lake, db.get()), "open gold");
  t0 = std::chrono::steady_clock::now();
  auto full = Must(gold->Rebuild(), "full rebuild");
  const double full_s = Seconds(t0);
  std::cerr << "full rebuild: " << full_s << " s\n";
  for (const auto& [name, t] : full.tables) std::cerr << "  " << name << ": " << t.us / 1000 << " ms\n";

  // A micro-batch: 90% of its sessions on a new day, 10% late (two days back),
  // its sessions numbered from `first`.
  const int64_t batch_sessions = std::max<int64_t>(1, batch / kEventsPerSession);
  const int64_t late = batch_sessions / 10;
  auto land_batch = [&](int64_t first) {
    const std::string new_rows = "SELECT * FROM (" + SilverRowsSql(first, batch_sessions - late, users, kDays) +
                                 ") UNION ALL SELECT * FROM (" +
                                 SilverRowsSql(first + batch_sessions - late, late, users, kDays - 2) + ")";
    WriteTable(db.get(), conn.get(), silver_path, pipeline::SilverEventsSchema(), new_rows, "STREAMING UPDATE");
    WriteTable(db.get(), conn.get(), JoinPath(lake, pipeline::kBronzeTable), pipeline::BronzeSchema(),
               BronzeRowsSql(new_rows), "STREAMING UPDATE");
  };
  land_batch(sessions);
  t0 = std::chrono::steady_clock::now();
  auto incremental = Must(gold->Refresh("gold-bench", 1), "incremental refresh");
  const double incr_s = Seconds(t0);
  // A second micro-batch of the same shape on the same new day, which now holds
  // the first: its refresh should cost the same (it follows the change, not the day).
  land_batch(sessions + batch_sessions);
  t0 = std::chrono::steady_clock::now();
  auto incremental2 = Must(gold->Refresh("gold-bench", 2), "second incremental refresh");
  const double incr2_s = Seconds(t0);

  std::string from_gold, from_bronze;
  const double gold_q = TimeQuery(db.get(), lake, kFunnelFromGold, &from_gold);
  const double bronze_q = TimeQuery(db.get(), lake, kFunnelFromBronze, &from_bronze);

  std::cout << "silver events           : " << sessions * kEventsPerSession << " (+" << batch_sessions * kEventsPerSession
            << " in the incremental batch)\n";
  std::cout << "full rebuild            : " << full_s << " s (" << full.tables.size() << " tables)\n";
  std::cout << "incremental refresh     : " << incr_s << " s (" << incremental.changed_rows << " changed silver rows)\n";
  for (const auto& [name, t] : incremental.tables)
    std::cout << "  " << name << ": " << t.us / 1000 << " ms, " << t.dates.size() << " partitions, " << t.rows_written
              << " rows written, " << t.rows_deleted << " deleted, " << t.rows_rewritten << " copied\n";
  std::cout << "ratio full / incremental: " << full_s / incr_s << "x\n";
  std::cout << "second refresh, same day: " << incr2_s << " s (" << incremental2.changed_rows
            << " changed silver rows)\n";
  for (const auto& [name, t] : incremental2.tables)
    std::cout << "  " << name << ": " << t.us / 1000 << " ms, " << t.rows_written << " rows written, "
              << t.rows_deleted << " deleted, " << t.rows_rewritten << " copied\n";
  std::cout << "funnel from gold        : " << gold_q * 1000 << " ms\n";
  std::cout << "funnel from bronze JSON : " << bronze_q * 1000 << " ms\n";
  std::cout << "ratio bronze / gold     : " << bronze_q / gold_q << "x\n";
  if (from_gold != from_bronze) {
    // The rows that differ (CRLF-separated CSV).
    auto lines = [](const std::string& csv) {
      std::set<std::string> out;
      size_t start = 0;
      for (size_t end; (end = csv.find("\r\n", start)) != std::string::npos; start = end + 2)
        out.insert(csv.substr(start, end - start));
      return out;
    };
    const auto g = lines(from_gold), b = lines(from_bronze);
    std::cerr << "the two funnel answers differ (day,step,sessions):\n";
    for (const auto& l : g)
      if (!b.count(l)) std::cerr << "  only from gold:   " << l << "\n";
    for (const auto& l : b)
      if (!g.count(l)) std::cerr << "  only from bronze: " << l << "\n";
    return 1;
  }
  std::cout << "answers equal           : yes (" << std::count(from_gold.begin(), from_gold.end(), '\n') - 1
            << " day×step rows)\n";
  return 0;
}

}  // namespace
}  // namespace clicklake

int main(int argc, char** argv) { return clicklake::Main(argc, argv); }

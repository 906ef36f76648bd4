// access_bench: the cost of governance. On a silver.events of N rows (default
// 10M, shaped as DESIGN.md §5, partitioned by event_date, 1% of rows deleted
// through deletion vectors), each query runs side by side, repeated and
// interleaved, as:
//   admin      the unrestricted engine, as `clicklake sql` runs it (lake views
//              with predicate pushdown), plus its audit record;
//   admin/gov  the same SQL through access::QueryService as admin (sandbox,
//              no masks, no filter, audit);
//   marketing  through access::QueryService as marketing with regions US,DE
//              (the shipped policy: user_id hashed with the PII key, rows
//              filtered to the regions, only the granted columns).
// Each rep runs the three once, in an order that alternates (admin first, then
// marketing first) so drift in the machine's load falls on both sides; one
// warm-up rep is not counted. It prints the median seconds of each and the
// median of the per-rep ratios marketing / admin and marketing / admin-gov
// (each rep's runs are neighbours in time, so their ratio is the comparison
// least disturbed by other work on the machine).
//
//   access_bench [--dir DIR] [--rows N] [--reps N] [--threads N] [--only Q] [--verbose] [--sandbox]
// (--only: just query Q, 0-based; --verbose: each governed run's phases;
// --sandbox: governed queries never use source plans, as before them;
// --reps 0: only build the table)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "delta/table.h"
#include "governance/access/access.h"

namespace {

using namespace clicklake;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const Status& s, const char* what) {
  std::fprintf(stderr, "access_bench: %s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}
template <typename T>
T Check(Result<T> r, const char* what) {
  if (!r.ok()) Die(r.status(), what);
  return std::move(*r);
}
void Check(const Status& s, const char* what) {
  if (!s.ok()) Die(s, what);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

delta::Schema EventsSchema() {
  delta::Schema s;
  for (const auto& [n, t] : std::vector<std::pair<const char*, const char*>>{
           {"event_id", "string"},     {"event_type", "string"},    {"event_name", "string"},
           {"event_ts", "timestamp"},  {"original_ts", "timestamp"}, {"received_at", "timestamp"},
           {"event_date", "date"},     {"user_id", "string"},       {"anonymous_id", "string"},
           {"user_key", "string"},     {"session_id", "string"},    {"platform", "string"},
           {"page_path", "string"},    {"referrer_host", "string"}, {"utm_source", "string"},
           {"utm_medium", "string"},   {"utm_campaign", "string"},  {"utm_term", "string"},
           {"utm_content", "string"},  {"campaign_id", "string"},   {"experiment_id", "string"},
           {"experiment_variant", "string"}, {"device_type", "string"}, {"geo_country", "string"},
           {"geo_region", "string"},   {"geo_city", "string"},      {"ip_hash", "string"},
           {"revenue", "double"},      {"currency", "string"},      {"properties", "string"}}) {
    s.fields.push_back({n, t, true, "{}"});
  }
  return s;
}

// 30 days of events for N/50 users.
std::string Generator(int64_t rows) {
  const std::string users = std::to_string(std::max<int64_t>(1, rows / 50));
  return "SELECT 'e' || i AS event_id, "
         "CASE WHEN i % 10 = 0 THEN 'page' ELSE 'track' END AS event_type, "
         "(['page_viewed','product_viewed','product_added','checkout_started','order_completed'])[1 + (hash(i) % 5)::INT] "
         "AS event_name, "
         "TIMESTAMPTZ '2024-05-01 00:00:00+00' + to_microseconds((i * 25920000000 // " + std::to_string(rows) +
         ")::BIGINT) AS event_ts, "
         "TIMESTAMPTZ '2024-05-01 00:00:00+00' + to_microseconds((i * 25920000000 // " + std::to_string(rows) +
         ")::BIGINT) AS original_ts, "
         "TIMESTAMPTZ '2024-05-01 00:00:00+00' + to_microseconds((i * 25920000000 // " + std::to_string(rows) +
         ")::BIGINT + 80000) AS received_at, "
         "CAST(DATE '2024-05-01' + CAST(i * 30 // " + std::to_string(rows) + " AS INTEGER) AS DATE) AS event_date, "
         "'user' || (hash(i * 7) % " + users + ") AS user_id, 'anon' || (hash(i * 11) % " + users + ") AS anonymous_id, "
         "'user' || (hash(i * 7) % " + users + ") AS user_key, 's' || (i // 12) AS session_id, "
         "(['web','ios','android','server'])[1 + (hash(i * 3) % 4)::INT] AS platform, "
         "'/p/' || (hash(i * 5) % 500) AS page_path, (['google.com','t.co','news.ycombinator.com',NULL])[1 + (i % 4)::INT] "
         "AS referrer_host, (['google','newsletter','facebook','bing',NULL])[1 + (hash(i * 13) % 5)::INT] AS utm_source, "
         "(['cpc','email','social',NULL])[1 + (i % 4)::INT] AS utm_medium, "
         "'campaign_' || (hash(i * 17) % 40) AS utm_campaign, NULL::VARCHAR AS utm_term, NULL::VARCHAR AS utm_content, "
         "'c' || (hash(i * 17) % 40) AS campaign_id, NULL::VARCHAR AS experiment_id, NULL::VARCHAR AS experiment_variant, "
         "(['desktop','mobile','tablet'])[1 + (hash(i * 19) % 3)::INT] AS device_type, "
         "(['US','DE','GB','FR','BR','IN','JP','CA','AU','NL'])[1 + (hash(i * 23) % 10)::INT] AS geo_country, "
         "'r' || (hash(i * 29) % 20) AS geo_region, 'city' || (hash(i * 31) % 300) AS geo_city, "
         "md5(i::VARCHAR) AS ip_hash, CASE WHEN hash(i) % 5 = 4 THEN round((hash(i * 37) % 20000) / 100.0, 2) END "
         "AS revenue, CASE WHEN hash(i) % 5 = 4 THEN 'USD' END AS currency, '{}' AS properties "
         "FROM range(" + std::to_string(rows) + ") t(i)";
}

void BuildLake(const std::string& lake, int64_t rows) {
  const std::string path = lake + "/silver/events";
  if (std::filesystem::exists(path + "/_delta_log")) return;  // reuse a lake built before with --dir
  auto db = Check(engine::Database::Open(), "open");
  auto conn = Check(db->Connect(), "connect");
  auto table = Check(delta::Table::OpenOrCreate(path, EventsSchema(), {"event_date"}, {}, db.get()), "create table");
  const auto t0 = Clock::now();
  auto txn = table->StartTransaction();
  Check(txn->WriteFiles(conn.get(), Generator(rows)).status(), "write events");
  Check(txn->Commit().status(), "commit events");
  // Deletion vectors on 1% of the rows (as re-keyed or moved rows leave them).
  Check(table->DeleteWhere(conn.get(), "hash(event_id) % 100 = 0").status(), "delete 1%");
  std::printf("built silver.events: %lld rows in %.1f s\n", static_cast<long long>(rows),
              std::chrono::duration<double>(Clock::now() - t0).count());
}

double RunAdmin(const std::string& lake, const std::string& sql, int threads, std::string* out) {
  const auto t0 = Clock::now();
  engine::DatabaseOptions o;
  o.threads = threads;
  auto db = Check(engine::Database::Open(o), "open");
  auto conn = Check(db->Connect(), "connect");
  delta::TablePredicates pushdown = delta::PushdownPredicates(conn.get(), sql);
  Check(delta::RegisterLakeViews(conn.get(), lake, std::nullopt, pushdown), "views");
  auto r = Check(conn->Query(sql), "admin query");
  access::AuditRecord rec;
  rec.principal = "bench";
  rec.role = "admin";
  rec.sql = sql;
  rec.rows = static_cast<int64_t>(r.row_count());
  Check(access::AppendAuditRecord(lake, rec), "audit");
  *out = r.ToCsv();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool verbose = false;  // --verbose: each governed run's phases

double RunGoverned(access::QueryService* service, const access::Principal& who, const std::string& sql,
                   std::string* out) {
  const auto t0 = Clock::now();
  auto q = Check(service->Start(who, sql), "governed query");
  const auto started = Clock::now();
  engine::QueryResult all = q->header();
  std::optional<Clock::time_point> first;
  for (;;) {
    auto chunk = Check(q->Next(), "governed rows");
    if (!first) first = Clock::now();
    if (!chunk) break;
    all.Append(*chunk);
  }
  const auto read = Clock::now();
  Check(q->Finish(), "audit");
  if (verbose) {
    auto s = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
    std::string phases;
    for (const auto& [name, us] : q->phases()) phases += " " + name + " " + std::to_string(us / 1000) + "ms";
    std::printf("  %-10s %-7s start %.3f (%s)  first chunk %.3f  rest %.3f  audit %.3f\n", who.role.c_str(),
                q->in_source() ? "source" : "sandbox", s(t0, started), phases.c_str() + 1, s(started, *first),
                s(*first, read), s(read, Clock::now()));
  }
  *out = all.ToCsv();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int64_t rows = 10'000'000;
  int reps = 7, threads = 2, only = -1;
  bool sandbox_only = false;
  for (int i = 1; i < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--verbose" || a == "--sandbox") {
      (a == "--verbose" ? verbose : sandbox_only) = true;
      i--;
      continue;
    }
    if (i + 1 >= argc) a = "--help";
    if (a == "--dir") dir = argv[i + 1];
    else if (a == "--rows") rows = std::atoll(argv[i + 1]);
    else if (a == "--reps") reps = std::atoi(argv[i + 1]);
    else if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--only") only = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr,
                   "usage: access_bench [--dir DIR] [--rows N] [--reps N] [--threads N] [--only Q] [--verbose] "
                   "[--sandbox]\n");
      return 2;
    }
  }
  const bool temp = dir.empty();
  if (temp) dir = (std::filesystem::temp_directory_path() / ("access_bench_" + std::to_string(getpid()))).string();
  const std::string lake = dir + "/lake";
  std::filesystem::create_directories(lake);
  BuildLake(lake, rows);
  if (reps <= 0) return 0;

  access::QueryServiceOptions o;
  o.lake_dir = lake;
  o.pii_key_file = dir + "/pii.key";
  o.limits.threads = threads;
  o.limits.memory_limit = "4GB";
  o.limits.timeout_ms = 600000;
  o.source_plans = !sandbox_only;
  access::QueryService service(o);
  access::Principal admin{"bench-admin", "admin", {}, {}, "", false};
  access::Principal marketing{"bench-marketing", "marketing", {{"regions", {"US", "DE"}}}, {}, "", false};

  struct Query {
    const char* name;
    std::string sql;
  };
  const std::vector<Query> queries = {
      {"campaign report (two weeks)",
       "SELECT utm_source, utm_campaign, count(*) AS events, round(sum(revenue), 2) AS revenue FROM silver.events "
       "WHERE event_date >= DATE '2024-05-01' AND event_date <= DATE '2024-05-14' AND event_name = 'order_completed' "
       "GROUP BY ALL ORDER BY revenue DESC NULLS LAST LIMIT 20"},
      {"audience size (masked user_id)",
       "SELECT geo_country, count(DISTINCT user_id) AS users, count(*) AS events FROM silver.events "
       "WHERE event_date >= DATE '2024-05-08' AND event_date <= DATE '2024-05-14' GROUP BY 1 ORDER BY 1"},
      {"full scan by platform",
       "SELECT platform, device_type, count(*) AS events, count(DISTINCT session_id) AS sessions FROM silver.events "
       "GROUP BY ALL ORDER BY ALL"},
  };
  std::printf("access_bench: silver.events %lld rows, %d threads, %d reps + 1 warm-up, %s (medians: seconds, and "
              "of the per-rep ratios)\n",
              static_cast<long long>(rows), threads, reps, sandbox_only ? "sandbox only" : "source plans on");
  std::printf("%-34s %9s %9s %9s %12s %12s   %s\n", "query", "admin", "admin/gov", "marketing", "mkt/admin",
              "mkt/admin-gov", "mkt/admin per rep");
  bool all_within = true;
  for (size_t qi = 0; qi < queries.size(); qi++) {
    if (only >= 0 && static_cast<size_t>(only) != qi) continue;
    const Query& q = queries[qi];
    std::vector<double> a, g, m, ratio_a, ratio_g;
    std::string out_a, out_g, out_m;
    for (int r = -1; r < reps; r++) {
      double ta = 0, tg = 0, tm = 0;
      if (r % 2 != 0) {  // the warm-up and odd reps: admin first
        ta = RunAdmin(lake, q.sql, threads, &out_a);
        tg = RunGoverned(&service, admin, q.sql, &out_g);
        tm = RunGoverned(&service, marketing, q.sql, &out_m);
      } else {
        tm = RunGoverned(&service, marketing, q.sql, &out_m);
        tg = RunGoverned(&service, admin, q.sql, &out_g);
        ta = RunAdmin(lake, q.sql, threads, &out_a);
      }
      if (r < 0) continue;
      a.push_back(ta);
      g.push_back(tg);
      m.push_back(tm);
      ratio_a.push_back(tm / ta);
      ratio_g.push_back(tm / tg);
    }
    if (out_a != out_g) std::fprintf(stderr, "access_bench: %s: admin and admin/gov results differ\n", q.name);
    if (out_m == out_a) std::fprintf(stderr, "access_bench: %s: marketing saw the admin's result\n", q.name);
    std::string each;
    for (double x : ratio_a) each += " " + std::to_string(x).substr(0, 4);
    const double ra = Median(ratio_a);
    all_within &= ra <= 1.3;
    std::printf("%-34s %9.3f %9.3f %9.3f %11.2fx %11.2fx  %s\n", q.name, Median(a), Median(g), Median(m), ra,
                Median(ratio_g), each.c_str());
  }
  std::printf("median marketing / admin <= 1.3x for every query: %s\n", all_within ? "yes" : "NO");
  auto report = Check(access::AuditLog(lake, Check(engine::Database::Open(), "open").get()).Verify(), "verify");
  std::printf("audit chain: %lld records, %s\n", static_cast<long long>(report.records), report.ok ? "intact" : "BROKEN");
  if (temp) std::filesystem::remove_all(dir);
  return 0;
}

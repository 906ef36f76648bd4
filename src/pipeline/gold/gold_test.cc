// Gold layer tests: the models on small hand-written silver.events tables, the
// incremental refresh against a full rebuild (hand-written changes and simulated
// traffic through the micro-batch runner), revenue reconciliation, and the gold
// backfill.
#include "pipeline/gold/gold.h"

#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <iostream>
#include <random>
#include <set>
#include <sstream>

#include "common/fault_injection_fs.h"
#include "common/raw_event.h"
#include "common/test_util.h"
#include "delta/table.h"
#include "engine/engine.h"
#include "log/event_log.h"
#include "pipeline/gold/models.h"
#include "pipeline/pipeline.h"
#include "pipeline/silver.h"
#include "simulate/simulator.h"

namespace clicklake::pipeline::gold {
namespace {

using clicklake::testing::TempDir;

// One hand-written silver.events row.
struct Ev {
  std::string id;
  std::string type;  // track|page|screen|identify
  std::string name;
  std::string ts;    // "2024-05-01 10:00:00"
  std::string user;
  std::string session;  // "" = NULL
  int index = 0;        // 0 = NULL
  std::string properties = "{}";
  std::optional<double> revenue;
  std::string page_path;
  std::string utm_campaign;  // also sets utm_source=google, utm_medium=cpc, campaign_id="c-<utm_campaign>"
  std::string browser = "Chrome";
};

std::string Lit(const std::string& s) { return s.empty() ? "NULL" : engine::QuoteLiteral(s); }

class GoldTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, engine::Database::Open());
    ASSERT_OK_AND_ASSIGN(conn_, db_->Connect());
  }

  std::string lake() const { return lake_.empty() ? dir_.path() : lake_; }

  // Builds temp table new_silver from `rows` (silver.events' columns).
  void BuildNewSilver(const std::vector<Ev>& rows) {
    std::string sql = "SELECT * REPLACE (CAST(event_ts AS TIMESTAMP) AS event_ts) FROM (VALUES ";
    for (size_t i = 0; i < rows.size(); i++) {
      const Ev& e = rows[i];
      sql += (i ? ", " : "") + std::string("(") + Lit(e.id) + ", " + Lit(e.type) + ", " + Lit(e.name) + ", " +
             Lit(e.ts) + ", " + Lit(e.user) + ", " + Lit(e.session) + ", " +
             (e.index ? std::to_string(e.index) : "NULL") + "::BIGINT, " + Lit(e.properties) + ", " +
             (e.revenue ? std::to_string(*e.revenue) : "NULL") + "::DOUBLE, " + Lit(e.page_path) + ", " +
             (e.utm_campaign.empty() ? "NULL, NULL, NULL, NULL" : "'google', 'cpc', " + Lit(e.utm_campaign) + ", " +
                                                                    Lit("c-" + e.utm_campaign)) +
             ", " + Lit(e.browser) + ", " + std::to_string(i) + ")";
    }
    sql += ") t(event_id, event_type, event_name, event_ts, user_key, session_id, session_event_index, properties, "
           "revenue, page_path, utm_source, utm_medium, utm_campaign, campaign_id, browser_family, n)";
    ASSERT_OK(conn_->Execute("SET TimeZone = 'UTC'; CREATE OR REPLACE TEMP TABLE new_silver AS SELECT event_id, "
                             "event_type, event_name, event_ts, event_ts AS received_at, CAST(event_ts AS DATE) AS "
                             "event_date, user_key, session_id, session_event_index, properties, revenue, page_path, "
                             "utm_source, utm_medium, utm_campaign, campaign_id, 'web' AS platform, 'desktop' AS "
                             "device_type, browser_family, 'Linux' AS os_family, 'DE' AS geo_country, 'web' AS source, "
                             "0 AS log_partition, n::BIGINT AS log_offset FROM (" + sql + ")"));
  }

  // The silver.events columns the hand-written rows set (compared to find changes).
  static constexpr const char* kEvCols =
      "event_id, event_type, event_name, CAST(event_ts AS TIMESTAMP), event_date, user_key, session_id, "
      "session_event_index, properties, revenue, page_path, campaign_id";

  // Replaces silver.events with `rows` (one commit; only the event_date
  // partitions whose rows differ from the previous call are rewritten).
  void SetSilver(const std::vector<Ev>& rows) {
    BuildNewSilver(rows);
    ASSERT_OK_AND_ASSIGN(auto table, delta::Table::OpenOrCreate(JoinPath(lake(), "silver/events"), SilverEventsSchema(),
                                                                {"event_date"}, {}, db_.get()));
    auto txn = table->StartTransaction();
    // Rewrite the dates whose content changed (as silver does), or all of them.
    std::set<std::string> dates;
    {
      ASSERT_OK_AND_ASSIGN(std::string scan, delta::ScanSql(table->path(), txn->read_snapshot()));
      const std::string cols = kEvCols;
      ASSERT_OK_AND_ASSIGN(auto r, conn_->Query(
          "SELECT DISTINCT strftime(event_date, '%Y-%m-%d') FROM ((SELECT " + cols + " FROM (" + scan +
          ") EXCEPT ALL SELECT " + cols + " FROM new_silver) UNION ALL (SELECT " + cols +
          " FROM new_silver EXCEPT ALL SELECT " + cols + " FROM (" + scan + ")))"));
      for (size_t i = 0; i < r.row_count(); i++) dates.insert(r.GetString(i, 0));
    }
    for (const auto& f : txn->read_snapshot().files) {
      if (dates.count(*f.partition_values.at("event_date"))) txn->RemoveFile(f);
    }
    std::string in = "(";
    for (const auto& d : dates) in += (in.size() > 1 ? ", " : "") + engine::QuoteLiteral(d);
    in += ")";
    if (!dates.empty()) {
      ASSERT_OK(txn->WriteFiles(conn_.get(), "SELECT * FROM new_silver WHERE strftime(event_date, '%Y-%m-%d') IN " +
                                                 in).status());
    }
    ASSERT_OK(txn->Commit().status());
  }

  // Replaces silver.events with `rows` the way Silver writes with deletion
  // vectors: the rows that changed or went are marked deleted, the changed and
  // new ones appended as a new file; unchanged rows stay where they are.
  void SetSilverWithDeletionVectors(const std::vector<Ev>& rows) {
    BuildNewSilver(rows);
    ASSERT_OK_AND_ASSIGN(auto table, delta::Table::OpenOrCreate(JoinPath(lake(), "silver/events"), SilverEventsSchema(),
                                                                {"event_date"}, {}, db_.get()));
    auto txn = table->StartTransaction();
    delta::ScanOptions options;
    options.row_address = true;
    ASSERT_OK_AND_ASSIGN(std::string scan, delta::ScanSql(table->path(), txn->read_snapshot(), options));
    const std::string cols = kEvCols;
    ASSERT_OK(conn_->Execute("CREATE OR REPLACE TEMP TABLE cur AS " + scan + ";"
                             "CREATE OR REPLACE TEMP TABLE gone_ids AS SELECT event_id FROM (SELECT " + cols +
                             " FROM cur EXCEPT ALL SELECT " + cols + " FROM new_silver);"
                             "CREATE OR REPLACE TEMP TABLE new_ids AS SELECT event_id FROM (SELECT " + cols +
                             " FROM new_silver EXCEPT ALL SELECT " + cols + " FROM cur);"));
    ASSERT_OK(txn->DeleteRows(conn_.get(), "SELECT _delta_file, _delta_row FROM cur WHERE event_id IN (SELECT "
                                           "event_id FROM gone_ids)").status());
    ASSERT_OK(txn->WriteFiles(conn_.get(), "SELECT * FROM new_silver WHERE event_id IN (SELECT event_id FROM "
                                           "new_ids)").status());
    ASSERT_OK(txn->Commit().status());
  }

  std::unique_ptr<GoldStage> Stage(const Config& config = Config(), const std::string& lake_dir = "") {
    auto s = GoldStage::Open(config, lake_dir.empty() ? lake() : lake_dir, db_.get());
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  Result<engine::QueryResult> TryQuery(const std::string& sql, const std::string& lake_dir = "") {
    ASSIGN_OR_RETURN(auto conn, db_->Connect());
    RETURN_IF_ERROR(delta::RegisterLakeViews(conn.get(), lake_dir.empty() ? lake() : lake_dir, std::nullopt));
    return conn->Query(engine::QualifySchemaReferences(sql, "system", "memory"));
  }
  engine::QueryResult Query(const std::string& sql, const std::string& lake_dir = "") {
    auto r = TryQuery(sql, lake_dir);
    EXPECT_TRUE(r.ok()) << r.status() << "\n" << sql;
    return r.ok() ? std::move(r).value() : engine::QueryResult();
  }
  std::string Csv(const std::string& sql, const std::string& lake_dir = "") {
    auto r = TryQuery(sql, lake_dir);
    return r.ok() ? r->ToCsv() : "ERROR " + r.status().ToString();
  }

  // Every Gold table as CSV, ORDER BY ALL.
  std::map<std::string, std::string> GoldTables(const std::string& lake_dir) {
    std::map<std::string, std::string> out;
    for (const char* t : kGoldTables) {
      std::string name = t;
      name[4] = '.';
      out[name] = Csv("SELECT * FROM " + name + " ORDER BY ALL", lake_dir);
    }
    return out;
  }

  // A fresh lake holding a copy of silver.events, rebuilt from scratch there.
  std::map<std::string, std::string> RebuildCopy(const Config& config = Config()) {
    TempDir copy;
    std::filesystem::create_directories(copy.path() + "/silver");
    std::filesystem::copy(lake() + "/silver/events", copy.path() + "/silver/events",
                          std::filesystem::copy_options::recursive);
    auto stage = Stage(config, copy.path());
    auto r = stage->Rebuild(std::nullopt);
    EXPECT_TRUE(r.ok()) << r.status();
    if (getenv("GOLD_KEEP")) {
      std::filesystem::remove_all(getenv("GOLD_KEEP"));
      std::filesystem::copy(copy.path(), getenv("GOLD_KEEP"), std::filesystem::copy_options::recursive);
    }
    return GoldTables(copy.path());
  }

  void ExpectEqualsRebuild(const Config& config = Config(), const std::string& what = "") {
    auto rebuilt = RebuildCopy(config);
    auto incremental = GoldTables(lake());
    for (const auto& [name, csv] : rebuilt) {
      EXPECT_EQ(incremental[name], csv) << what << ": " << name << " differs from a full rebuild";
    }
  }

  TempDir dir_;
  std::string lake_;  // overrides dir_
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<engine::Connection> conn_;
};

TEST(GoldModels, AreEmbedded) {
  for (const char* m : {"macros", "fact_events", "fact_session_daily", "session_funnels", "session_days", "fact_funnel_daily", "dim_user", "campaign_groups", "device_groups",
                        "dim_campaign", "dim_device", "user_activity_daily", "user_features_daily"}) {
    EXPECT_FALSE(ModelText(m).empty()) << m;
  }
  EXPECT_EQ(ModelText("nope"), "");
}

TEST(GoldOptionsTest, DefaultsAndFunnelsFromToml) {
  ASSERT_OK_AND_ASSIGN(GoldOptions d, GoldOptions::FromConfig(Config()));
  ASSERT_EQ(d.funnels.size(), 1u);
  EXPECT_EQ(d.funnels[0].name, "purchase");
  ASSERT_EQ(d.funnels[0].steps.size(), 4u);
  EXPECT_EQ(d.funnels[0].steps[3].event, "order_completed");
  EXPECT_EQ(d.user_traits, (std::vector<std::string>{"plan", "country", "created_at"}));

  ASSERT_OK_AND_ASSIGN(Config c, Config::Parse(R"(
[gold]
user_traits = ["plan", "company_size"]
[[gold.funnels]]
name = "shoes"
steps = [{event = "Product Viewed", where = {category = "shoes"}}, {event = "order_completed", name = "bought"}]
[[gold.funnels]]
name = "signup"
steps = [{event = "page_viewed", where = {path = "/pricing", tier = 1}}, {event = "signed_up"}]
)"));
  ASSERT_OK_AND_ASSIGN(GoldOptions o, GoldOptions::FromConfig(c));
  ASSERT_EQ(o.funnels.size(), 2u);
  EXPECT_EQ(o.funnels[0].name, "shoes");
  EXPECT_EQ(o.funnels[0].steps[0].event, "product_viewed");
  EXPECT_EQ(o.funnels[0].steps[0].where, (std::map<std::string, std::string>{{"category", "shoes"}}));
  EXPECT_EQ(o.funnels[0].steps[1].name, "bought");
  EXPECT_EQ(o.funnels[1].steps[0].where.size(), 2u);
  EXPECT_EQ(o.user_traits, (std::vector<std::string>{"plan", "company_size"}));

  ASSERT_OK_AND_ASSIGN(Config bad, Config::Parse("[[gold.funnels]]\nname = \"x\"\n"));
  EXPECT_STATUS(GoldOptions::FromConfig(bad), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(Config bad_trait, Config::Parse("[gold]\nuser_traits = [\"version\"]\n"));
  EXPECT_STATUS(GoldOptions::FromConfig(bad_trait), kInvalidArgument);
}

TEST_F(GoldTest, SessionsFromSilver) {
  SetSilver({
      {"e1", "page", "page_viewed", "2024-05-01 10:00:00", "u1", "s1", 1, "{}", {}, "/a", "spring"},
      {"e2", "track", "product_viewed", "2024-05-01 10:05:00", "u1", "s1", 2},
      {"e3", "identify", "identify", "2024-05-01 10:06:00", "u1", "s1", 0, R"({"plan":"free"})"},
      {"e4", "page", "page_viewed", "2024-05-01 10:10:00", "u1", "s1", 3, "{}", {}, "/b"},
      {"e5", "track", "order_completed", "2024-05-01 10:20:00", "u1", "s1", 4, "{}", 42.5},
      {"f1", "page", "page_viewed", "2024-05-01 23:50:00", "u2", "s2", 1, "{}", {}, "/x"},
      {"f2", "track", "product_added", "2024-05-02 00:10:00", "u2", "s2", 2},
      {"g1", "page", "page_viewed", "2024-05-02 12:00:00", "u1", "s3", 1, "{}", {}, "/c"},
  });
  auto stage = Stage();
  ASSERT_OK_AND_ASSIGN(GoldRefreshResult r, stage->Refresh("app", 0));
  EXPECT_EQ(r.base_version, -1);
  EXPECT_EQ(r.silver_version, 1);  // version 0 created the table
  EXPECT_EQ(Csv("SELECT session_id, session_date, user_key, CAST(start_ts AS TIMESTAMP), CAST(end_ts AS TIMESTAMP), "
                "duration_s, event_count, page_views, entry_path, exit_path, utm_campaign, is_bounce, converted, "
                "revenue FROM gold.fact_session_daily ORDER BY session_id"),
            "session_id,session_date,user_key,CAST(start_ts AS TIMESTAMP),CAST(end_ts AS TIMESTAMP),duration_s,"
            "event_count,page_views,entry_path,exit_path,utm_campaign,is_bounce,converted,revenue\r\n"
            "s1,2024-05-01,u1,2024-05-01 10:00:00,2024-05-01 10:20:00,1200.0,4,2,/a,/b,spring,false,true,42.5\r\n"
            "s2,2024-05-01,u2,2024-05-01 23:50:00,2024-05-02 00:10:00,1200.0,2,1,/x,/x,,false,false,0.0\r\n"
            "s3,2024-05-02,u1,2024-05-02 12:00:00,2024-05-02 12:00:00,0.0,1,1,/c,/c,,true,false,0.0\r\n");
  // No midnight split: s2 is one session of 2024-05-01; partitions by session_date.
  EXPECT_EQ(Query("SELECT count(*) FROM gold.fact_session_daily WHERE session_date = DATE '2024-05-01'").GetInt64(0, 0),
            2);
  // Revenue reconciles across the tables.
  EXPECT_EQ(Csv("SELECT (SELECT sum(revenue) FROM gold.fact_session_daily), (SELECT sum(revenue) FROM "
                "gold.fact_events), (SELECT sum(revenue) FROM silver.events)"),
            "(SELECT sum(revenue) FROM gold.fact_session_daily),(SELECT sum(revenue) FROM gold.fact_events),"
            "(SELECT sum(revenue) FROM silver.events)\r\n42.5,42.5,42.5\r\n");
  EXPECT_EQ(Query("SELECT count(*) FROM gold.fact_events").GetInt64(0, 0), 8);
  // Each table recorded its refresh, in commitInfo and in system.gold_refreshes.
  EXPECT_EQ(Csv("SELECT table_name, silver_version, batch_id, CAST(newest_event_ts AS TIMESTAMP) FROM "
                "system.gold_refreshes WHERE table_name = 'gold.fact_events'"),
            "table_name,silver_version,batch_id,CAST(newest_event_ts AS TIMESTAMP)\r\n"
            "gold.fact_events,1,0,2024-05-02 12:00:00\r\n");
  EXPECT_EQ(Query("SELECT count(*) FROM system.gold_refreshes").GetInt64(0, 0),
            static_cast<int64_t>(std::size(kGoldTables)));
  ASSERT_OK_AND_ASSIGN(std::string info, delta::ReadCommitInfo(JoinPath(lake(), "gold/fact_session_daily"), 1));
  EXPECT_NE(info.find("\"silver_version\":1"), std::string::npos) << info;
  EXPECT_NE(info.find("\"newest_event_ts_us\":"), std::string::npos) << info;
  // Nothing new: no commit.
  ASSERT_OK_AND_ASSIGN(GoldRefreshResult again, stage->Refresh("app", 1));
  EXPECT_TRUE(again.noop);
}

TEST_F(GoldTest, FunnelOrderAndPropertyFilters) {
  SetSilver({
      // A: an early product_added (before any view) does not count; the later one does.
      {"a1", "track", "product_added", "2024-05-01 10:00:00", "u1", "A", 1},
      {"a2", "track", "product_viewed", "2024-05-01 10:01:00", "u1", "A", 2, R"({"category":"shoes"})"},
      {"a3", "track", "product_added", "2024-05-01 10:02:00", "u1", "A", 3},
      {"a4", "track", "checkout_started", "2024-05-01 10:03:00", "u1", "A", 4},
      {"a5", "track", "order_completed", "2024-05-01 10:04:00", "u1", "A", 5, "{}", 10.0},
      // B: checkout before the view, no add: step 1 only.
      {"b1", "track", "checkout_started", "2024-05-01 11:00:00", "u2", "B", 1},
      {"b2", "track", "product_viewed", "2024-05-01 11:01:00", "u2", "B", 2, R"({"category":"hats"})"},
      {"b3", "track", "order_completed", "2024-05-01 11:02:00", "u2", "B", 3, "{}", 5.0},
      // C: the add at the same instant as the view counts (event_ts non-decreasing,
      // whatever the event ids); the order before the view does not.
      {"c0", "track", "order_completed", "2024-05-01 11:59:00", "u3", "C", 1, "{}", 1.0},
      {"c2", "track", "product_added", "2024-05-01 12:00:00", "u3", "C", 2},
      {"c3", "track", "product_viewed", "2024-05-01 12:00:00", "u3", "C", 3, R"({"category":"shoes"})"},
      // D: another session of u1 with only an order; E: on the next day.
      {"d1", "track", "order_completed", "2024-05-01 15:00:00", "u1", "D", 1, "{}", 2.0},
      {"e1", "track", "product_viewed", "2024-05-02 09:00:00", "u1", "E", 1, R"({"category":"shoes"})"},
  });
  ASSERT_OK_AND_ASSIGN(Config config, Config::Parse(R"(
[[gold.funnels]]
name = "purchase"
steps = [{event = "product_viewed"}, {event = "product_added"}, {event = "checkout_started"}, {event = "order_completed"}]
[[gold.funnels]]
name = "shoes"
steps = [{event = "product_viewed", where = {category = "shoes"}}, {event = "order_completed", name = "bought"}]
)"));
  auto stage = Stage(config);
  ASSERT_OK(stage->Refresh("app", 0).status());
  EXPECT_EQ(Csv("SELECT event_date, funnel, step_index, step_name, sessions, users, round(conversion_from_start, 4), "
                "round(conversion_from_previous, 4) FROM gold.fact_funnel_daily ORDER BY ALL"),
            "event_date,funnel,step_index,step_name,sessions,users,\"round(conversion_from_start, 4)\","
            "\"round(conversion_from_previous, 4)\"\r\n"
            "2024-05-01,purchase,1,product_viewed,3,3,1.0,1.0\r\n"
            "2024-05-01,purchase,2,product_added,2,2,0.6667,0.6667\r\n"
            "2024-05-01,purchase,3,checkout_started,1,1,0.3333,0.5\r\n"
            "2024-05-01,purchase,4,order_completed,1,1,0.3333,1.0\r\n"
            "2024-05-01,shoes,1,product_viewed,2,2,1.0,1.0\r\n"
            "2024-05-01,shoes,2,bought,1,1,0.5,0.5\r\n"
            "2024-05-02,purchase,1,product_viewed,1,1,1.0,1.0\r\n"
            "2024-05-02,purchase,2,product_added,0,0,0.0,0.0\r\n"
            "2024-05-02,purchase,3,checkout_started,0,0,0.0,\r\n"
            "2024-05-02,purchase,4,order_completed,0,0,0.0,\r\n"
            "2024-05-02,shoes,1,product_viewed,1,1,1.0,1.0\r\n"
            "2024-05-02,shoes,2,bought,0,0,0.0,0.0\r\n");
  // The default funnel is the same purchase funnel.
  ASSERT_OK_AND_ASSIGN(GoldOptions d, GoldOptions::FromConfig(Config()));
  ASSERT_OK_AND_ASSIGN(GoldOptions o, GoldOptions::FromConfig(config));
  ASSERT_EQ(d.funnels[0].steps.size(), o.funnels[0].steps.size());
  for (size_t i = 0; i < d.funnels[0].steps.size(); i++) EXPECT_EQ(d.funnels[0].steps[i].event, o.funnels[0].steps[i].event);
}

TEST_F(GoldTest, DimUserScd2CarriesAbsentTraitsAndVersionsFacts) {
  std::vector<Ev> rows = {
      {"i00", "identify", "identify", "2024-05-01 07:00:00", "u1", "", 0, R"({"email":"hmac:zz"})"},
      {"p0", "page", "page_viewed", "2024-05-01 09:00:00", "u1", "s0", 1},
      {"i1", "identify", "identify", "2024-05-01 10:00:00", "u1", "", 0,
       R"({"plan":"free","country":"DE","email":"hmac:ab"})"},
      {"p1", "page", "page_viewed", "2024-05-01 10:30:00", "u1", "s1", 1},
      {"i2", "identify", "identify", "2024-05-01 11:00:00", "u1", "", 0, R"({"plan":"free"})"},
      {"i3", "identify", "identify", "2024-05-02 09:00:00", "u1", "", 0, R"({"plan":"plus","country":null})"},
      {"p2", "page", "page_viewed", "2024-05-02 10:00:00", "u1", "s2", 1},
      {"i4", "identify", "identify", "2024-05-03 09:00:00", "u1", "", 0, R"({"created_at":"2024-01-01"})"},
      {"p3", "page", "page_viewed", "2024-05-03 10:00:00", "u1", "s3", 1},
      {"p9", "page", "page_viewed", "2024-05-03 10:00:00", "u2", "s9", 1},
  };
  SetSilver(rows);
  auto stage = Stage();
  ASSERT_OK(stage->Refresh("app", 0).status());
  const std::string dim_sql = "SELECT user_key, version, plan, country, created_at, CAST(valid_from AS TIMESTAMP), "
                              "CAST(valid_to AS TIMESTAMP), is_current FROM gold.dim_user ORDER BY ALL";
  EXPECT_EQ(Csv(dim_sql),
            "user_key,version,plan,country,created_at,CAST(valid_from AS TIMESTAMP),CAST(valid_to AS TIMESTAMP),"
            "is_current\r\n"
            "u1,1,free,DE,,2024-05-01 10:00:00,2024-05-02 09:00:00,false\r\n"
            "u1,2,plus,DE,,2024-05-02 09:00:00,2024-05-03 09:00:00,false\r\n"
            "u1,3,plus,DE,2024-01-01,2024-05-03 09:00:00,,true\r\n");
  const std::string versions_sql = "SELECT event_id, user_version FROM gold.fact_events WHERE event_type = 'page' ORDER BY ALL";
  EXPECT_EQ(Csv(versions_sql), "event_id,user_version\r\np0,\r\np1,1\r\np2,2\r\np3,3\r\np9,\r\n");

  // A late identify before the others renumbers every version and re-versions
  // the user's facts on every date.
  rows.push_back({"i0", "identify", "identify", "2024-05-01 08:00:00", "u1", "", 0, R"({"plan":"trial"})"});
  SetSilver(rows);
  ASSERT_OK_AND_ASSIGN(GoldRefreshResult r, stage->Refresh("app", 1));
  EXPECT_EQ(r.base_version, 1);
  EXPECT_EQ(r.changed_rows, 1);
  EXPECT_EQ(Csv(dim_sql),
            "user_key,version,plan,country,created_at,CAST(valid_from AS TIMESTAMP),CAST(valid_to AS TIMESTAMP),"
            "is_current\r\n"
            "u1,1,trial,,,2024-05-01 08:00:00,2024-05-01 10:00:00,false\r\n"
            "u1,2,free,DE,,2024-05-01 10:00:00,2024-05-02 09:00:00,false\r\n"
            "u1,3,plus,DE,,2024-05-02 09:00:00,2024-05-03 09:00:00,false\r\n"
            "u1,4,plus,DE,2024-01-01,2024-05-03 09:00:00,,true\r\n");
  EXPECT_EQ(Csv(versions_sql), "event_id,user_version\r\np0,1\r\np1,2\r\np2,3\r\np3,4\r\np9,\r\n");
  EXPECT_EQ(r.tables["gold/fact_events"].dates,
            (std::vector<std::string>{"2024-05-01", "2024-05-02", "2024-05-03"}));
  ExpectEqualsRebuild(Config(), "late identify");

  // A trait change at the end re-versions only the facts after it.
  rows.push_back({"i5", "identify", "identify", "2024-05-03 09:30:00", "u1", "", 0, R"({"plan":"premium"})"});
  SetSilver(rows);
  ASSERT_OK_AND_ASSIGN(GoldRefreshResult r2, stage->Refresh("app", 2));
  EXPECT_EQ(r2.tables["gold/fact_events"].dates, (std::vector<std::string>{"2024-05-03"}));
  EXPECT_EQ(Csv(versions_sql), "event_id,user_version\r\np0,1\r\np1,2\r\np2,3\r\np3,5\r\np9,\r\n");
  ExpectEqualsRebuild(Config(), "trait change");
}

TEST_F(GoldTest, DimCampaignAndDevice) {
  std::vector<Ev> rows = {
      {"a", "page", "page_viewed", "2024-05-01 10:00:00", "u1", "s1", 1, "{}", {}, "/", "spring"},
      {"b", "page", "page_viewed", "2024-05-01 10:01:00", "u1", "s1", 2, "{}", {}, "/", "spring"},
      {"c", "page", "page_viewed", "2024-05-02 10:00:00", "u2", "s2", 1, "{}", {}, "/", "spring", "Firefox"},
      {"d", "page", "page_viewed", "2024-05-03 10:00:00", "u3", "s3", 1, "{}", {}, "/", "summer", "Firefox"},
  };
  SetSilver(rows);
  auto stage = Stage();
  ASSERT_OK(stage->Refresh("app", 0).status());
  EXPECT_EQ(Csv("SELECT campaign_id, utm_source, utm_medium, utm_campaign, CAST(first_seen AS TIMESTAMP), "
                "CAST(last_seen AS TIMESTAMP), events, sessions, users FROM gold.dim_campaign ORDER BY ALL"),
            "campaign_id,utm_source,utm_medium,utm_campaign,CAST(first_seen AS TIMESTAMP),CAST(last_seen AS "
            "TIMESTAMP),events,sessions,users\r\n"
            "c-spring,google,cpc,spring,2024-05-01 10:00:00,2024-05-02 10:00:00,3,2,2\r\n"
            "c-summer,google,cpc,summer,2024-05-03 10:00:00,2024-05-03 10:00:00,1,1,1\r\n");
  EXPECT_EQ(Csv("SELECT browser_family, events, users FROM gold.dim_device ORDER BY ALL"),
            "browser_family,events,users\r\nChrome,2,1\r\nFirefox,2,2\r\n");
  // fact_events carries the keys of the dimension rows.
  EXPECT_EQ(Query("SELECT count(*) FROM gold.fact_events f JOIN gold.dim_device d USING (device_key)").GetInt64(0, 0), 4);
  EXPECT_EQ(Query("SELECT count(*) FROM gold.fact_events f JOIN gold.dim_campaign d USING (campaign_id)").GetInt64(0, 0),
            4);
  // The key is stable: a rebuild elsewhere gives the same keys.
  const std::string keys = Csv("SELECT device_key FROM gold.dim_device ORDER BY ALL");
  EXPECT_EQ(RebuildCopy()["gold.dim_device"], GoldTables(lake())["gold.dim_device"]);
  // A new event of one campaign refreshes only that row.
  rows.push_back({"e", "page", "page_viewed", "2024-05-03 11:00:00", "u3", "s3", 2, "{}", {}, "/", "summer", "Firefox"});
  SetSilver(rows);
  ASSERT_OK(stage->Refresh("app", 1).status());
  EXPECT_EQ(Query("SELECT events FROM gold.dim_campaign WHERE campaign_id = 'c-summer'").GetInt64(0, 0), 2);
  EXPECT_EQ(keys, Csv("SELECT device_key FROM gold.dim_device ORDER BY ALL"));
  ExpectEqualsRebuild(Config(), "campaign event");
}

// A refresh whose base version's files were vacuumed away recomputes everything.
TEST_F(GoldTest, RefreshFallsBackToFullRecomputeWhenOldFilesAreGone) {
  std::vector<Ev> rows = {
      {"a", "page", "page_viewed", "2024-05-01 10:00:00", "u1", "s1", 1},
      {"b", "page", "page_viewed", "2024-05-02 10:00:00", "u2", "s2", 1},
  };
  SetSilver(rows);
  auto stage = Stage();
  ASSERT_OK(stage->Refresh("app", 0).status());
  ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open());
  ASSERT_OK_AND_ASSIGN(auto table, delta::Table::Open(JoinPath(lake(), "silver/events"), db.get()));
  ASSERT_OK_AND_ASSIGN(delta::Snapshot before, table->LoadSnapshot());
  rows.push_back({"c", "page", "page_viewed", "2024-05-01 10:05:00", "u1", "s1", 2});
  SetSilver(rows);
  ASSERT_OK_AND_ASSIGN(delta::Snapshot after, table->LoadSnapshot());
  for (const auto& f : before.files) {
    bool live = false;
    for (const auto& g : after.files) live = live || g.path == f.path;
    if (!live) ASSERT_OK(FileSystem::Default()->DeleteFile(JoinPath(table->path(), delta::DecodePath(f.path))));
  }
  ASSERT_OK_AND_ASSIGN(GoldRefreshResult r, stage->Refresh("app", 1));
  EXPECT_TRUE(r.tables["gold/fact_events"].replaced_all);
  EXPECT_EQ(Query("SELECT count(*) FROM gold.fact_events").GetInt64(0, 0), 3);
  ExpectEqualsRebuild(Config(), "after vacuum");
}

// Silver written the way it is with deletion vectors (changed rows marked
// deleted, their new versions and new rows appended): the refresh reads only the
// newly deleted rows and the new files, deletes only the touched keys' Gold rows
// (with deletion vectors too, nothing rewritten), and still equals a rebuild; a
// compaction of Silver changes nothing.
TEST_F(GoldTest, RefreshReadsOnlyWhatSilverDeletionVectorsChanged) {
  std::vector<Ev> rows = {
      {"a", "page", "page_viewed", "2024-05-01 10:00:00", "anon1", "s1", 1, "{}", {}, "/a", "spring"},
      {"b", "track", "product_viewed", "2024-05-01 10:01:00", "anon1", "s1", 2},
      {"c", "page", "page_viewed", "2024-05-01 11:00:00", "u2", "s2", 1, "{}", {}, "/c"},
      {"d", "track", "product_added", "2024-05-01 11:05:00", "u2", "s2", 2},
      {"e", "identify", "identify", "2024-05-01 11:06:00", "u2", "s2", 0, R"({"plan":"free"})"},
      {"f", "page", "page_viewed", "2024-05-02 09:00:00", "u3", "s3", 1, "{}", {}, "/f", "", "Firefox"},
      {"g", "track", "order_completed", "2024-05-02 09:10:00", "u3", "s3", 2, "{}", 20.0},
  };
  SetSilverWithDeletionVectors(rows);
  auto stage = Stage();
  ASSERT_OK(stage->Refresh("app", 0).status());
  ExpectEqualsRebuild(Config(), "first refresh");
  // A late identity link re-keys anon1's two rows; one page path changes; one
  // row goes; a late event extends s3.
  rows[0].user = rows[1].user = "u1";
  rows[2].page_path = "/c2";
  rows.erase(rows.begin() + 3);
  rows.push_back({"h", "track", "checkout_started", "2024-05-02 09:05:00", "u3", "s3", 3});
  SetSilverWithDeletionVectors(rows);
  ASSERT_OK_AND_ASSIGN(auto silver, delta::Table::Open(JoinPath(lake(), "silver/events"), db_.get()));
  ASSERT_OK_AND_ASSIGN(delta::Snapshot snap, silver->LoadSnapshot());
  int with_dv = 0;
  for (const auto& f : snap.files) with_dv += f.deletion_vector.has_value();
  ASSERT_GT(with_dv, 0) << "the test needs Silver files with deletion vectors";
  ASSERT_OK_AND_ASSIGN(GoldRefreshResult r, stage->Refresh("app", 1));
  // Old and new versions of the 2 re-keyed rows and the changed path, the row
  // that went, the new event: nothing else was read as changed.
  EXPECT_EQ(r.changed_rows, 2 * 2 + 2 + 1 + 1);
  EXPECT_EQ(r.tables["gold/fact_events"].rows_written, 4);  // a, b, c, h
  EXPECT_EQ(r.tables["gold/fact_events"].rows_deleted, 4);  // a, b, c, d
  int64_t rewritten = 0;
  for (const auto& [name, t] : r.tables) rewritten += t.rows_rewritten;
  EXPECT_EQ(rewritten, 0);
  ASSERT_OK_AND_ASSIGN(auto facts, delta::Table::Open(JoinPath(lake(), "gold/fact_events"), db_.get()));
  ASSERT_OK_AND_ASSIGN(delta::Snapshot fact_snap, facts->LoadSnapshot());
  int fact_dvs = 0;
  for (const auto& f : fact_snap.files) fact_dvs += f.deletion_vector.has_value();
  EXPECT_GT(fact_dvs, 0) << "Gold rows are deleted with deletion vectors";
  EXPECT_EQ(Csv("SELECT user_key, event_count, exit_path FROM gold.fact_session_daily ORDER BY ALL"),
            "user_key,event_count,exit_path\r\nu1,2,/a\r\nu2,1,/c2\r\nu3,3,/f\r\n");
  ExpectEqualsRebuild(Config(), "deletion vectors");
  // Compaction moves rows (dataChange = false): Gold sees no change.
  const auto before = GoldTables(lake());
  ASSERT_OK_AND_ASSIGN(delta::OptimizeResult optimized, silver->Optimize());
  ASSERT_GT(optimized.files_removed, 0);
  ASSERT_OK_AND_ASSIGN(GoldRefreshResult compacted, stage->Refresh("app", 2));
  EXPECT_EQ(compacted.changed_rows, 0);
  EXPECT_EQ(compacted.compactions_skipped, 1);
  EXPECT_EQ(GoldTables(lake()), before);
  // A second change on a file that already has a deletion vector.
  rows[1].page_path = "/b";
  SetSilverWithDeletionVectors(rows);
  rows[3].properties = R"({"plan":"pro"})";
  SetSilverWithDeletionVectors(rows);
  ASSERT_OK_AND_ASSIGN(GoldRefreshResult again, stage->Refresh("app", 3));
  EXPECT_EQ(again.changed_rows, 4);
  EXPECT_EQ(Csv("SELECT plan FROM gold.dim_user WHERE user_key = 'u2'"), "plan\r\npro\r\n");
  ExpectEqualsRebuild(Config(), "a deletion vector grown twice");
  // A compaction between Gold's base and a change (a busy processor compacts
  // after each batch): the diff reads the change only, not the moved rows.
  ASSERT_OK_AND_ASSIGN(delta::OptimizeResult folded, silver->Optimize());
  ASSERT_GT(folded.files_removed, 0);
  rows[2].page_path = "/c3";
  SetSilverWithDeletionVectors(rows);
  ASSERT_OK_AND_ASSIGN(GoldRefreshResult after_compaction, stage->Refresh("app", 4));
  EXPECT_EQ(after_compaction.compactions_skipped, 1);
  EXPECT_EQ(after_compaction.changed_rows, 2);
  ExpectEqualsRebuild(Config(), "a change after a compaction");
}

// A refresh that fails part-way (a crash between its per-table commits) leaves
// some tables ahead of the others. Re-running the same batch, or refreshing the
// next one, must still equal a rebuild: the keyed recomputes are idempotent and
// user_activity_daily, when ahead, is recomputed instead of folded twice.
TEST_F(GoldTest, RefreshAfterAFailureMidwayEqualsRebuild) {
  std::vector<Ev> rows = {
      {"a", "page", "page_viewed", "2024-05-01 10:00:00", "anon1", "s1", 1, "{}", {}, "/a", "spring"},
      {"b", "track", "order_completed", "2024-05-01 10:01:00", "anon1", "s1", 2, "{}", 5.0},
      {"c", "identify", "identify", "2024-05-01 11:00:00", "u2", "", 0, R"({"plan":"free"})"},
      {"d", "page", "page_viewed", "2024-05-02 09:00:00", "u2", "s2", 1, "{}", {}, "/d"},
  };
  SetSilverWithDeletionVectors(rows);
  ASSERT_OK(Stage()->Refresh("app", 0).status());
  rows[0].user = rows[1].user = "u1";
  rows.push_back({"e", "track", "product_viewed", "2024-05-02 09:05:00", "u2", "s2", 2});
  rows.push_back({"f", "identify", "identify", "2024-05-02 09:06:00", "u2", "", 0, R"({"plan":"pro"})"});
  SetSilverWithDeletionVectors(rows);
  const std::string base_lake = lake();
  // How many file-system mutations a whole refresh of batch 1 makes.
  int64_t total_ops = 0;
  {
    TempDir copy;
    std::filesystem::copy(base_lake, copy.path(), std::filesystem::copy_options::recursive);
    FaultInjectionFileSystem fs(FileSystem::Default());
    auto stage = GoldStage::Open(Config(), copy.path(), db_.get(), &fs);
    ASSERT_OK(stage.status());
    ASSERT_OK((*stage)->Refresh("app", 1).status());
    total_ops = fs.mutating_ops();
  }
  ASSERT_GT(total_ops, 10);
  int split = 0;  // failures that left some tables with batch 1 and some without
  for (int step = 1; step <= 4; step++) {
    const int64_t crash_at = total_ops * step / 5;
    SCOPED_TRACE("fails after " + std::to_string(crash_at) + " of " + std::to_string(total_ops) + " operations");
    TempDir copy;
    std::filesystem::copy(base_lake, copy.path(), std::filesystem::copy_options::recursive);
    lake_ = copy.path();
    FaultInjectionFileSystem fs(FileSystem::Default());
    auto stage = GoldStage::Open(Config(), lake(), db_.get(), &fs);
    ASSERT_OK(stage.status());
    fs.FailAfter(crash_at);
    EXPECT_FALSE((*stage)->Refresh("app", 1).ok());
    fs.ClearFaults();
    int holding = 0;
    for (const char* t : kGoldTables) {
      auto table = delta::Table::Open(JoinPath(lake(), t), db_.get());
      ASSERT_OK(table.status());
      ASSERT_OK_AND_ASSIGN(delta::Snapshot snap, (*table)->LoadSnapshot());
      holding += snap.app_txn_versions.count("app") && snap.app_txn_versions.at("app") == 1;
    }
    split += holding > 0 && holding < static_cast<int>(std::size(kGoldTables));
    if (step % 2 == 1) {
      // The same batch again (tables that hold it skip their commit).
      ASSERT_OK((*stage)->Refresh("app", 1).status());
    } else {
      // The next batch, with another change (tables ahead of the base recompute).
      std::vector<Ev> more = rows;
      more.push_back({"g", "page", "page_viewed", "2024-05-01 10:02:00", "u1", "s1", 3, "{}", {}, "/g"});
      SetSilverWithDeletionVectors(more);
      ASSERT_OK((*stage)->Refresh("app", 2).status());
    }
    ExpectEqualsRebuild(Config(), "after a failed refresh");
    lake_.clear();
  }
  EXPECT_GE(split, 2);
}

// user_activity_daily is state the feature windows read: after refreshes that
// add, re-key (rows vanish from removed files and reappear under another user)
// and drop rows it must equal a rebuild; only changed dates are rewritten; and a
// lake without it (it predates the table) recomputes everything once.
TEST_F(GoldTest, UserActivityDailyFollowsSilverRewrites) {
  std::vector<Ev> rows = {
      {"a", "page", "page_viewed", "2024-05-01 10:00:00", "anon1", "s1", 1},
      {"b", "track", "order_completed", "2024-05-01 10:01:00", "anon1", "s1", 2, "{}", 12.5},
      {"c", "page", "page_viewed", "2024-05-03 09:00:00", "u2", "s2", 1},
      {"d", "track", "product_viewed", "2024-05-10 09:00:00", "u2", "s3", 1},
  };
  SetSilver(rows);
  auto stage = Stage();
  ASSERT_OK(stage->Refresh("app", 0).status());
  ExpectEqualsRebuild(Config(), "first refresh");
  // A late identity link re-keys anon1's rows to u1; a late event on 05-03.
  rows[0].user = rows[1].user = "u1";
  rows.push_back({"e", "track", "product_added", "2024-05-03 09:02:00", "u2", "s2", 2});
  SetSilver(rows);
  ASSERT_OK_AND_ASSIGN(GoldRefreshResult r, stage->Refresh("app", 1));
  EXPECT_EQ(r.tables["gold/user_activity_daily"].dates, (std::vector<std::string>{"2024-05-01", "2024-05-03"}));
  EXPECT_EQ(Csv("SELECT user_key, events, purchases, revenue FROM gold.user_activity_daily "
                "WHERE event_date = DATE '2024-05-01'"),
            "user_key,events,purchases,revenue\r\nu1,2,1,12.500000\r\n");
  ExpectEqualsRebuild(Config(), "after a re-key");
  // Rows removed: a whole date disappears.
  rows.erase(rows.begin() + 3);
  SetSilver(rows);
  ASSERT_OK(stage->Refresh("app", 2).status());
  EXPECT_EQ(Query("SELECT count(*) FROM gold.user_activity_daily WHERE event_date = DATE '2024-05-10'").GetInt64(0, 0),
            0);
  ExpectEqualsRebuild(Config(), "after a removal");
  // The table is gone (a lake from before it existed): recomputed with everything else.
  std::filesystem::remove_all(JoinPath(lake(), "gold/user_activity_daily"));
  rows.push_back({"f", "page", "page_viewed", "2024-05-04 08:00:00", "u3", "s4", 1});
  SetSilver(rows);
  ASSERT_OK_AND_ASSIGN(r, stage->Refresh("app", 3));
  EXPECT_TRUE(r.tables["gold/user_activity_daily"].replaced_all);
  ExpectEqualsRebuild(Config(), "after the table was recreated");
  // A re-run of the same batch commits nothing new and changes nothing.
  ASSERT_OK_AND_ASSIGN(r, stage->Refresh("app", 3));
  EXPECT_TRUE(r.noop);
  ExpectEqualsRebuild(Config(), "after a re-run");
}

// Sessions that only grew are folded from Gold's rows (no Silver read); a
// session whose rows moved is recomputed; both equal a rebuild, in every table.
TEST_F(GoldTest, SessionsThatOnlyGrowAreFolded) {
  std::vector<Ev> rows = {
      {"a1", "page", "page_viewed", "2024-05-01 10:00:00", "u1", "s1", 1, "{}", {}, "", "spring"},
      {"a2", "track", "product_viewed", "2024-05-01 10:02:00", "u1", "s1", 2},
      {"b1", "page", "page_viewed", "2024-05-01 23:55:00", "u2", "s2", 1, "{}", {}, "/x"},
      {"c1", "track", "product_viewed", "2024-05-01 11:00:00", "u3", "s3", 1},
      {"c2", "page", "page_viewed", "2024-05-01 11:05:00", "u3", "s3", 2, "{}", {}, "/c"},
  };
  SetSilverWithDeletionVectors(rows);
  auto stage = Stage();
  ASSERT_OK(stage->Refresh("app", 0).status());
  // s1 grows: a page with a path (its entry stays empty before it), the funnel
  // continues, revenue arrives; s2 grows across midnight; s4 is new; s3 gets a
  // late event before its last one, so its index moves (recomputed).
  rows.push_back({"a3", "page", "page_viewed", "2024-05-01 10:03:00", "u1", "s1", 3, "{}", {}, "/p", "summer"});
  rows.push_back({"a4", "track", "product_added", "2024-05-01 10:04:00", "u1", "s1", 4});
  rows.push_back({"a5", "track", "checkout_started", "2024-05-01 10:05:00", "u1", "s1", 5});
  rows.push_back({"a6", "track", "order_completed", "2024-05-01 10:06:00", "u1", "s1", 6, "{}", 19.99});
  rows.push_back({"b2", "track", "product_viewed", "2024-05-02 00:05:00", "u2", "s2", 2, "{}", {}, "", "", "Firefox"});
  rows.push_back({"d1", "page", "page_viewed", "2024-05-01 12:00:00", "u4", "s4", 1, "{}", {}, "/d"});
  rows[4].index = 3;
  rows.push_back({"c3", "track", "product_added", "2024-05-01 11:03:00", "u3", "s3", 2});
  SetSilverWithDeletionVectors(rows);
  ASSERT_OK_AND_ASSIGN(GoldRefreshResult r, stage->Refresh("app", 1));
  EXPECT_EQ(r.sessions_folded, 2);
  EXPECT_EQ(r.sessions_new, 1);
  EXPECT_EQ(r.sessions_recomputed, 1);
  EXPECT_EQ(Csv("SELECT session_id, event_count, page_views, entry_path, exit_path, utm_campaign, converted, revenue "
                "FROM gold.fact_session_daily ORDER BY session_id"),
            "session_id,event_count,page_views,entry_path,exit_path,utm_campaign,converted,revenue\r\n"
            "s1,6,2,/p,/p,spring,true,19.99\r\n"
            "s2,2,1,/x,/x,,false,0.0\r\n"
            "s3,3,1,/c,/c,,false,0.0\r\n"
            "s4,1,1,/d,/d,,false,0.0\r\n");
  EXPECT_EQ(Csv("SELECT session_id, steps_reached FROM gold.session_funnels ORDER BY session_id"),
            "session_id,steps_reached\r\ns1,4\r\ns2,1\r\ns3,2\r\ns4,0\r\n");
  ExpectEqualsRebuild(Config(), "after sessions grew");
  // A second growth of a folded session, and a refresh that folds nothing.
  rows.push_back({"a7", "page", "page_viewed", "2024-05-01 10:20:00", "u1", "s1", 7, "{}", {}, "/q"});
  SetSilverWithDeletionVectors(rows);
  ASSERT_OK_AND_ASSIGN(r, stage->Refresh("app", 2));
  EXPECT_EQ(r.sessions_folded, 1);
  EXPECT_EQ(r.sessions_recomputed, 0);
  ExpectEqualsRebuild(Config(), "after a second growth");
}

TEST_F(GoldTest, UserFeaturesArePointInTime) {
  std::vector<Ev> rows = {
      {"a1", "page", "page_viewed", "2024-05-01 10:00:00", "u1", "s1", 1},
      {"a2", "track", "product_viewed", "2024-05-01 10:10:00", "u1", "s1", 2},
      {"b1", "page", "page_viewed", "2024-05-03 09:00:00", "u1", "s2", 1},
      {"b2", "track", "order_completed", "2024-05-03 09:30:00", "u1", "s2", 2, "{}", 10.0},
      {"c1", "page", "page_viewed", "2024-05-10 12:00:00", "u1", "s3", 1},
      // u2: a session across midnight; on its first day only its first event counts.
      {"m1", "page", "page_viewed", "2024-05-05 23:50:00", "u2", "m", 1},
      {"m2", "page", "page_viewed", "2024-05-06 00:20:00", "u2", "m", 2},
  };
  SetSilver(rows);
  auto stage = Stage();
  ASSERT_OK(stage->Refresh("app", 0).status());
  const std::string sql =
      "SELECT user_key, feature_date, events_7d, sessions_7d, active_days_7d, page_views_7d, product_views_7d, "
      "add_to_cart_7d, checkouts_7d, purchases_30d, revenue_30d, recency_days, frequency_30d, "
      "avg_session_duration_7d FROM gold.user_features_daily ";
  EXPECT_EQ(Csv(sql + "WHERE user_key = 'u1' AND feature_date IN ('2024-05-01', '2024-05-02', '2024-05-03', "
                      "'2024-05-08', '2024-05-10') ORDER BY ALL"),
            "user_key,feature_date,events_7d,sessions_7d,active_days_7d,page_views_7d,product_views_7d,"
            "add_to_cart_7d,checkouts_7d,purchases_30d,revenue_30d,recency_days,frequency_30d,"
            "avg_session_duration_7d\r\n"
            "u1,2024-05-01,2,1,1,1,1,0,0,0,0.0,0,1,600.0\r\n"
            "u1,2024-05-02,2,1,1,1,1,0,0,0,0.0,1,1,600.0\r\n"
            "u1,2024-05-03,4,2,2,2,1,0,0,1,10.0,0,2,1200.0\r\n"
            "u1,2024-05-08,2,1,1,1,0,0,0,1,10.0,5,2,1800.0\r\n"
            "u1,2024-05-10,1,1,1,1,0,0,0,1,10.0,0,3,0.0\r\n");
  EXPECT_EQ(Csv("SELECT feature_date, avg_session_duration_7d FROM gold.user_features_daily WHERE user_key = 'u2' "
                "AND feature_date <= '2024-05-06' ORDER BY ALL"),
            "feature_date,avg_session_duration_7d\r\n2024-05-05,0.0\r\n2024-05-06,1800.0\r\n");
  // One row per active user per day from the first to the newest event date.
  EXPECT_EQ(Csv("SELECT min(feature_date) AS lo, max(feature_date) AS hi, count(*) FILTER (WHERE user_key = 'u1') "
                "AS n FROM gold.user_features_daily"),
            "lo,hi,n\r\n2024-05-01,2024-05-10,10\r\n");
  const std::string before = Csv(sql + "WHERE feature_date < '2024-05-02' ORDER BY ALL");

  // A late event on 2024-05-02 changes the rows from that day on, not before.
  rows.push_back({"late", "page", "page_viewed", "2024-05-02 15:00:00", "u1", "s-late", 1});
  SetSilver(rows);
  ASSERT_OK_AND_ASSIGN(GoldRefreshResult r, stage->Refresh("app", 1));
  const auto& dates = r.tables["gold/user_features_daily"].dates;
  ASSERT_FALSE(dates.empty());
  EXPECT_EQ(dates.front(), "2024-05-02");
  EXPECT_EQ(dates.back(), "2024-05-10");
  EXPECT_EQ(Csv(sql + "WHERE feature_date < '2024-05-02' ORDER BY ALL"), before);
  EXPECT_EQ(Query("SELECT events_7d, sessions_7d, recency_days FROM gold.user_features_daily WHERE user_key = 'u1' "
                  "AND feature_date = '2024-05-02'").ToCsv(),
            "events_7d,sessions_7d,recency_days\r\n3,2,0\r\n");
  ExpectEqualsRebuild(Config(), "late event");

  // A newer event date extends the feature dates (users still within 30 days).
  rows.push_back({"n1", "page", "page_viewed", "2024-05-20 10:00:00", "u2", "n", 1});
  SetSilver(rows);
  ASSERT_OK(stage->Refresh("app", 2).status());
  EXPECT_EQ(Query("SELECT recency_days FROM gold.user_features_daily WHERE user_key = 'u1' AND "
                  "feature_date = '2024-05-15'").GetInt64(0, 0, -1),
            5);
  ExpectEqualsRebuild(Config(), "newer date");
}

// The [gold] block of DefaultConfigToml, uncommented, is a valid configuration.
TEST(GoldOptionsTest, DefaultConfigGoldSectionParses) {
  const std::string toml = DefaultConfigToml();
  const size_t begin = toml.find("[gold]");
  const size_t end = toml.find("\n[", begin + 1);
  ASSERT_NE(begin, std::string::npos);
  std::istringstream in(toml.substr(begin, end - begin));
  std::string line, text;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0) {
      std::string rest = line.substr(2);
      size_t i = rest.find_first_not_of(' ');
      if (i != std::string::npos && (rest.compare(i, 11, "user_traits") == 0 || rest[i] == '[' ||
                                     rest.compare(i, 4, "name") == 0 || rest.compare(i, 5, "steps") == 0 ||
                                     rest[i] == '{')) {
        line = rest;
      }
    }
    text += line + "\n";
  }
  ASSERT_OK_AND_ASSIGN(Config c, Config::Parse(text));
  ASSERT_OK_AND_ASSIGN(GoldOptions o, GoldOptions::FromConfig(c));
  ASSERT_EQ(o.funnels.size(), 2u) << text;
  EXPECT_EQ(o.funnels[0].steps.size(), 4u);
  EXPECT_EQ(o.funnels[1].steps[0].where.at("category"), "shoes");
  EXPECT_EQ(o.user_traits.size(), 3u);
}

// Counts the runner's Gold refreshes, and those that took the batch's own
// Silver change instead of diffing the files (gold::SilverChange).
class RefreshCounter : public BatchObserver {
 public:
  void OnBatchCommitted(const BatchResult& r) override {
    if (!r.gold || r.gold->base_version < 0 || r.gold->noop) return;
    incremental++;
    if (r.gold->diff_from_batch) from_batch++;
  }
  int incremental = 0;
  int from_batch = 0;
};

// Simulated traffic through the micro-batch runner.
class GoldPipelineTest : public GoldTest {
 protected:
  // Simulated Segment traffic, plus hand-made events: an anonymous visitor whose
  // identity link comes after their events, and a late event that moves the
  // start of a session back across midnight. Returns (early, late) payloads.
  void MakeTraffic() {
    simulate::SimulatorOptions so;
    so.users = 20;
    so.seed = 7;
    so.start_time_us = 1714550400000000LL;  // 2024-05-01T08:00:00Z
    so.duplicate_rate = 0.02;
    so.late_rate = 0.02;
    so.out_of_order_rate = 0.05;
    so.malformed_rate = 0.005;
    simulate::TrafficGenerator gen(so);
    std::map<std::string, size_t> first;
    for (int b = 0; b < 30; b++) {
      simulate::GeneratedBatch batch = gen.NextBatch();
      int64_t sent = batch.DefaultSentAtMicros();
      for (const auto& e : batch.events) {
        if (!e.duplicate_of.empty() && first.count(e.duplicate_of)) {
          events_.push_back(events_[first[e.duplicate_of]]);
          continue;
        }
        RawEvent raw;
        raw.received_at_us = sent + 80000;
        raw.source = "web";
        raw.protocol = "segment";
        raw.client_ip = "203.0.113.7";
        raw.payload = batch.EventPayload(e, sent);
        first.emplace(e.message_id, events_.size());
        events_.push_back(std::move(raw));
      }
    }
    auto payload = [](const std::string& json, const std::string& ts) {
      RawEvent raw;
      raw.received_at_us = 1714694400000000LL;  // 2024-05-03T00:00:00Z
      raw.source = "web";
      raw.protocol = "segment";
      raw.client_ip = "203.0.113.9";
      raw.user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
      raw.payload = json.substr(0, json.size() - 1) + ",\"timestamp\":\"" + ts + "\"}";
      return raw;
    };
    early_ = {
        payload(R"({"type":"page","anonymousId":"anon-x","messageId":"x1","properties":{"path":"/"}})",
                "2024-05-01T23:40:00Z"),
        payload(R"({"type":"track","event":"Product Viewed","anonymousId":"anon-x","messageId":"x2"})",
                "2024-05-01T23:45:00Z"),
        payload(R"({"type":"page","userId":"u-late","messageId":"l1","properties":{"path":"/a"}})",
                "2024-05-02T00:10:00Z"),
        payload(R"({"type":"track","event":"Order Completed","userId":"u-late","messageId":"l2",)"
                R"("properties":{"revenue":12.5}})",
                "2024-05-02T00:20:00Z"),
    };
    late_ = {
        payload(R"({"type":"page","userId":"u-late","messageId":"l0","properties":{"path":"/landing"}})",
                "2024-05-01T23:55:00Z"),
        payload(R"({"type":"identify","userId":"u-x","anonymousId":"anon-x","messageId":"x9",)"
                R"("traits":{"plan":"plus","country":"FR"}})",
                "2024-05-02T00:05:00Z"),
    };
  }

  // Appends `batch` to the log and drains it through the runner.
  void Deliver(log::EventLog* log, MicroBatchRunner* runner, const std::vector<RawEvent>& batch) {
    std::vector<log::LogEntry> entries;
    for (size_t j = 0; j < batch.size(); j++) {
      log::LogEntry entry;
      entry.key = std::to_string(j % 5);
      EncodeRawEvent(batch[j], &entry.value);
      entries.push_back(std::move(entry));
    }
    ASSERT_OK(log->Append(std::move(entries)));
    ASSERT_OK(runner->Drain());
  }

  // Runs the pipeline over `order` in random chunks (early_ after a third,
  // late_ at the end), with Gold refreshed after each batch.
  void RunPipeline(const std::string& lake_dir, const std::vector<size_t>& order, std::mt19937* rng, int max_chunk,
                   const Config& extra = Config()) {
    Config config;
    config.Set("lake.dir", lake_dir);
    config.Set("log.partitions", "3");
    ASSERT_OK_AND_ASSIGN(auto log, log::OpenEventLog(config));
    PipelineOptions options;
    options.lake_dir = lake_dir;
    options.config = extra;
    options.config.Set("privacy.key_file", JoinPath(key_dir_.path(), "pii.key"));
    options.config.Set("silver.quarantine_min_batch", "1000000");
    refreshes_ = std::make_shared<RefreshCounter>();
    options.observers.push_back(refreshes_);
    ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options, log.get()));
    size_t i = 0;
    bool early_sent = false;
    while (i < order.size()) {
      size_t n = std::min(order.size() - i, static_cast<size_t>(1 + (*rng)() % max_chunk));
      std::vector<RawEvent> batch;
      for (size_t j = i; j < i + n; j++) batch.push_back(events_[order[j]]);
      i += n;
      if (!early_sent && i >= order.size() / 3) {
        batch.insert(batch.end(), early_.begin(), early_.end());
        early_sent = true;
      }
      Deliver(log.get(), runner.get(), batch);
    }
    Deliver(log.get(), runner.get(), {late_[0]});
    Deliver(log.get(), runner.get(), {late_[1]});
  }

  TempDir key_dir_;
  std::vector<RawEvent> events_;
  std::vector<RawEvent> early_, late_;
  std::shared_ptr<RefreshCounter> refreshes_;
};

TEST_F(GoldPipelineTest, IncrementalEqualsFullRebuildInAnyDeliveryOrder) {
  MakeTraffic();
  std::vector<size_t> order(events_.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::mt19937 rng(5);
  for (int trial = 0; trial < 2; trial++) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    std::vector<size_t> o = order;
    if (trial == 1) std::shuffle(o.begin(), o.end(), rng);
    auto run = std::make_unique<TempDir>();
    lake_ = run->path();
    RunPipeline(lake(), o, &rng, 120);
    // Most refreshes took their batch's change as it was committed (the others
    // follow a Gold failure or a commit that is not the batch's).
    std::cout << "incremental refreshes " << refreshes_->incremental << ", from the batch's change "
              << refreshes_->from_batch << "\n";
    EXPECT_GT(refreshes_->incremental, 3);
    EXPECT_GE(2 * refreshes_->from_batch, refreshes_->incremental);
    // Gold ran after every batch and covers the latest silver version.
    EXPECT_GT(Query("SELECT count(DISTINCT batch_id) FROM system.gold_refreshes").GetInt64(0, 0), 3);
    EXPECT_GT(Query("SELECT sum(gold_ms) FROM system.batches").GetDouble(0, 0), 0);
    EXPECT_GT(Query("SELECT count(*) FROM gold.fact_session_daily").GetInt64(0, 0), 20);
    EXPECT_GT(Query("SELECT count(*) FROM gold.dim_user").GetInt64(0, 0), 0);
    EXPECT_GT(Query("SELECT count(*) FROM gold.fact_funnel_daily WHERE step_index = 4 AND sessions > 0").GetInt64(0, 0),
              0);
    // The late event moved u-late's session start to 2024-05-01.
    EXPECT_EQ(Csv("SELECT session_date, event_count, entry_path, revenue FROM gold.fact_session_daily "
                  "WHERE user_key = 'u-late'"),
              "session_date,event_count,entry_path,revenue\r\n2024-05-01,3,/landing,12.5\r\n");
    // The late identity link re-keyed anon-x's events in every Gold table.
    EXPECT_EQ(Query("SELECT count(*) FROM gold.fact_events WHERE user_key = 'anon:anon-x'").GetInt64(0, 0), 0);
    EXPECT_EQ(Query("SELECT count(*) FROM gold.fact_events WHERE user_key = 'u-x'").GetInt64(0, 0), 3);
    EXPECT_EQ(Query("SELECT count(*) FROM gold.user_features_daily WHERE user_key = 'anon:anon-x'").GetInt64(0, 0), 0);
    EXPECT_EQ(Csv("SELECT plan, country FROM gold.dim_user WHERE user_key = 'u-x'"), "plan,country\r\nplus,FR\r\n");
    // Revenue reconciles.
    auto rev = Query("SELECT (SELECT sum(revenue) FROM gold.fact_session_daily), (SELECT sum(revenue) FROM "
                     "gold.fact_events), (SELECT sum(revenue) FROM silver.events), (SELECT count(*) FROM "
                     "silver.events WHERE revenue IS NOT NULL AND session_id IS NULL)");
    EXPECT_GT(rev.GetDouble(0, 2), 0);
    EXPECT_NEAR(rev.GetDouble(0, 0), rev.GetDouble(0, 2), 1e-6);
    EXPECT_NEAR(rev.GetDouble(0, 1), rev.GetDouble(0, 2), 1e-6);
    EXPECT_EQ(rev.GetInt64(0, 3), 0);
    ExpectEqualsRebuild(Config(), "trial " + std::to_string(trial));
  }
}

// Steady traffic within one day, delivered in equal micro-batches: every
// refresh writes Gold rows in proportion to the rows that changed in Silver, not
// to the size of the day, which grows with every batch. (Recomputing whole
// dates would write every fact_events row of the day again each time: the last
// check below shows that would be many times the bound.)
TEST_F(GoldPipelineTest, RefreshWritesFollowTheChangeNotTheDay) {
  simulate::SimulatorOptions so;
  so.users = 150;
  so.seed = 11;
  so.start_time_us = 1714525200000000LL;  // 2024-05-01T01:00:00Z
  so.late_rate = 0.01;
  so.out_of_order_rate = 0.03;
  simulate::TrafficGenerator gen(so);
  constexpr size_t kBatch = 200, kBatches = 12;
  while (events_.size() < kBatch * kBatches) {
    simulate::GeneratedBatch batch = gen.NextBatch();
    int64_t sent = batch.DefaultSentAtMicros();
    for (const auto& e : batch.events) {
      RawEvent raw;
      raw.received_at_us = sent + 80000;
      raw.source = "web";
      raw.protocol = "segment";
      raw.client_ip = "203.0.113.7";
      raw.payload = batch.EventPayload(e, sent);
      events_.push_back(std::move(raw));
    }
  }
  events_.resize(kBatch * kBatches);
  ASSERT_LT(gen.SimulatedNowMicros(), 1714608000000000LL) << "the traffic must stay within 2024-05-01";

  Config config;
  config.Set("lake.dir", lake());
  config.Set("log.partitions", "2");
  ASSERT_OK_AND_ASSIGN(auto log, log::OpenEventLog(config));
  PipelineOptions options;
  options.lake_dir = lake();
  options.config.Set("privacy.key_file", JoinPath(key_dir_.path(), "pii.key"));
  options.config.Set("silver.quarantine_min_batch", "1000000");
  ASSERT_OK_AND_ASSIGN(auto runner, MicroBatchRunner::Create(options, log.get()));
  for (size_t b = 0; b < kBatches; b++) {
    Deliver(log.get(), runner.get(),
            std::vector<RawEvent>(events_.begin() + b * kBatch, events_.begin() + (b + 1) * kBatch));
  }
  auto rows = Query(
      "SELECT batch_id, table_name, rows_written, rows_deleted, rows_rewritten, silver_rows_changed "
      "FROM system.gold_refreshes WHERE mode = 'refresh' ORDER BY batch_id, table_name");
  std::map<int64_t, std::map<std::string, std::array<int64_t, 3>>> by_batch;  // written, deleted, rewritten
  std::map<int64_t, int64_t> changed;
  for (size_t i = 0; i < rows.row_count(); i++) {
    by_batch[rows.GetInt64(i, 0)][rows.GetString(i, 1)] = {rows.GetInt64(i, 2), rows.GetInt64(i, 3),
                                                           rows.GetInt64(i, 4)};
    changed[rows.GetInt64(i, 0)] = rows.GetInt64(i, 5);
  }
  ASSERT_GE(by_batch.size(), kBatches - 1);
  int64_t last_fact_written = 0;
  std::vector<double> per_changed;
  for (const auto& [batch, tables] : by_batch) {
    if (batch < 2) continue;  // the first refreshes create the day
    SCOPED_TRACE("batch " + std::to_string(batch) + ", silver rows changed " + std::to_string(changed[batch]));
    const int64_t ch = changed[batch];
    ASSERT_GT(ch, 0);
    int64_t total = 0;
    for (const auto& [table, n] : tables) {
      SCOPED_TRACE(table);
      EXPECT_EQ(n[2], 0) << "rows copied: deletes must use deletion vectors";
      const int64_t bound = table == "gold.fact_funnel_daily" ? 4 * 4 : 2 * ch + 20;
      EXPECT_LE(n[0], bound);
      EXPECT_LE(n[1], bound);
      total += n[0] + n[1] + n[2];
    }
    per_changed.push_back(static_cast<double>(total) / ch);
    std::cout << "batch " << batch << ": silver rows changed " << ch << ", gold rows written + deleted " << total
              << "\n";
    last_fact_written = tables.count("gold.fact_events") ? tables.at("gold.fact_events")[0] : 0;
  }
  // Flat: Gold rows per changed Silver row late in the day as early in it.
  ASSERT_GE(per_changed.size(), 8u);
  const double early = (per_changed[0] + per_changed[1] + per_changed[2]) / 3;
  const size_t n = per_changed.size();
  const double late = (per_changed[n - 1] + per_changed[n - 2] + per_changed[n - 3]) / 3;
  EXPECT_LE(late, 1.5 * early + 1) << "early " << early << ", late " << late;
  // What a date-level recompute would have written for fact_events alone.
  const int64_t day_rows = Query("SELECT count(*) FROM gold.fact_events").GetInt64(0, 0);
  std::cout << "fact_events rows of the day " << day_rows << ", written by the last refresh " << last_fact_written
            << "\n";
  EXPECT_GE(day_rows, 5 * std::max<int64_t>(last_fact_written, 1));
  ExpectEqualsRebuild(Config(), "steady traffic");
}

TEST_F(GoldPipelineTest, BackfillGoldCoversAFunnelAddedLater) {
  MakeTraffic();
  std::vector<size_t> order(events_.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::mt19937 rng(9);
  RunPipeline(lake(), order, &rng, 200);
  EXPECT_EQ(Query("SELECT count(DISTINCT funnel) FROM gold.fact_funnel_daily").GetInt64(0, 0), 1);
  ASSERT_OK_AND_ASSIGN(Config config, Config::Parse(R"(
[[gold.funnels]]
name = "purchase"
steps = [{event = "product_viewed"}, {event = "product_added"}, {event = "checkout_started"}, {event = "order_completed"}]
[[gold.funnels]]
name = "browse"
steps = [{event = "page_viewed"}, {event = "product_viewed"}]
)"));
  config.Set("privacy.key_file", JoinPath(key_dir_.path(), "pii.key"));
  BackfillOptions bo;
  bo.lake_dir = lake();
  bo.config = config;
  bo.silver = false;
  bo.gold = true;
  // Only 2024-05-01 first: the new funnel appears there and nowhere else.
  bo.from_date = bo.to_date = "2024-05-01";
  std::vector<std::string> progress;
  bo.progress = [&](const std::string& line) { progress.push_back(line); };
  ASSERT_OK_AND_ASSIGN(BackfillResult r, RunBackfill(bo));
  EXPECT_GT(r.gold_rows, 0);
  EXPECT_FALSE(progress.empty());
  EXPECT_EQ(Csv("SELECT DISTINCT event_date FROM gold.fact_funnel_daily WHERE funnel = 'browse'"),
            "event_date\r\n2024-05-01\r\n");
  // The whole history: equal to a rebuild with the new configuration.
  bo.from_date = "2024-04-01";
  bo.to_date = "2024-05-31";
  ASSERT_OK(RunBackfill(bo).status());
  EXPECT_EQ(Query("SELECT count(DISTINCT event_date) FROM gold.fact_funnel_daily WHERE funnel = 'browse'").GetInt64(0, 0),
            Query("SELECT count(DISTINCT session_date) FROM gold.fact_session_daily").GetInt64(0, 0));
  ExpectEqualsRebuild(config, "backfill");
  // silver and gold together: Silver rebuilt from Bronze, then Gold.
  bo.silver = true;
  ASSERT_OK_AND_ASSIGN(BackfillResult both, RunBackfill(bo));
  EXPECT_GT(both.silver_rows, 0);
  EXPECT_GT(both.gold_rows, 0);
  ExpectEqualsRebuild(config, "silver,gold backfill");
  bo.silver = bo.gold = false;
  EXPECT_STATUS(RunBackfill(bo), kInvalidArgument);
}

}  // namespace
}  // namespace clicklake::pipeline::gold

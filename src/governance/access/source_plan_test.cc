#include "governance/access/source_plan.h"

#include <gtest/gtest.h>

#include "common/test_util.h"

namespace clicklake::access {
namespace {

// A governed view of four rows over the four kinds of column the rules tell apart.
class SourcePlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, engine::Database::Open());
    ASSERT_OK_AND_ASSIGN(conn_, db_->Connect());
    table_.schema = "silver";
    table_.name = "events";
    table_.governed_sql =
        "SELECT * FROM (VALUES ('a', 1, DATE '2024-05-01', 2.5::DOUBLE), ('b', 2, DATE '2024-05-02', 4.0::DOUBLE), "
        "('b', 3, DATE '2024-05-03', NULL::DOUBLE), ('c', 4, DATE '2024-05-04', 1.5::DOUBLE)) t(name, n, day, amount)";
    table_.columns = {"name", "n", "day", "amount"};
    table_.types = {"VARCHAR", "INTEGER", "DATE", "DOUBLE"};
  }
  std::optional<SourcePlan> Plan(const std::string& sql) {
    auto plan = PlanInSource(conn_.get(), sql, table_);
    EXPECT_TRUE(plan.ok()) << plan.status() << "\n" << sql;
    return plan.ok() ? *plan : std::nullopt;
  }
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<engine::Connection> conn_;
  PlannedTable table_;
};

TEST_F(SourcePlanTest, ReportShapesRunInTheSourceWithTheSameAnswer) {
  // The statement's answer over a view named as the user named it.
  ASSERT_OK(conn_->Execute("CREATE SCHEMA silver; CREATE VIEW silver.events AS " + table_.governed_sql));
  for (const std::string& sql : std::vector<std::string>{
           "SELECT name, count(*) AS rows, round(sum(amount), 2) AS total FROM silver.events "
           "WHERE day >= DATE '2024-05-02' AND day <= DATE '2024-05-04' AND name = 'b' GROUP BY ALL "
           "ORDER BY total DESC NULLS LAST LIMIT 20",
           "SELECT count(DISTINCT name) AS names, count(*) FROM silver.events WHERE day BETWEEN '2024-05-01' AND "
           "'2024-05-03'",
           "SELECT e.name, max(e.n) FROM silver.events AS e WHERE e.name IN ('a', 'c') OR e.amount > 2 GROUP BY 1 "
           "ORDER BY 1",
           "SELECT events.name FROM silver.events WHERE name LIKE 'b%' AND amount IS NOT NULL ORDER BY 1",
           "SELECT DISTINCT upper(name) AS u, CASE WHEN n > 2 THEN 'big' ELSE 'small' END AS size FROM silver.events "
           "WHERE NOT (n = 2) AND n < 5 ORDER BY u, size LIMIT 10 OFFSET 1",
           "select NAME, year(DAY) as y, coalesce(amount, 0) * 2 from SILVER.EVENTS where n <> 1 order by 1, 3",
           "SELECT name, count(*) AS events FROM silver.events GROUP BY name ORDER BY events DESC, name",
       }) {
    std::optional<SourcePlan> plan = Plan(sql);
    ASSERT_TRUE(plan.has_value()) << sql;
    ASSERT_OK_AND_ASSIGN(engine::QueryResult got, conn_->Query(plan->sql));
    ASSERT_OK_AND_ASSIGN(engine::QueryResult want, conn_->Query(sql));
    EXPECT_EQ(got.ToCsv(), want.ToCsv()) << sql << "\n" << plan->sql;
  }
  // The columns named are those of the view the statement reads (for the audit).
  std::optional<SourcePlan> plan = Plan("SELECT name, count(*) AS c FROM silver.events WHERE day > '2024-05-01' "
                                        "GROUP BY name ORDER BY c");
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->columns, (std::vector<std::string>{"day", "name"}));
  EXPECT_NE(plan->sql.find(table_.governed_sql), std::string::npos);
}

TEST_F(SourcePlanTest, AnythingElseStaysInTheSandbox) {
  for (const std::string& sql : std::vector<std::string>{
           // every column, other relations, nesting
           "SELECT * FROM silver.events",
           "SELECT * EXCLUDE (n) FROM silver.events",
           "SELECT COLUMNS('a.*') FROM silver.events",
           "SELECT a.name FROM silver.events a JOIN silver.events b USING (name)",
           "SELECT name FROM silver.events, range(3)",
           "SELECT name FROM silver.events UNION ALL SELECT name FROM silver.events",
           "WITH x AS (SELECT name FROM silver.events) SELECT name FROM x",
           "SELECT name FROM (SELECT name FROM silver.events)",
           "SELECT name FROM silver.events WHERE name IN (SELECT name FROM silver.events)",
           "SELECT (SELECT 1) FROM silver.events",
           "SELECT name FROM gold.events",
           "SELECT name FROM events",
           "SELECT name FROM other.silver.events",
           "SELECT name FROM silver.events USING SAMPLE 10",
           "SELECT silver.events.name FROM silver.events",
           "SELECT x.name FROM silver.events AS e",
           "SELECT e FROM silver.events AS e",
           "SELECT events FROM silver.events",
           "EXPLAIN SELECT name FROM silver.events",
           "SELECT name FROM silver.events WHERE n = $1",
           // functions outside the list: files, settings, SQL text, the mask's key
           "SELECT getenv('HOME') FROM silver.events",
           "SELECT current_setting('threads') FROM silver.events",
           "SELECT clicklake_pii_hmac(name) FROM silver.events",
           "SELECT md5(name) FROM silver.events",
           "SELECT main.lower(name) FROM silver.events",
           "SELECT row_number() OVER () FROM silver.events",
           "SELECT list_transform([1], x -> x + 1) FROM silver.events",
           "SELECT count(*) FILTER (WHERE n > 1) FROM silver.events",
           "SELECT string_agg(name, ',' ORDER BY name) FROM silver.events",
           // filters that could be evaluated on rows the row filter removes
           "SELECT name FROM silver.events WHERE CAST(name AS INTEGER) = 1",
           "SELECT name FROM silver.events WHERE name = 5",
           "SELECT name FROM silver.events WHERE name > DATE '2024-05-01'",
           "SELECT name FROM silver.events WHERE day = 20240501",
           "SELECT name FROM silver.events WHERE n = 1.5",
           "SELECT name FROM silver.events WHERE length(name) > 1",
           "SELECT name FROM silver.events WHERE name = upper(name)",
           "SELECT name FROM silver.events WHERE n + 1 > 2",
           "SELECT name FROM silver.events WHERE 1 / n > 0",
           "SELECT name FROM silver.events WHERE n LIKE '1%'",
           "SELECT name FROM silver.events WHERE name LIKE 'a%' ESCAPE '!'",
           "SELECT name AS alias_of_name FROM silver.events WHERE alias_of_name = 'a'",
           "SELECT name FROM silver.events WHERE missing = 'a'",
           "SELECT name, count(*) FROM silver.events GROUP BY name HAVING count(*) > 1",
           "SELECT name FROM silver.events QUALIFY n > 1",
           "SELECT name FROM silver.events LIMIT (SELECT 1)",
           "SELECT name FROM silver.events LIMIT n",
       }) {
    auto plan = PlanInSource(conn_.get(), sql, table_);
    // Refused shapes are not errors: they run in the sandbox (or fail there).
    ASSERT_TRUE(plan.ok()) << plan.status() << "\n" << sql;
    EXPECT_FALSE(plan->has_value()) << "planned in the source: " << sql << "\n" << (*plan)->sql;
  }
}

TEST(ComparisonTypesTest, OnlyComparisonsThatNeverCastTheColumn) {
  EXPECT_TRUE(ComparisonKeepsColumnType("VARCHAR", "VARCHAR"));
  EXPECT_TRUE(ComparisonKeepsColumnType("DATE", "VARCHAR"));  // the literal is cast
  EXPECT_TRUE(ComparisonKeepsColumnType("BIGINT", "VARCHAR"));
  EXPECT_TRUE(ComparisonKeepsColumnType("TIMESTAMPTZ", "DATE"));
  EXPECT_TRUE(ComparisonKeepsColumnType("DATE", "TIMESTAMP WITH TIME ZONE"));
  EXPECT_TRUE(ComparisonKeepsColumnType("INTEGER", "BIGINT"));
  EXPECT_TRUE(ComparisonKeepsColumnType("BIGINT", "DOUBLE"));
  EXPECT_TRUE(ComparisonKeepsColumnType("DOUBLE", "DECIMAL"));
  EXPECT_TRUE(ComparisonKeepsColumnType("BOOLEAN", "BOOLEAN"));
  // The column would be cast, and a value that does not convert would be named in the error.
  EXPECT_FALSE(ComparisonKeepsColumnType("VARCHAR", "INTEGER"));
  EXPECT_FALSE(ComparisonKeepsColumnType("VARCHAR", "DATE"));
  EXPECT_FALSE(ComparisonKeepsColumnType("VARCHAR", "BOOLEAN"));
  EXPECT_FALSE(ComparisonKeepsColumnType("DATE", "INTEGER"));
  EXPECT_FALSE(ComparisonKeepsColumnType("INTEGER", "DECIMAL"));
  EXPECT_FALSE(ComparisonKeepsColumnType("DECIMAL(10,2)", "INTEGER"));
  EXPECT_FALSE(ComparisonKeepsColumnType("BOOLEAN", "INTEGER"));
  EXPECT_FALSE(ComparisonKeepsColumnType("STRUCT(a INTEGER)", "INTEGER"));
}

}  // namespace
}  // namespace clicklake::access

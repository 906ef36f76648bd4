#include "engine/engine.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "common/test_util.h"

namespace clicklake::engine {
namespace {

using clicklake::testing::TempDir;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, Database::Open());
    ASSERT_OK_AND_ASSIGN(conn_, db_->Connect());
  }
  std::unique_ptr<Database> db_;
  std::unique_ptr<Connection> conn_;
};

TEST_F(EngineTest, QueriesTypedValues) {
  ASSERT_OK_AND_ASSIGN(QueryResult r, conn_->Query(
      "SELECT 42::BIGINT AS n, 1.5::DOUBLE AS d, 'a,b' AS s, NULL::VARCHAR AS z, DATE '2024-05-01' AS dt, true AS b"));
  ASSERT_EQ(r.row_count(), 1u);
  ASSERT_EQ(r.column_count(), 6u);
  EXPECT_EQ(r.column_name(0), "n");
  EXPECT_EQ(r.GetInt64(0, 0), 42);
  EXPECT_DOUBLE_EQ(r.GetDouble(0, 1), 1.5);
  EXPECT_EQ(r.GetString(0, 2), "a,b");
  EXPECT_TRUE(r.IsNull(0, 3));
  EXPECT_EQ(r.column_kind(4), ColumnKind::kDate);
  EXPECT_EQ(r.GetString(0, 4), "2024-05-01");
  EXPECT_EQ(r.ToCsv(), "n,d,s,z,dt,b\r\n42,1.5,\"a,b\",,2024-05-01,true\r\n");
  EXPECT_EQ(r.ToJson(), "[{\"n\":42,\"d\":1.5,\"s\":\"a,b\",\"z\":null,\"dt\":\"2024-05-01\",\"b\":true}]\n");
}

TEST_F(EngineTest, TimestampTzRendersInUtc) {
  ASSERT_OK(conn_->Execute("SET TimeZone='UTC'"));
  ASSERT_OK_AND_ASSIGN(QueryResult r, conn_->Query(
      "SELECT TIMESTAMPTZ '2024-05-01 11:59:50+00' AS a, TIMESTAMPTZ '2024-05-01 11:59:50.25+02' AS b, "
      "NULL::TIMESTAMPTZ AS c"));
  EXPECT_EQ(r.column_kind(0), ColumnKind::kTimestamp);
  EXPECT_EQ(r.GetString(0, 0), "2024-05-01 11:59:50+00");
  EXPECT_EQ(r.GetString(0, 1), "2024-05-01 09:59:50.25+00");
  EXPECT_TRUE(r.IsNull(0, 2));
  // After other columns, over several rows (read from the chunks before the
  // row-wise accessors are used).
  ASSERT_OK_AND_ASSIGN(QueryResult m, conn_->Query(
      "SELECT 'k' || range AS k, CASE WHEN range = 1 THEN NULL ELSE TIMESTAMPTZ '2024-05-01 00:00:00+00' + "
      "INTERVAL (range) HOUR END AS t, range AS n FROM range(3)"));
  EXPECT_EQ(m.ToCsv(), "k,t,n\r\nk0,2024-05-01 00:00:00+00,0\r\nk1,,1\r\nk2,2024-05-01 02:00:00+00,2\r\n");
  EXPECT_EQ(m.column_name(1), "t");
  EXPECT_EQ(m.column_kind(1), ColumnKind::kTimestamp);
}

TEST_F(EngineTest, ErrorsBecomeStatus) {
  auto r = conn_->Query("SELEKT 1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("syntax error"), std::string::npos) << r.status();
  EXPECT_STATUS(conn_->Execute("SELECT * FROM no_such_table"), kInvalidArgument);
}

// DuckDB fails a statement whose profile it cannot write without filling in
// the result; that is an error Status, not a crash reading the message.
TEST_F(EngineTest, FailureWithoutAResultIsAStatus) {
  auto s = conn_->Execute("SET enable_profiling = 'json'; SET profiling_output = '/nonexistent/clicklake/p.json'; "
                          "SELECT 42");
  EXPECT_FALSE(s.ok());
  ASSERT_OK(conn_->Execute("PRAGMA disable_profiling"));
  ASSERT_OK_AND_ASSIGN(QueryResult r, conn_->Query("SELECT 42"));
  EXPECT_EQ(r.GetInt64(0, 0), 42);
}

// profile_dir gone while the database is open (or full): statements run
// unprofiled; profiling resumes once the directory can be written again.
TEST(EngineProfileTest, UnwritableProfileDirDoesNotFailStatements) {
  TempDir dir;
  DatabaseOptions options;
  options.profile_dir = dir.Sub("p");
  std::filesystem::create_directories(options.profile_dir);
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(options));
  ASSERT_OK_AND_ASSIGN(auto conn, db->Connect());
  std::filesystem::remove_all(options.profile_dir);
  ASSERT_OK(conn->Execute("CREATE TABLE t AS SELECT range AS a FROM range(10); CREATE TABLE u AS SELECT * FROM t"));
  ASSERT_OK_AND_ASSIGN(QueryResult r, conn->Query("SELECT count(*) FROM u"));
  EXPECT_EQ(r.GetInt64(0, 0), 10);
  EXPECT_FALSE(std::filesystem::exists(options.profile_dir));
  std::filesystem::create_directories(options.profile_dir);
  ASSERT_OK_AND_ASSIGN(QueryResult again, conn->Query("SELECT sum(a) FROM t"));
  EXPECT_EQ(again.GetInt64(0, 0), 45);
  std::ifstream index(dir.Sub("p/queries.tsv"));
  std::string line;
  ASSERT_TRUE(std::getline(index, line));
  EXPECT_NE(line.find("SELECT sum(a) FROM t"), std::string::npos) << line;
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("p/" + line.substr(0, line.find('\t')) + ".json")));
}

// DatabaseOptions::profile_dir: one DuckDB profile per statement (those of a
// multi-statement Execute each on their own), listed in queries.tsv; a failing
// statement stops the rest and is still reported as the error.
TEST(EngineProfileTest, EveryStatementIsProfiledAndListed) {
  TempDir dir;
  DatabaseOptions options;
  options.profile_dir = dir.path();
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(options));
  ASSERT_OK_AND_ASSIGN(auto conn, db->Connect());
  ASSERT_OK(conn->Execute("CREATE TABLE t AS SELECT range AS a FROM range(1000); CREATE TABLE u AS SELECT a * 2 AS b FROM t"));
  ASSERT_OK_AND_ASSIGN(QueryResult r, conn->Query("SELECT sum(b) FROM u"));
  EXPECT_EQ(r.GetInt64(0, 0), 999000);
  auto failed = conn->Execute("CREATE TABLE v AS SELECT 1 AS c; SELECT * FROM no_such_table; CREATE TABLE w AS SELECT 1");
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.ToString().find("no_such_table"), std::string::npos) << failed;
  ASSERT_OK_AND_ASSIGN(QueryResult tables, conn->Query("SELECT count(*) FILTER (WHERE table_name = 'v'), count(*) "
                                                       "FILTER (WHERE table_name = 'w') FROM duckdb_tables()"));
  EXPECT_EQ(tables.GetInt64(0, 0), 1);  // ran before the failure
  EXPECT_EQ(tables.GetInt64(0, 1), 0);  // not after it

  std::ifstream index(dir.Sub("queries.tsv"));
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(index, line);) {
    std::vector<std::string> fields;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, '\t');) fields.push_back(f);
    rows.push_back(fields);
  }
  // 2 + 1 + the failing Execute's first two + the tables query.
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[0][0], "0");
  EXPECT_EQ(rows[0][2].rfind("statement 1 of 2 in: CREATE TABLE t", 0), 0u) << rows[0][2];
  EXPECT_EQ(rows[1][2].rfind("statement 2 of 2 in: CREATE TABLE t", 0), 0u) << rows[1][2];
  EXPECT_EQ(rows[2][2], "SELECT sum(b) FROM u");
  EXPECT_EQ(rows[4][2].rfind("statement 2 of 3 in: CREATE TABLE v", 0), 0u) << rows[4][2];
  EXPECT_GE(std::stod(rows[2][1]), 0.0);
  // Each successful statement's profile is DuckDB's JSON naming that statement.
  for (const auto& [n, text] : std::vector<std::pair<int, std::string>>{
           {0, "CREATE TABLE t AS SELECT range"}, {1, "CREATE TABLE u AS SELECT a * 2"}, {2, "SELECT sum(b) FROM u"}}) {
    std::ifstream f(dir.Sub(std::to_string(n) + ".json"));
    ASSERT_TRUE(f.good()) << n;
    std::stringstream json;
    json << f.rdbuf();
    EXPECT_NE(json.str().find("\"latency\""), std::string::npos) << json.str();
    EXPECT_NE(json.str().find(text), std::string::npos) << n << ": " << json.str().substr(0, 300);
  }
}


TEST_F(EngineTest, AppenderAndParquetRoundTrip) {
  TempDir dir;
  ASSERT_OK(conn_->Execute("CREATE TABLE t (id BIGINT, name VARCHAR, ts TIMESTAMP, d DATE, v DOUBLE)"));
  ASSERT_OK_AND_ASSIGN(auto app, conn_->CreateAppender("", "t"));
  for (int i = 0; i < 5000; i++) {  // several data chunks
    ASSERT_OK(app->AppendInt64(i));
    if (i % 10 == 0) {
      ASSERT_OK(app->AppendNull());
    } else {
      ASSERT_OK(app->AppendString("user-" + std::to_string(i)));
    }
    ASSERT_OK(app->AppendTimestampMicros(1714564800LL * 1000000 + i));
    ASSERT_OK(app->AppendDate(19844));
    ASSERT_OK(app->AppendDouble(i * 0.5));
    ASSERT_OK(app->EndRow());
  }
  ASSERT_OK(app->Close());
  std::string path = dir.Sub("t.parquet");
  ASSERT_OK_AND_ASSIGN(int64_t rows, conn_->WriteParquet("SELECT * FROM t", path));
  EXPECT_EQ(rows, 5000);
  ASSERT_OK_AND_ASSIGN(QueryResult r, conn_->Query(
      "SELECT count(*), count(name), max(ts)::VARCHAR, sum(v) FROM read_parquet(" + QuoteLiteral(path) + ")"));
  EXPECT_EQ(r.GetInt64(0, 0), 5000);
  EXPECT_EQ(r.GetInt64(0, 1), 4500);
  EXPECT_EQ(r.GetString(0, 2), "2024-05-01 12:00:00.004999");
  EXPECT_DOUBLE_EQ(r.GetDouble(0, 3), 6248750.0);
  ASSERT_OK_AND_ASSIGN(QueryResult nulls, conn_->Query("SELECT min(id), max(id) FROM t WHERE name IS NULL"));
  EXPECT_EQ(nulls.GetInt64(0, 0), 0);
  EXPECT_EQ(nulls.GetInt64(0, 1), 4990);
  ASSERT_OK_AND_ASSIGN(QueryResult meta, conn_->Query(
      "SELECT DISTINCT compression FROM parquet_metadata(" + QuoteLiteral(path) + ")"));
  ASSERT_EQ(meta.row_count(), 1u);
  EXPECT_EQ(meta.GetString(0, 0), "ZSTD");
}

TEST_F(EngineTest, AppenderReportsTypeErrors) {
  ASSERT_OK(conn_->Execute("CREATE TABLE t (id BIGINT)"));
  ASSERT_OK_AND_ASSIGN(auto app, conn_->CreateAppender("", "t"));
  ASSERT_OK(app->AppendInt64(1));
  auto extra = app->AppendInt64(2);  // one column too many
  EXPECT_STATUS(extra, kInvalidArgument);
  EXPECT_NE(extra.message().find("Too many appends"), std::string::npos) << extra;
  EXPECT_STATUS(conn_->CreateAppender("", "missing"), kInvalidArgument);
}

TEST_F(EngineTest, AppenderChecksTypesAndUtf8) {
  ASSERT_OK(conn_->Execute("CREATE TABLE t (n INTEGER, b BIGINT, s VARCHAR)"));
  ASSERT_OK_AND_ASSIGN(auto app, conn_->CreateAppender("", "t"));
  EXPECT_STATUS(app->AppendString("x"), kInvalidArgument);  // n is INTEGER
  EXPECT_STATUS(app->AppendInt64(int64_t{1} << 40), kInvalidArgument);  // out of INTEGER's range
  ASSERT_OK(app->AppendInt64(7));
  ASSERT_OK(app->AppendInt32(8));  // widened to BIGINT
  EXPECT_STATUS(app->AppendString("\xff\xfe"), kInvalidArgument);
  EXPECT_STATUS(app->EndRow(), kInvalidArgument);  // a value short
  ASSERT_OK(app->AppendString("ok"));
  ASSERT_OK(app->EndRow());
  ASSERT_OK(app->Close());
  EXPECT_STATUS(app->AppendNull(), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(QueryResult r, conn_->Query("SELECT n, b, s FROM t"));
  ASSERT_EQ(r.row_count(), 1u);
  EXPECT_EQ(r.GetInt64(0, 0), 7);
  EXPECT_EQ(r.GetInt64(0, 1), 8);
  EXPECT_EQ(r.GetString(0, 2), "ok");
}

TEST(EngineSandboxTest, ExternalAccessCanBeDisabled) {
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open({.allow_external_access = false}));
  ASSERT_OK_AND_ASSIGN(auto conn, db->Connect());
  EXPECT_FALSE(conn->Query("SELECT * FROM read_csv('/etc/passwd')").ok());
  EXPECT_OK(conn->Query("SELECT 1"));
}

TEST(QualifySchemaTest, RewritesOnlyBareReferences) {
  EXPECT_EQ(QualifySchemaReferences("SELECT * FROM system.batches", "system", "memory"),
            "SELECT * FROM memory.system.batches");
  EXPECT_EQ(QualifySchemaReferences("select count(*) from SYSTEM . batches b join bronze.events e on true", "system",
                                    "memory"),
            "select count(*) from memory.SYSTEM . batches b join bronze.events e on true");
  // Already qualified, inside literals, quoted identifiers, comments, or another word: unchanged.
  for (const char* same : {"SELECT * FROM memory.system.batches", "SELECT 'system.batches'",
                           "SELECT \"system.x\" FROM t", "SELECT 1 -- system.batches", "SELECT 1 /* system.x */",
                           "SELECT mysystem.x FROM mysystem", "SELECT system FROM t"}) {
    EXPECT_EQ(QualifySchemaReferences(same, "system", "memory"), same);
  }
}

TEST_F(EngineTest, QualifiedSystemSchemaIsQueryable) {
  ASSERT_OK(conn_->Execute("CREATE SCHEMA memory.system; CREATE VIEW memory.system.batches AS SELECT 7 AS n"));
  EXPECT_FALSE(conn_->Query("SELECT n FROM system.batches").ok());
  ASSERT_OK_AND_ASSIGN(QueryResult r,
                       conn_->Query(QualifySchemaReferences("SELECT n FROM system.batches", "system", "memory")));
  EXPECT_EQ(r.GetInt64(0, 0), 7);
}

TEST(QuoteTest, EscapesQuotes) {
  EXPECT_EQ(QuoteLiteral("it's"), "'it''s'");
  EXPECT_EQ(QuoteIdentifier("a\"b"), "\"a\"\"b\"");
}

}  // namespace
}  // namespace clicklake::engine

namespace clicklake::engine {
namespace {

// A source database with a table, and a sandbox exposing it masked.
class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(source_, Database::Open());
    ASSERT_OK_AND_ASSIGN(auto conn, source_->Connect());
    ASSERT_OK(conn->Execute("CREATE TABLE people AS SELECT range AS id, 'user' || range || '@x.com' AS email, "
                            "CASE WHEN range % 2 = 0 THEN 'EU' ELSE 'US' END AS region FROM range(5000)"));
    std::vector<SandboxTable> tables = {
        {"crm", "people", "SELECT id, sha256(email) AS email, region FROM people WHERE region = 'EU'"}};
    ASSERT_OK_AND_ASSIGN(sandbox_, Sandbox::Open(source_.get(), tables));
  }
  // All rows of a query as CSV (header included), or the error.
  std::string Csv(const std::string& sql) {
    auto stream = sandbox_->Query(sql);
    if (!stream.ok()) return "ERROR " + stream.status().message();
    std::string out;
    (*stream)->header().AppendCsvHeader(&out);
    for (;;) {
      auto chunk = (*stream)->Next();
      if (!chunk.ok()) return "ERROR " + chunk.status().message();
      if (!chunk->has_value()) break;
      (*chunk)->AppendCsvRows(&out);
    }
    return out;
  }
  std::unique_ptr<Database> source_;
  std::unique_ptr<Sandbox> sandbox_;
};

TEST_F(SandboxTest, SeesOnlyTheSourceQueryRows) {
  EXPECT_EQ(Csv("SELECT count(*) AS n, count(DISTINCT region) AS r FROM crm.people"), "n,r\r\n2500,1\r\n");
  // A filter on the masked column compares masked values: the raw email matches nothing.
  EXPECT_EQ(Csv("SELECT count(*) AS n FROM crm.people WHERE email = 'user2@x.com'"), "n\r\n0\r\n");
  EXPECT_EQ(Csv("SELECT id, region FROM crm.people ORDER BY id LIMIT 2"), "id,region\r\n0,EU\r\n2,EU\r\n");
  // Only the columns a query needs are read from the source.
  auto read = sandbox_->ColumnsRead();
  ASSERT_EQ(read.count("crm.people"), 1u);
  EXPECT_EQ(read["crm.people"], (std::vector<std::string>{"email", "id", "region"}));
}

TEST_F(SandboxTest, StreamsLargeResultsInChunks) {
  ASSERT_OK_AND_ASSIGN(auto stream, sandbox_->Query("SELECT id FROM crm.people"));
  int chunks = 0;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(auto chunk, stream->Next());
    if (!chunk) break;
    EXPECT_LE(chunk->row_count(), 2048u);
    chunks++;
  }
  EXPECT_EQ(stream->rows(), 2500);
  EXPECT_GE(chunks, 2);
}

TEST_F(SandboxTest, RefusesFilesSettingsAndWrites) {
  TempDir dir;
  const std::string file = dir.path() + "/secret.csv";
  std::ofstream(file) << "a\n42\n";
  for (const std::string& sql : std::vector<std::string>{
           "SELECT * FROM read_csv('" + file + "')",
           "SELECT * FROM '" + file + "'",
           "SELECT * FROM read_text('" + file + "')",
           "SELECT * FROM sniff_csv('" + file + "')",
           "SELECT * FROM duckdb_settings()",
           "SELECT current_setting('memory_limit')",
           "COPY (SELECT 1) TO '" + dir.path() + "/out.csv'",
           "ATTACH '" + dir.path() + "/x.db' AS x",
           "SET lock_configuration = false",
           "SET enable_external_access = true",
           "CREATE TABLE t AS SELECT 1",
           "SELECT 1; SELECT 2",
           "INSTALL httpfs",
           "LOAD parquet",
           "PRAGMA version",
       }) {
    auto r = sandbox_->Query(sql);
    EXPECT_FALSE(r.ok()) << sql;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("denied"), std::string::npos) << sql << ": " << r.status().message();
    }
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/out.csv"));
}

TEST_F(SandboxTest, ExplainAndTypedRendering) {
  EXPECT_EQ(Csv("SELECT 1::INTEGER AS a, 2.5::DOUBLE AS b, NULL::VARCHAR AS c, DATE '2024-05-01' AS d"),
            "a,b,c,d\r\n1,2.5,,2024-05-01\r\n");
  std::string plan = Csv("EXPLAIN SELECT count(*) FROM crm.people");
  EXPECT_NE(plan.find("CLICKLAKE_SCAN"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("sha256"), std::string::npos) << "the source query stays hidden: " << plan;
}

TEST_F(SandboxTest, DeclaredColumnsAreBoundOnlyWhenScanned) {
  // Declared names and types: the source is not prepared when the table is
  // added (its table does not exist yet), only when a query scans it.
  ASSERT_OK(sandbox_->AddTables({{"crm", "late", "SELECT id, CAST(id AS VARCHAR) AS label FROM later_table",
                                  {"id", "label"}, {"BIGINT", "VARCHAR"}},
                                 {"crm", "wrong", "SELECT id FROM people", {"id"}, {"VARCHAR"}}}));
  EXPECT_NE(Csv("SELECT count(*) FROM crm.late").find("later_table"), std::string::npos);
  ASSERT_OK_AND_ASSIGN(auto conn, source_->Connect());
  ASSERT_OK(conn->Execute("CREATE TABLE later_table AS SELECT range AS id FROM range(3)"));
  EXPECT_EQ(Csv("SELECT label FROM crm.late ORDER BY id"), "label\r\n0\r\n1\r\n2\r\n");
  EXPECT_EQ(Csv("SELECT typeof(id) AS t FROM crm.late LIMIT 1"), "t\r\nBIGINT\r\n");
  // A source that does not produce the declared type fails the scan clearly.
  EXPECT_NE(Csv("SELECT id FROM crm.wrong").find("does not have the type its view declares"), std::string::npos);
  EXPECT_FALSE(sandbox_->AddTables({{"crm", "bad", "SELECT 1", {"a"}, {"NOT A TYPE"}}}).ok());
  EXPECT_FALSE(sandbox_->AddTables({{"crm", "bad", "SELECT 1", {"a", "b"}, {"INTEGER"}}}).ok());
}

TEST_F(SandboxTest, CatalogListingsAreLeftToTheCaller) {
  using Kind = Sandbox::Listing::Kind;
  Sandbox::Listing listing;
  ASSERT_OK(sandbox_->Check("DESCRIBE crm.people", &listing).status());
  EXPECT_EQ(listing.kind, Kind::kDescribe);
  EXPECT_EQ(listing.relation, "crm.people");
  ASSERT_OK(sandbox_->Check("show crm.people;", &listing).status());
  EXPECT_EQ(listing.kind, Kind::kDescribe);
  ASSERT_OK(sandbox_->Check("SHOW TABLES", &listing).status());
  EXPECT_EQ(listing.kind, Kind::kShowTables);
  EXPECT_EQ(listing.schema, "");
  ASSERT_OK(sandbox_->Check("SHOW TABLES FROM crm", &listing).status());
  EXPECT_EQ(listing.kind, Kind::kShowTables);
  EXPECT_EQ(listing.schema, "crm");
  ASSERT_OK(sandbox_->Check("SHOW ALL TABLES", &listing).status());
  EXPECT_EQ(listing.kind, Kind::kShowAllTables);
  // DESCRIBE of a query and SUMMARIZE are checked and run like the query they wrap.
  ASSERT_OK_AND_ASSIGN(auto relations, sandbox_->Check("SUMMARIZE crm.people", &listing));
  EXPECT_EQ(listing.kind, Kind::kNone);
  EXPECT_EQ(relations, std::vector<std::string>{"crm.people"});
  EXPECT_NE(Csv("SUMMARIZE crm.people").find("region,VARCHAR,EU,EU"), std::string::npos) << Csv("SUMMARIZE crm.people");
  EXPECT_EQ(Csv("SELECT column_name, column_type FROM (SELECT 1) t(x), (DESCRIBE SELECT id FROM crm.people)")
                .find("ERROR permission denied"),
            0u);
  for (const std::string& sql : std::vector<std::string>{
           "SELECT * FROM (DESCRIBE crm.people)", "SELECT * FROM (SHOW TABLES) WHERE name <> ''",
           "SELECT * FROM crm.people, (SHOW ALL TABLES)", "SHOW databases", "SHOW variables",
           "DESCRIBE SELECT * FROM read_csv('/etc/passwd')", "SUMMARIZE SELECT * FROM duckdb_settings()",
           "EXPLAIN DESCRIBE crm.people"}) {
    auto r = sandbox_->Check(sql, &listing);
    EXPECT_FALSE(r.ok()) << sql;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("denied"), std::string::npos) << sql << ": " << r.status();
    }
  }
  // Without a caller to answer it, a listing is refused (the sandbox's catalog is never shown).
  EXPECT_EQ(Csv("SHOW TABLES").find("ERROR permission denied"), 0u) << Csv("SHOW TABLES");
  EXPECT_EQ(Csv("DESCRIBE crm.people").find("ERROR permission denied"), 0u);
}

TEST_F(SandboxTest, InterruptStopsALongQuery) {
  ASSERT_OK_AND_ASSIGN(auto stream,
                       sandbox_->Query("SELECT count(*) FROM range(100000000000) a, crm.people b WHERE a.range % 7 = 3"));
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    sandbox_->Interrupt();
  });
  auto r = stream->Next();
  stopper.join();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("INTERRUPT"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace clicklake::engine

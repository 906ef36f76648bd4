#include "governance/access/access.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "common/fault_injection_fs.h"
#include "common/test_util.h"
#include "delta/table.h"
#include "governance/access/testing/sim_lake.h"
#include "pipeline/silver.h"

namespace clicklake::access {
namespace {

using clicklake::testing::TempDir;

// ---------------------------------------------------------------- policy

TEST(PolicyTest, ShippedDefaultsParse) {
  ASSERT_OK_AND_ASSIGN(Policy p, Policy::Parse(Policy::DefaultToml()));
  for (const char* role : {"admin", "pii_service", "data_engineer", "analyst", "marketing", "finance", "data_science"}) {
    EXPECT_TRUE(p.HasRole(role)) << role;
  }
  // Nobody but admin and the PII service reads restricted.* raw.
  for (const char* role : {"data_engineer", "analyst", "finance", "data_science"}) {
    const Rule* r = p.Match(role, "restricted.pii");
    EXPECT_TRUE(r == nullptr || !r->select) << role;
  }
  const Rule* m = p.Match("marketing", "restricted.pii");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->masks.at("value"), Mask::kEmailSha256);
  EXPECT_TRUE(p.Match("admin", "restricted.pii")->select);
  EXPECT_TRUE(p.Match("pii_service", "restricted.pii")->select);
  EXPECT_EQ(p.Match("pii_service", "silver.events"), nullptr);  // default deny
}

TEST(PolicyTest, FirstMatchWinsAndColumns) {
  ASSERT_OK_AND_ASSIGN(Policy p, Policy::Parse(R"toml(
[[rules]]
role = "r"
table = "silver.secret*"
privileges = []
[[rules]]
role = "r"
table = "silver.*"
columns = ["a", "b", "c"]
deny_columns = ["c"]
masks = { b = "last4" }
row_filter = "region IN (${regions})"
)toml"));
  Principal who{"p", "r", {{"regions", {"EU", "O'Hare"}}}, {}, "", false};
  ASSERT_OK_AND_ASSIGN(auto denied, ViewFor(p, who, "silver.secrets", {"a"}));
  EXPECT_FALSE(denied.has_value());
  ASSERT_OK_AND_ASSIGN(auto none, ViewFor(p, who, "gold.x", {"a"}));
  EXPECT_FALSE(none.has_value());
  ASSERT_OK_AND_ASSIGN(auto v, ViewFor(p, who, "silver.events", {"a", "b", "c", "d"}));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->columns, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(v->expressions[1], "right(CAST(\"b\" AS VARCHAR), 4) AS \"b\"");
  EXPECT_EQ(v->row_filter, "region IN ('EU', 'O''Hare')");
  // Without the attribute the filter matches nothing.
  Principal bare{"q", "r", {}, {}, "", false};
  ASSERT_OK_AND_ASSIGN(auto v2, ViewFor(p, bare, "silver.events", {"a", "b"}));
  EXPECT_EQ(v2->row_filter, "region IN (NULL)");
}

TEST(PolicyTest, RejectsBadPolicies) {
  auto unknown_mask = Policy::Parse("[[rules]]\nrole = \"r\"\ntable = \"*\"\nmasks = { a = \"rot13\" }\n");
  ASSERT_FALSE(unknown_mask.ok());
  EXPECT_NE(unknown_mask.status().message().find("unknown mask 'rot13'"), std::string::npos);
  auto plain = Policy::Parse("[[principals]]\nname = \"x\"\nrole = \"admin\"\npassword = \"hunter2\"\n");
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.status().message().find("never plain text"), std::string::npos);
  auto role = Policy::Parse("[[principals]]\nname = \"x\"\nrole = \"nobody\"\n");
  ASSERT_FALSE(role.ok());
  EXPECT_NE(role.status().message().find("unknown role"), std::string::npos);
  auto priv = Policy::Parse("[[rules]]\nrole = \"r\"\ntable = \"*\"\nprivileges = [\"delete\"]\n");
  EXPECT_FALSE(priv.ok());
}

TEST(PolicyTest, ScramVerifierMatchesAnIndependentComputation) {
  // Computed with Python's hashlib.pbkdf2_hmac/hmac for RFC 7677's example
  // password and salt (StoredKey = H(HMAC(SaltedPassword, "Client Key"))).
  const std::string expected =
      "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
  const std::string salt = "\x5b\x6d\x99\x68\x9d\x12\x35\x8e\xec\xa0\x4b\x14\x12\x36\xfa\x81";
  EXPECT_EQ(MakeScramVerifier("pencil", salt, 4096), expected);
  ASSERT_OK_AND_ASSIGN(Policy p, Policy::Parse("[[principals]]\nname = \"u\"\nrole = \"analyst\"\npassword = \"" +
                                               expected + "\"\n"));
  EXPECT_TRUE(p.CheckPassword(*p.FindByName("u"), "pencil"));
  EXPECT_FALSE(p.CheckPassword(*p.FindByName("u"), "pencil2"));
}

TEST(PolicyTest, TokensAreStoredHashedAndRevocable) {
  EXPECT_EQ(Sha256Hex("tok-marketing"), "c474bd59ce85f931744e3a5737ceccc5be6d0ea4677c264fdf1e323fb0b9e898");
  ASSERT_OK_AND_ASSIGN(Policy p, Policy::Parse(
      "[[principals]]\nname = \"mia\"\nrole = \"marketing\"\ntoken_sha256 = [\"" + Sha256Hex("tok-marketing") +
      "\"]\n[[principals]]\nname = \"old\"\nrole = \"analyst\"\ndisabled = true\ntoken_sha256 = [\"" +
      Sha256Hex("tok-old") + "\"]\n"));
  ASSERT_NE(p.FindByToken("tok-marketing"), nullptr);
  EXPECT_EQ(p.FindByToken("tok-marketing")->name, "mia");
  EXPECT_EQ(p.FindByToken("tok-marketin"), nullptr);
  EXPECT_EQ(p.FindByToken(""), nullptr);
  EXPECT_TRUE(p.FindByToken("tok-old")->disabled);
}

TEST(PolicyTest, HotReloadKeepsTheLastGoodPolicy) {
  TempDir dir;
  const std::string path = dir.path() + "/policy.toml";
  ASSERT_OK(FileSystem::Default()->WriteFile(path, "[[rules]]\nrole = \"analyst\"\ntable = \"gold.*\"\n"));
  PolicyStore store(path);
  EXPECT_NE(store.Current()->Match("analyst", "gold.x"), nullptr);
  EXPECT_EQ(store.Current()->Match("analyst", "silver.events"), nullptr);
  ASSERT_OK(FileSystem::Default()->WriteFile(
      path, "[[rules]]\nrole = \"analyst\"\ntable = \"silver.*\"\n# a longer file: another size\n"));
  EXPECT_NE(store.Current()->Match("analyst", "silver.events"), nullptr);
  EXPECT_EQ(store.Current()->Match("analyst", "gold.x"), nullptr);
  ASSERT_OK(FileSystem::Default()->WriteFile(path, "[[rules]]\nrole = \n"));
  EXPECT_NE(store.Current()->Match("analyst", "silver.events"), nullptr);
  EXPECT_NE(store.last_error(), "");
}

// ---------------------------------------------------------------- audit

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK_AND_ASSIGN(db_, engine::Database::Open()); }
  AuditRecord Record(int i) {
    AuditRecord r;
    r.principal = "p" + std::to_string(i);
    r.role = "analyst";
    r.sql = "SELECT " + std::to_string(i);
    r.tables = {"silver.events"};
    r.rows = i;
    return r;
  }
  void AppendN(int n) {
    AuditLog log(dir_.path(), db_.get());
    for (int i = 0; i < n; i++) ASSERT_OK(log.Append(Record(i)));
  }
  AuditVerifyReport Verify() {
    AuditLog log(dir_.path(), db_.get());
    auto r = log.Verify();
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : AuditVerifyReport{};
  }
  // Verify() names `seq` as the first bad record, with `word` in its reason.
  void ExpectTampered(int64_t seq, const std::string& word) {
    AuditVerifyReport r = Verify();
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.first_bad_seq, seq);
    EXPECT_NE(r.problem.find(word), std::string::npos) << r.problem;
  }
  // Replaces the row with seq = `seq` by `replacement_sql`'s row (a SELECT of every column).
  void Rewrite(const std::string& predicate, const std::string& rows_sql) {
    ASSERT_OK_AND_ASSIGN(auto table, delta::Table::Open(dir_.path() + "/system/audit", db_.get()));
    ASSERT_OK_AND_ASSIGN(auto conn, db_->Connect());
    ASSERT_OK_AND_ASSIGN(delta::Snapshot snap, table->LoadSnapshot());
    ASSERT_OK_AND_ASSIGN(std::string scan, delta::ScanSql(table->path(), snap));
    ASSERT_OK(conn->Execute("SET TimeZone='UTC'; CREATE OR REPLACE TABLE audit_copy AS " + scan));
    ASSERT_OK_AND_ASSIGN(int64_t deleted, table->DeleteWhere(conn.get(), predicate));
    ASSERT_GT(deleted, 0);
    if (rows_sql.empty()) return;
    auto txn = table->StartTransaction();
    ASSERT_OK(txn->WriteFiles(conn.get(), rows_sql).status());
    ASSERT_OK(txn->Commit().status());
  }
  TempDir dir_;
  std::unique_ptr<engine::Database> db_;
};

TEST_F(AuditTest, IntactChainVerifies) {
  AppendN(5);
  AuditVerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.records, 5);
}

TEST_F(AuditTest, EditedRecordIsDetected) {
  AppendN(5);
  Rewrite("seq = 2", "SELECT * REPLACE ('SELECT 42' AS sql) FROM audit_copy WHERE seq = 2");
  ExpectTampered(2, "edited");
}

TEST_F(AuditTest, RemovedRecordIsDetected) {
  AppendN(5);
  Rewrite("seq = 3", "");
  ExpectTampered(3, "removed");
}

TEST_F(AuditTest, RemovedLastRecordIsDetected) {
  AppendN(4);
  Rewrite("seq = 3", "");
  ExpectTampered(3, "removed");
}

TEST_F(AuditTest, ReorderedRecordsAreDetected) {
  AppendN(5);
  // Records 1 and 2 swap places (each takes the other's sequence number).
  Rewrite("seq IN (1, 2)", "SELECT * REPLACE (3 - seq AS seq) FROM audit_copy WHERE seq IN (1, 2)");
  ExpectTampered(1, "record 1");
}

TEST_F(AuditTest, ConcurrentWritersKeepTheChain) {
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; w++) {
    writers.emplace_back([this, w] {
      auto db = engine::Database::Open();
      ASSERT_TRUE(db.ok());
      AuditLog log(dir_.path(), db->get());  // its own lock file descriptor, as another process would
      for (int i = 0; i < 6; i++) EXPECT_OK(log.Append(Record(w * 100 + i)));
    });
  }
  for (auto& t : writers) t.join();
  AuditVerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.records, 18);
}

TEST_F(AuditTest, FullDiskFailsTheAppendClearly) {
  AppendN(1);
  FaultInjectionFileSystem fs(FileSystem::Default());
  AuditLog log(dir_.path(), db_.get(), &fs);
  fs.FailAfter(0);
  Status s = log.Append(Record(7));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kIOError) << s;
  EXPECT_NE(s.message().find("audit: cannot append"), std::string::npos) << s;
  fs.ClearFaults();
  EXPECT_OK(log.Append(Record(8)));
  EXPECT_TRUE(Verify().ok);
  EXPECT_EQ(Verify().records, 2);
}

// ---------------------------------------------------------------- governed queries

// Password login: the stored SCRAM verifier decides; failures are audited.
TEST(PasswordLoginTest, RightWrongUnknownAndRevoked) {
  TempDir dir;
  const std::string policy = Policy::DefaultToml() + R"(
[[principals]]
name = "pat"
role = "finance"
password = ")" + MakeScramVerifier("correct horse", "salt-of-pat") + R"("

[[principals]]
name = "gone"
role = "analyst"
disabled = true
password = ")" + MakeScramVerifier("battery staple", "salt-of-gone") + R"("

[[principals]]
name = "bot"
role = "analyst"
token_sha256 = [")" + Sha256Hex("tok-bot") + R"("]
)";
  ASSERT_OK(FileSystem::Default()->WriteFile(dir.path() + "/policy.toml", policy));
  QueryServiceOptions o;
  o.lake_dir = dir.path() + "/lake";
  o.policy_file = dir.path() + "/policy.toml";
  QueryService service(o);
  ASSERT_OK_AND_ASSIGN(Principal pat, service.AuthenticatePassword("pat", "correct horse"));
  EXPECT_EQ(pat.name, "pat");
  EXPECT_EQ(pat.role, "finance");
  const Status wrong = service.AuthenticatePassword("pat", "correct horse ").status();
  const Status unknown = service.AuthenticatePassword("nobody", "correct horse").status();
  const Status no_password = service.AuthenticatePassword("bot", "").status();
  const Status empty = service.AuthenticatePassword("pat", "").status();
  // Unknown user, wrong password, no password: one answer (no user enumeration).
  for (const Status& s : {wrong, unknown, no_password, empty}) {
    EXPECT_TRUE(s.IsNotFound()) << s;
    EXPECT_EQ(s.message(), "unauthorized: wrong user name or password");
  }
  // A revoked user learns it only with the right password.
  const Status revoked = service.AuthenticatePassword("gone", "battery staple").status();
  EXPECT_TRUE(revoked.IsConflict()) << revoked;
  EXPECT_NE(revoked.message().find("revoked"), std::string::npos);
  EXPECT_TRUE(service.AuthenticatePassword("gone", "wrong").status().IsNotFound());
  // Every failure is in the audit trail (and the chain holds).
  ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open());
  ASSERT_OK_AND_ASSIGN(auto conn, db->Connect());
  ASSERT_OK(delta::AttachTable(conn.get(), "audit", o.lake_dir + "/system/audit", std::nullopt));
  ASSERT_OK_AND_ASSIGN(auto rows, conn->Query("SELECT principal, outcome, error FROM audit WHERE action = 'login' "
                                              "ORDER BY seq"));
  ASSERT_EQ(rows.row_count(), 6u);
  EXPECT_EQ(rows.GetString(0, 0), "pat");
  EXPECT_EQ(rows.GetString(1, 0), "nobody");
  EXPECT_EQ(rows.GetString(4, 0), "gone");
  EXPECT_NE(rows.GetString(4, 2).find("revoked"), std::string::npos);
  for (size_t i = 0; i < rows.row_count(); i++) EXPECT_EQ(rows.GetString(i, 1), "denied");
  ASSERT_OK_AND_ASSIGN(auto report, AuditLog(o.lake_dir, db.get()).Verify());
  EXPECT_TRUE(report.ok) << report.problem;
}

TEST(PasswordLoginTest, BasicCredentialsParsing) {
  // "Aladdin:open sesame" (RFC 7617's example).
  ASSERT_OK_AND_ASSIGN(auto c, ParseBasicCredentials("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
  EXPECT_EQ(c.first, "Aladdin");
  EXPECT_EQ(c.second, "open sesame");
  ASSERT_OK_AND_ASSIGN(auto colon, ParseBasicCredentials("basic dTpwOnE="));  // "u:p:q": the password keeps its colon
  EXPECT_EQ(colon.second, "p:q");
  ASSERT_OK_AND_ASSIGN(auto no_password, ParseBasicCredentials("Basic dTo="));  // "u:"
  EXPECT_EQ(no_password.first, "u");
  EXPECT_EQ(no_password.second, "");
  for (const std::string bad : {"Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Basic", "Basic ", "Basic QWxhZGRpbg==",
                                "Basic OnB3", "Basic QWxh=GRp", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ", "Basic ****",
                                "Basic dQBwOnE=", "BasicdTpw"}) {
    EXPECT_FALSE(ParseBasicCredentials(bad).ok()) << bad;
  }
}

class GovernedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    key_file_ = dir_->path() + "/pii.key";
    lake_ = dir_->path() + "/lake";
    ASSERT_OK(testing::BuildSimulatedLake(lake_, dir_->path(), key_file_));
    ASSERT_OK_AND_ASSIGN(std::string key, pipeline::LoadOrCreatePiiKey(key_file_));
    key_ = new std::string(key);
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete key_;
  }
  void SetUp() override {
    QueryServiceOptions o;
    o.lake_dir = lake_;
    o.pii_key_file = key_file_;
    o.limits.timeout_ms = 20000;
    service_ = std::make_unique<QueryService>(o);
  }
  Principal As(const std::string& role, std::map<std::string, std::vector<std::string>> attrs = {}) {
    Principal p{"test-" + role, role, std::move(attrs), {}, "", false};
    return p;
  }
  // The whole result, or the error as "ERROR <message>".
  Result<engine::QueryResult> Run(const Principal& p, const std::string& sql, GovernedQuery** last = nullptr) {
    ASSIGN_OR_RETURN(auto q, service_->Start(p, sql));
    engine::QueryResult all = q->header();
    Status failure;
    for (;;) {
      auto chunk = q->Next();
      if (!chunk.ok()) {
        failure = chunk.status();
        break;
      }
      if (!chunk->has_value()) break;
      all.Append(**chunk);
    }
    RETURN_IF_ERROR(q->Finish(failure));
    RETURN_IF_ERROR(failure);
    if (last) {
      last_query_ = std::move(q);
      *last = last_query_.get();
    }
    return all;
  }
  engine::QueryResult Admin(const std::string& sql) {
    auto r = Run(As("admin"), sql);
    EXPECT_TRUE(r.ok()) << r.status() << "\n" << sql;
    return r.ok() ? *r : engine::QueryResult();
  }
  // The audit trail's records as (action, role, outcome, sql).
  engine::QueryResult AuditRows(const std::string& where) {
    auto db = engine::Database::Open();
    auto conn = (*db)->Connect();
    EXPECT_OK(delta::AttachTable(conn->get(), "audit", lake_ + "/system/audit", std::nullopt));
    auto r = (*conn)->Query("SELECT action, role, outcome, sql, tables, columns, masks, rows, error FROM audit WHERE " +
                            where + " ORDER BY seq");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : engine::QueryResult();
  }

  static TempDir* dir_;
  static std::string lake_, key_file_;
  static std::string* key_;
  std::unique_ptr<QueryService> service_;
  std::unique_ptr<GovernedQuery> last_query_;
};
TempDir* GovernedTest::dir_ = nullptr;
std::string GovernedTest::lake_, GovernedTest::key_file_;
std::string* GovernedTest::key_ = nullptr;

TEST_F(GovernedTest, LakeHasTheTablesTheRolesAreAbout) {
  EXPECT_GT(Admin("SELECT count(*) FROM silver.events").GetInt64(0, 0), 500);
  EXPECT_GT(Admin("SELECT count(*) FROM restricted.pii WHERE field = 'traits.email'").GetInt64(0, 0), 0);
  EXPECT_GT(Admin("SELECT count(*) FROM gold.fact_session_daily").GetInt64(0, 0), 0);
  EXPECT_GT(Admin("SELECT count(DISTINCT geo_country) FROM silver.events").GetInt64(0, 0), 1);
}

// At least 40 ways out of the role's view; each refused with a clear error.
TEST_F(GovernedTest, EscapeCorpusFailsClosed) {
  const std::string events = lake_ + "/silver/events";
  const std::string pii = lake_ + "/restricted/pii";
  ASSERT_OK_AND_ASSIGN(auto files, FileSystem::Default()->ListDir(events));
  std::string parquet;
  for (const auto& f : files)
    if (f.is_dir && f.name.rfind("event_date=", 0) == 0) parquet = events + "/" + f.name + "/*.parquet";
  ASSERT_FALSE(parquet.empty());
  const std::vector<std::string> corpus = {
      // files, by every reader
      "SELECT * FROM read_csv('/etc/passwd')",
      "SELECT * FROM read_csv_auto('/etc/passwd')",
      "SELECT * FROM read_parquet('" + parquet + "')",
      "SELECT * FROM parquet_scan('" + parquet + "')",
      "SELECT * FROM '" + parquet + "'",
      "SELECT * FROM \"" + parquet + "\"",
      "SELECT * FROM read_text('/etc/passwd')",
      "SELECT * FROM read_blob('" + pii + "/_delta_log/00000000000000000000.json')",
      "SELECT * FROM read_json('" + pii + "/_delta_log/00000000000000000000.json')",
      "SELECT * FROM read_ndjson_objects('" + pii + "/_delta_log/00000000000000000000.json')",
      "SELECT * FROM glob('" + lake_ + "/**')",
      "SELECT * FROM sniff_csv('/etc/passwd')",
      "SELECT * FROM parquet_metadata('" + parquet + "')",
      "SELECT * FROM parquet_schema('" + parquet + "')",
      "SELECT * FROM delta_scan('" + events + "')",
      // writes, databases, extensions, settings
      "COPY (SELECT * FROM silver.events) TO '/tmp/clicklake_escape.csv'",
      "COPY silver.events TO '/tmp/clicklake_escape.parquet' (FORMAT parquet)",
      "EXPORT DATABASE '/tmp/clicklake_escape_db'",
      "ATTACH '/tmp/clicklake_escape.db' AS x",
      "ATTACH ':memory:' AS x",
      "INSTALL httpfs",
      "LOAD httpfs",
      "SET enable_external_access = true",
      "SET lock_configuration = false",
      "RESET lock_configuration",
      "PRAGMA database_list",
      "CALL pragma_version()",
      "SELECT * FROM duckdb_settings()",
      "SELECT current_setting('memory_limit')",
      "SELECT * FROM duckdb_views()",
      "SELECT * FROM information_schema.tables",
      "SELECT * FROM query('SELECT * FROM read_csv(''/etc/passwd'')')",
      "SELECT * FROM query_table('restricted.pii')",
      "CREATE TABLE copy AS SELECT * FROM silver.events",
      "CREATE MACRO m(x) AS x",
      "DROP VIEW silver.events",
      "CREATE OR REPLACE VIEW silver.events AS SELECT 1",
      // several statements, comments and quoting tricks
      "SELECT 1; SELECT * FROM read_csv('/etc/passwd')",
      "SELECT 1 /* ; */ ; COPY (SELECT 1) TO '/tmp/clicklake_escape2.csv'",
      "-- harmless\nSELECT * FROM read_csv('/etc/passwd')",
      "SELECT * FROM \"read_csv\"('/etc/passwd')",
      "SELECT * FROM READ_CSV('/etc/passwd')",
      "SELECT * FROM main.read_csv('/etc/passwd')",
      "SELECT * FROM clicklake_scan('silver.events')",
      "SELECT getenv('HOME')",
      // tables and columns not granted
      "SELECT * FROM restricted.pii",
      "SELECT value FROM restricted.pii",
      "SELECT * FROM bronze.events",
      "SELECT payload FROM silver.quarantine",
      "SELECT ip_hash FROM silver.events",
      "SELECT properties FROM silver.events",
      "SELECT * EXCLUDE (user_id) FROM silver.events WHERE ip_hash IS NOT NULL",
      "SELECT COLUMNS('^ip_') FROM silver.events",
      "WITH e AS (SELECT * FROM silver.events) SELECT ip_hash FROM e",
      "SELECT x FROM (SELECT ip_hash AS x FROM silver.events)",
      "SELECT a.ip_hash FROM silver.events a JOIN silver.events b USING (event_id)",
      "SELECT event_id FROM silver.events UNION ALL SELECT value FROM restricted.pii",
      "SELECT * FROM system.audit",
      "SELECT * FROM memory.system.audit",
  };
  ASSERT_GE(corpus.size(), 40u);
  const Principal analyst = As("analyst");
  for (const std::string& sql : corpus) {
    auto r = Run(analyst, sql);
    EXPECT_FALSE(r.ok()) << "escaped: " << sql;
    if (r.ok()) continue;
    const std::string m = r.status().message();
    // A clear error: a refusal, or DuckDB naming what does not exist (a denied
    // column is simply not there: Binder/Catalog errors).
    const bool clear = m.find("permission denied") != std::string::npos || m.find("does not exist") != std::string::npos ||
                       m.find("not found") != std::string::npos || m.find("Binder Error") != std::string::npos ||
                       m.find("Catalog Error") != std::string::npos;
    EXPECT_TRUE(clear) << sql << "\n  -> " << m;
  }
  for (const char* written : {"/tmp/clicklake_escape.csv", "/tmp/clicklake_escape.parquet", "/tmp/clicklake_escape_db",
                              "/tmp/clicklake_escape.db", "/tmp/clicklake_escape2.csv"}) {
    EXPECT_FALSE(FileSystem::Default()->Exists(written)) << written;
  }
  // Every refusal is in the audit trail.
  engine::QueryResult denied = AuditRows("role = 'analyst' AND outcome IN ('denied', 'error')");
  EXPECT_GE(denied.row_count(), corpus.size());
}

TEST_F(GovernedTest, MaskedColumnCannotBeRecoveredThroughAFilter) {
  engine::QueryResult raw = Admin("SELECT user_id, count(*) AS n FROM silver.events WHERE user_id IS NOT NULL "
                                  "GROUP BY 1 ORDER BY 2 DESC LIMIT 1");
  ASSERT_EQ(raw.row_count(), 1u);
  const std::string id = raw.GetString(0, 0);
  const Principal analyst = As("analyst");
  for (const std::string& sql : {
           "SELECT count(*) FROM silver.events WHERE user_id = '" + id + "'",
           "SELECT count(*) FROM silver.events WHERE user_id LIKE '" + id.substr(0, 3) + "%'",
           "SELECT count(*) FROM silver.events WHERE starts_with(user_id, '" + id.substr(0, 2) + "')",
           "SELECT count(*) FROM (SELECT * FROM silver.events) WHERE user_id = '" + id + "'",
           "SELECT count(*) FROM silver.events e JOIN (SELECT '" + id + "' AS u) x ON e.user_id = x.u",
       }) {
    ASSERT_OK_AND_ASSIGN(engine::QueryResult r, Run(analyst, sql));
    EXPECT_EQ(r.GetInt64(0, 0), 0) << sql;
  }
  // The hashed value matches, and only it.
  ASSERT_OK_AND_ASSIGN(engine::QueryResult h, Run(analyst, "SELECT count(*) FROM silver.events WHERE user_id = '" +
                                                               pipeline::HmacSha256Hex(*key_, id) + "'"));
  EXPECT_EQ(h.GetInt64(0, 0), raw.GetInt64(0, 1));
}

// What each default role sees equals what its rules say, column by column.
TEST_F(GovernedTest, MarketingSeesItsRegionsAndHashedIdentities) {
  engine::QueryResult countries =
      Admin("SELECT geo_country FROM silver.events WHERE geo_country IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC");
  ASSERT_GE(countries.row_count(), 2u);
  const std::string region = countries.GetString(0, 0);
  const Principal mia = As("marketing", {{"regions", {region}}});
  GovernedQuery* q = nullptr;
  ASSERT_OK_AND_ASSIGN(engine::QueryResult seen, Run(mia, "SELECT * FROM silver.events ORDER BY event_id", &q));
  const std::vector<std::string> expected_columns = {
      "event_id", "event_type", "event_name", "event_ts", "event_date", "user_id", "session_id", "platform",
      "page_path", "referrer_host", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
      "campaign_id", "experiment_id", "experiment_variant", "device_type", "geo_country", "geo_region", "revenue",
      "currency"};
  std::vector<std::string> columns;
  for (size_t c = 0; c < seen.column_count(); c++) columns.push_back(seen.column_name(c));
  EXPECT_EQ(columns, expected_columns);
  // Rows: exactly the region's; values: raw except user_id = HMAC(key, user_id).
  std::string list;
  for (size_t c = 0; c < expected_columns.size(); c++) list += (c ? ", " : "") + expected_columns[c];
  engine::QueryResult raw = Admin("SELECT " + list + " FROM silver.events WHERE geo_country = '" + region +
                                  "' ORDER BY event_id");
  ASSERT_EQ(seen.row_count(), raw.row_count());
  ASSERT_GT(seen.row_count(), 0u);
  for (size_t r = 0; r < raw.row_count(); r++) {
    for (size_t c = 0; c < expected_columns.size(); c++) {
      if (expected_columns[c] == "user_id") {
        ASSERT_EQ(seen.Cell(r, c), raw.IsNull(r, c) ? std::nullopt
                                                    : std::optional<std::string>(pipeline::HmacSha256Hex(*key_, raw.GetString(r, c))))
            << "row " << r;
      } else {
        ASSERT_EQ(seen.Cell(r, c), raw.Cell(r, c)) << expected_columns[c] << " row " << r;
      }
    }
  }
  // The audit record names the table, the columns read and the mask applied.
  ASSERT_NE(q, nullptr);
  AuditRecord rec = q->record();
  EXPECT_EQ(rec.tables, std::vector<std::string>{"silver.events"});
  EXPECT_NE(std::find(rec.masks.begin(), rec.masks.end(), "silver.events.user_id:hash"), rec.masks.end());
  EXPECT_EQ(rec.rows, static_cast<int64_t>(raw.row_count()));
}

TEST_F(GovernedTest, MarketingSeesEmailsOnlyAsNormalisedSha256) {
  const Principal mia = As("marketing", {{"regions", {"US"}}});
  ASSERT_OK_AND_ASSIGN(engine::QueryResult seen,
                       Run(mia, "SELECT field, value FROM restricted.pii ORDER BY value"));
  engine::QueryResult raw = Admin(
      "SELECT field, sha256(lower(trim(value))) AS v FROM restricted.pii WHERE field = 'traits.email' ORDER BY v");
  ASSERT_GT(raw.row_count(), 0u);
  EXPECT_EQ(seen.ToCsv().substr(seen.ToCsv().find('\n')), raw.ToCsv().substr(raw.ToCsv().find('\n')));
  for (size_t r = 0; r < seen.row_count(); r++) {
    EXPECT_EQ(seen.GetString(r, 1).size(), 64u);
    EXPECT_EQ(seen.GetString(r, 1).find('@'), std::string::npos);
  }
  // That read of the restricted zone is audited as such.
  EXPECT_GE(AuditRows("action = 'restricted_read' AND role = 'marketing'").row_count(), 1u);
  auto phone = Run(mia, "SELECT count(*) FROM restricted.pii WHERE field = 'traits.phone'");
  ASSERT_TRUE(phone.ok());
  EXPECT_EQ(phone->GetInt64(0, 0), 0);
}

TEST_F(GovernedTest, FinanceSeesRevenueButNoPii) {
  const Principal fin = As("finance");
  ASSERT_OK_AND_ASSIGN(engine::QueryResult total, Run(fin, "SELECT round(sum(revenue), 2) FROM silver.events"));
  EXPECT_EQ(total.GetString(0, 0), Admin("SELECT round(sum(revenue), 2) FROM silver.events").GetString(0, 0));
  ASSERT_OK_AND_ASSIGN(engine::QueryResult all, Run(fin, "SELECT * FROM silver.events LIMIT 1"));
  std::set<std::string> columns;
  for (size_t c = 0; c < all.column_count(); c++) columns.insert(all.column_name(c));
  EXPECT_EQ(columns, (std::set<std::string>{"event_id", "event_name", "event_ts", "event_date", "platform",
                                            "geo_country", "revenue", "currency", "campaign_id", "utm_source",
                                            "utm_medium", "utm_campaign"}));
  ASSERT_OK_AND_ASSIGN(engine::QueryResult sessions, Run(fin, "SELECT * FROM gold.fact_session_daily LIMIT 1"));
  for (size_t c = 0; c < sessions.column_count(); c++) {
    EXPECT_NE(sessions.column_name(c), "user_key");
    EXPECT_NE(sessions.column_name(c), "entry_path");
  }
  EXPECT_FALSE(Run(fin, "SELECT user_id FROM silver.events").ok());
  EXPECT_FALSE(Run(fin, "SELECT * FROM restricted.pii").ok());
  EXPECT_FALSE(Run(fin, "SELECT * FROM bronze.events").ok());
}

TEST_F(GovernedTest, AnalystDataScienceAndEngineerMasks) {
  // analyst: identities hashed; data_science: also geo_city nulled, original_ts to its year.
  const std::string id_sql = "SELECT event_id, user_key FROM silver.events ORDER BY event_id LIMIT 50";
  engine::QueryResult raw = Admin(id_sql);
  for (const char* role : {"analyst", "data_science"}) {
    ASSERT_OK_AND_ASSIGN(engine::QueryResult r, Run(As(role), id_sql));
    ASSERT_EQ(r.row_count(), raw.row_count());
    for (size_t i = 0; i < r.row_count(); i++) {
      EXPECT_EQ(r.GetString(i, 0), raw.GetString(i, 0));
      EXPECT_EQ(r.GetString(i, 1), pipeline::HmacSha256Hex(*key_, raw.GetString(i, 1))) << role;
    }
  }
  ASSERT_OK_AND_ASSIGN(engine::QueryResult ds,
                       Run(As("data_science"), "SELECT count(geo_city), count(DISTINCT original_ts), "
                                               "min(original_ts) FROM silver.events"));
  EXPECT_EQ(ds.GetInt64(0, 0), 0);
  EXPECT_LE(ds.GetInt64(0, 1), 1);
  EXPECT_EQ(ds.GetString(0, 2), Admin("SELECT min(year(original_ts)) FROM silver.events").GetString(0, 0));
  // data_engineer: the raw layer with payloads redacted and IPs truncated.
  ASSERT_OK_AND_ASSIGN(engine::QueryResult de, Run(As("data_engineer"),
                                                   "SELECT DISTINCT payload, client_ip FROM bronze.events ORDER BY 2"));
  engine::QueryResult ips = Admin("SELECT DISTINCT client_ip FROM bronze.events ORDER BY 1");
  ASSERT_GT(de.row_count(), 0u);
  EXPECT_LE(de.row_count(), ips.row_count());
  for (size_t i = 0; i < de.row_count(); i++) {
    EXPECT_EQ(de.GetString(i, 0), "[redacted]");
    EXPECT_EQ(de.GetString(i, 1).substr(de.GetString(i, 1).rfind('.')), ".0") << de.GetString(i, 1);
  }
  EXPECT_FALSE(Run(As("data_engineer"), "SELECT * FROM restricted.pii").ok());
  EXPECT_FALSE(Run(As("data_engineer"), "SELECT * FROM system.audit").ok());
}

TEST_F(GovernedTest, LimitsRowCapAndTimeout) {
  QueryServiceOptions o = service_->options();
  o.limits.max_rows = 10;
  QueryService capped(o);  // the fixture's generous timeout: a loaded machine does not fail the row cap
  o.limits.timeout_ms = 500;
  QueryService limited(o);
  ASSERT_OK_AND_ASSIGN(auto q, capped.Start(As("analyst"), "SELECT event_id FROM silver.events"));
  EXPECT_TRUE(q->in_source());  // the row cap holds for a source plan too
  int64_t rows = 0;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(auto chunk, q->Next());
    if (!chunk) break;
    rows += static_cast<int64_t>(chunk->row_count());
  }
  EXPECT_EQ(rows, 10);
  EXPECT_TRUE(q->truncated());
  ASSERT_OK(q->Finish());

  ASSERT_OK_AND_ASSIGN(auto slow, limited.Start(As("analyst"), "SELECT count(*) FROM silver.events a, silver.events b, "
                                                                 "silver.events c WHERE a.event_id < b.event_id"));
  auto r = slow->Next();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("timeout:", 0), 0u) << r.status();
  ASSERT_OK(slow->Finish());
  EXPECT_GE(AuditRows("outcome = 'timeout'").row_count(), 1u);
}

// DESCRIBE / SHOW answered from the policy and the Delta schemas: a role
// lists only the tables it may read, each with the columns it sees.
TEST_F(GovernedTest, ListingsShowOnlyWhatTheRoleMayRead) {
  Admin("SELECT 1");  // system.audit exists from here on
  auto tables = [&](const std::string& role, const std::string& sql = "SHOW TABLES") {
    std::set<std::string> out;
    auto r = Run(As(role, {{"regions", {"US"}}}), sql);
    EXPECT_TRUE(r.ok()) << role << ": " << r.status();
    if (!r.ok()) return out;
    EXPECT_EQ(r->column_name(0), "schema");
    for (size_t i = 0; i < r->row_count(); i++) out.insert(r->GetString(i, 0) + "." + r->GetString(i, 1));
    return out;
  };
  const std::set<std::string> all = tables("admin");
  for (const char* t : {"silver.events", "restricted.pii", "gold.fact_session_daily", "system.audit"}) {
    EXPECT_TRUE(all.count(t)) << t;
  }
  // Finance: exactly its three grants; restricted.* and the audit trail are not even named.
  EXPECT_EQ(tables("finance"),
            (std::set<std::string>{"silver.events", "gold.fact_session_daily", "gold.fact_funnel_daily"}));
  for (const std::string role : {"analyst", "finance", "data_science", "data_engineer"}) {
    for (const auto& t : tables(role)) EXPECT_NE(t.rfind("restricted.", 0), 0u) << role << " sees " << t;
    EXPECT_FALSE(tables(role).count("system.audit")) << role;
  }
  EXPECT_TRUE(tables("marketing").count("restricted.pii"));  // as hashed emails only (below)
  EXPECT_EQ(tables("analyst", "SHOW TABLES FROM gold").count("silver.events"), 0u);
  EXPECT_GT(tables("analyst", "SHOW TABLES FROM gold").size(), 0u);

  // DESCRIBE: the granted columns in table order, types as seen, masks named.
  ASSERT_OK_AND_ASSIGN(auto d, Run(As("marketing", {{"regions", {"US"}}}), "DESCRIBE silver.events"));
  ASSERT_EQ(d.column_name(0), "column_name");
  ASSERT_EQ(d.column_name(3), "mask");
  std::vector<std::string> columns;
  for (size_t i = 0; i < d.row_count(); i++) {
    columns.push_back(d.GetString(i, 0));
    const std::string c = d.GetString(i, 0);
    if (c == "user_id") {
      EXPECT_EQ(d.GetString(i, 3), "hash");
    } else {
      EXPECT_TRUE(d.IsNull(i, 3)) << c;
    }
    if (c == "event_ts") {
      EXPECT_EQ(d.GetString(i, 1), "TIMESTAMP WITH TIME ZONE");
    }
  }
  EXPECT_EQ(columns.size(), 23u);
  EXPECT_EQ(columns.front(), "event_id");
  EXPECT_EQ(std::count(columns.begin(), columns.end(), "ip_hash"), 0);
  EXPECT_EQ(std::count(columns.begin(), columns.end(), "anonymous_id"), 0);
  // The columns DESCRIBE lists are the columns SELECT * returns, with the same types.
  ASSERT_OK_AND_ASSIGN(auto star, Run(As("marketing", {{"regions", {"US"}}}),
                                      "DESCRIBE SELECT * FROM silver.events"));
  ASSERT_EQ(star.row_count(), d.row_count());
  for (size_t i = 0; i < d.row_count(); i++) {
    EXPECT_EQ(star.GetString(i, 0), d.GetString(i, 0));
    EXPECT_EQ(star.GetString(i, 1), d.GetString(i, 1)) << d.GetString(i, 0);
  }
  ASSERT_OK_AND_ASSIGN(auto ds, Run(As("data_science"), "SHOW silver.events"));
  for (size_t i = 0; i < ds.row_count(); i++) {
    if (ds.GetString(i, 0) == "original_ts") {
      EXPECT_EQ(ds.GetString(i, 1), "INTEGER");
      EXPECT_EQ(ds.GetString(i, 3), "year_only");
    }
    if (ds.GetString(i, 0) == "geo_city") {
      EXPECT_EQ(ds.GetString(i, 3), "null");
    }
  }
  // SHOW ALL TABLES: columns, types and masks per table, and whether rows are filtered.
  ASSERT_OK_AND_ASSIGN(auto all_tables, Run(As("marketing", {{"regions", {"US"}}}), "SHOW ALL TABLES"));
  bool saw_pii = false;
  for (size_t i = 0; i < all_tables.row_count(); i++) {
    if (all_tables.GetString(i, 1) != "pii") continue;
    saw_pii = true;
    EXPECT_EQ(all_tables.GetString(i, 2), "[user_key, event_date, field, value]");  // table order
    EXPECT_EQ(all_tables.GetString(i, 4), "['user_key:hash', 'value:email_sha256']");
    EXPECT_EQ(all_tables.GetString(i, 5), "true");
  }
  EXPECT_TRUE(saw_pii);

  // Not granted, unknown, or listed inside another query: refused.
  auto denied = Run(As("finance"), "DESCRIBE restricted.pii");
  ASSERT_FALSE(denied.ok());
  EXPECT_NE(denied.status().message().find("permission denied: role finance may not read restricted.pii"),
            std::string::npos) << denied.status();
  auto unknown = Run(As("finance"), "DESCRIBE silver.nothing_here");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("no table silver.nothing_here"), std::string::npos);
  for (const std::string sql : {"SELECT * FROM (SHOW TABLES) WHERE name <> 'x'", "SHOW databases",
                                "SELECT * FROM silver.events, (DESCRIBE restricted.pii)", "SUMMARIZE restricted.pii"}) {
    auto r = Run(As("finance"), sql);
    EXPECT_FALSE(r.ok()) << sql;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("permission denied"), std::string::npos) << sql << r.status();
    }
  }
  // SUMMARIZE runs over the role's rows: hashed identities, its regions only.
  ASSERT_OK_AND_ASSIGN(auto summary, Run(As("marketing", {{"regions", {"US"}}}), "SUMMARIZE silver.events"));
  for (size_t i = 0; i < summary.row_count(); i++) {
    if (summary.GetString(i, 0) == "geo_country") {
      EXPECT_EQ(summary.GetString(i, 2) + summary.GetString(i, 3), "USUS");
    }
    if (summary.GetString(i, 0) == "user_id") {
      EXPECT_EQ(summary.GetString(i, 2).size(), 64u);
    }
  }
  // Listings are audited like queries.
  EXPECT_GE(AuditRows("sql = 'DESCRIBE restricted.pii' AND outcome = 'denied'").row_count(), 1u);
  auto listed = AuditRows("sql = 'SHOW silver.events' AND outcome = 'ok'");
  ASSERT_GE(listed.row_count(), 1u);
  EXPECT_NE(listed.GetString(0, 4).find("silver.events"), std::string::npos);
}

// A statement of the source-plan shape answers exactly what the sandbox
// answers, for every default role (masks, row filters, columns), and is
// audited alike.
TEST_F(GovernedTest, SourcePlansAnswerAsTheSandboxDoes) {
  QueryServiceOptions o = service_->options();
  o.source_plans = false;
  QueryService sandboxed(o);
  auto run = [&](QueryService* service, const Principal& p, const std::string& sql, bool* in_source) {
    auto q = service->Start(p, sql);
    EXPECT_TRUE(q.ok()) << q.status() << "\n" << sql;
    if (!q.ok()) return std::make_pair(std::string(), AuditRecord());
    engine::QueryResult all = (*q)->header();
    for (;;) {
      auto chunk = (*q)->Next();
      EXPECT_TRUE(chunk.ok()) << chunk.status() << "\n" << sql;
      if (!chunk.ok() || !chunk->has_value()) break;
      all.Append(**chunk);
    }
    EXPECT_OK((*q)->Finish());
    *in_source = (*q)->in_source();
    return std::make_pair(all.ToCsv(), (*q)->record());
  };
  const std::vector<std::string> queries = {
      "SELECT utm_source, utm_campaign, count(*) AS events, round(sum(revenue), 2) AS revenue FROM silver.events "
      "WHERE event_date >= DATE '2020-01-01' AND event_name <> 'no such event' GROUP BY ALL "
      "ORDER BY revenue DESC NULLS LAST, events DESC, utm_source NULLS LAST, utm_campaign NULLS LAST LIMIT 20",
      "SELECT geo_country, count(DISTINCT user_id) AS users, count(*) AS events FROM silver.events "
      "WHERE event_ts >= TIMESTAMPTZ '2020-01-01 00:00:00+00' GROUP BY 1 ORDER BY 1",
      "SELECT platform, count(*) FROM silver.events WHERE user_id IS NOT NULL AND platform IN ('web', 'ios') "
      "GROUP BY platform ORDER BY platform",
      "SELECT event_id, user_id FROM silver.events WHERE page_path LIKE '/%' ORDER BY event_id LIMIT 25",
      "SELECT count(*), min(event_date), max(event_date) FROM silver.events WHERE revenue > 1.5",
  };
  for (const auto& [role, attrs] : std::vector<std::pair<std::string, std::map<std::string, std::vector<std::string>>>>{
           {"admin", {}}, {"analyst", {}}, {"marketing", {{"regions", {"US", "DE"}}}}, {"data_science", {}}}) {
    for (const std::string& sql : queries) {
      bool in_source = false, in_sandbox = true;
      auto [direct, direct_record] = run(service_.get(), As(role, attrs), sql, &in_source);
      auto [sandbox, sandbox_record] = run(&sandboxed, As(role, attrs), sql, &in_sandbox);
      EXPECT_FALSE(in_sandbox);
      EXPECT_TRUE(in_source) << role << ": " << sql;
      EXPECT_EQ(direct, sandbox) << role << ": " << sql;
      EXPECT_EQ(direct_record.tables, sandbox_record.tables) << role << ": " << sql;
      EXPECT_EQ(direct_record.masks, sandbox_record.masks) << role << ": " << sql;
      EXPECT_EQ(direct_record.rows, sandbox_record.rows) << role << ": " << sql;
    }
  }
  // Other shapes still run in the sandbox.
  GovernedQuery* q = nullptr;
  ASSERT_OK(Run(As("analyst"), "SELECT * FROM silver.events LIMIT 1", &q).status());
  EXPECT_FALSE(q->in_source());
  // A decimal literal filters by its value (not pushed down as its digits).
  ASSERT_OK_AND_ASSIGN(engine::QueryResult over, Run(As("finance"), "SELECT count(*) FROM silver.events WHERE revenue > 1.5"));
  ASSERT_OK_AND_ASSIGN(engine::QueryResult all, Run(As("finance"), "SELECT count(*) FILTER (WHERE revenue > 1.5), "
                                                                   "count(*) FILTER (WHERE revenue > 15) FROM silver.events"));
  EXPECT_EQ(over.GetInt64(0, 0), all.GetInt64(0, 0));
  EXPECT_GT(all.GetInt64(0, 0), all.GetInt64(0, 1));
  ASSERT_OK_AND_ASSIGN(engine::QueryResult sandboxed_over,
                       [&]() -> Result<engine::QueryResult> {
                         ASSIGN_OR_RETURN(auto sq, sandboxed.Start(As("finance"),
                                                                   "SELECT count(*) FROM silver.events WHERE revenue > 1.5"));
                         ASSIGN_OR_RETURN(auto chunk, sq->Next());
                         RETURN_IF_ERROR(sq->Finish());
                         if (!chunk) return Status::Internal("no row");
                         return *chunk;
                       }());
  EXPECT_EQ(sandboxed_over.GetInt64(0, 0), all.GetInt64(0, 0));
}

// An error raised while filtering never shows a value of a row the role's row
// filter removes, in either engine.
TEST_F(GovernedTest, ErrorsNeverShowRowsTheFilterRemoves) {
  engine::QueryResult countries =
      Admin("SELECT geo_country FROM silver.events WHERE geo_country IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC");
  ASSERT_GE(countries.row_count(), 2u);
  const Principal mia = As("marketing", {{"regions", {countries.GetString(0, 0)}}});
  int failed = 0;
  for (const std::string& sql : std::vector<std::string>{
           "SELECT count(*) FROM silver.events WHERE geo_country = 5",
           "SELECT count(*) FROM silver.events WHERE CAST(geo_country AS INTEGER) = 1",
           "SELECT count(*) FROM silver.events WHERE geo_country::DATE > DATE '2024-01-01'",
           "SELECT geo_country::INTEGER FROM silver.events",
       }) {
    auto r = Run(mia, sql);
    if (r.ok()) continue;  // e.g. `= 5` pushed below the filter as text finds nothing
    failed++;
    for (size_t i = 1; i < countries.row_count(); i++) {
      EXPECT_EQ(r.status().message().find("'" + countries.GetString(i, 0) + "'"), std::string::npos)
          << sql << "\n  -> " << r.status();
    }
  }
  EXPECT_GE(failed, 3);  // the casts of the country code fail, on the region's own rows
}

// Cancel (and the timeout's interrupt) reaches a statement running in the source engine.
TEST_F(GovernedTest, CancelStopsASourcePlan) {
  ASSERT_OK_AND_ASSIGN(auto q, service_->Start(As("analyst"), "SELECT event_id, user_id FROM silver.events"));
  ASSERT_TRUE(q->in_source());
  q->Cancel();
  auto r = q->Next();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("INTERRUPT"), std::string::npos) << r.status();
  ASSERT_OK(q->Finish());
}

TEST_F(GovernedTest, UnknownRoleAndAuthentication) {
  EXPECT_FALSE(service_->LocalPrincipal("superuser").ok());
  ASSERT_OK_AND_ASSIGN(Principal admin, service_->LocalPrincipal(""));
  EXPECT_EQ(admin.role, "admin");
  EXPECT_FALSE(service_->Authenticate("").ok());
  EXPECT_TRUE(service_->Authenticate("nope").status().IsNotFound());
}

}  // namespace
}  // namespace clicklake::access

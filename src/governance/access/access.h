// access: governed queries over the lake (DESIGN.md §7).
//
//   Policy        the policy file (TOML, beside the config): principals (API
//                 tokens stored as SHA-256, users with SCRAM-SHA-256 password
//                 verifiers) mapped to roles; rules per role and table pattern
//                 (first match wins, no match = deny): privileges, allowed or
//                 denied columns, masks from a closed vocabulary, one row filter.
//   PolicyStore   the policy file, hot-reloaded when it changes (a broken edit
//                 keeps the last good policy and is reported).
//   QueryService  runs one principal's SQL: the lake's tables the policy grants
//                 are read (deletion vectors, row filter, masks applied as
//                 projections) in an unrestricted engine and handed to a
//                 locked-down one (engine::Sandbox) where the user's SQL runs,
//                 with a timeout, a row cap, memory and thread limits. Every
//                 query is audited.
//   AuditLog      system.audit: an append-only, hash-chained Delta table; a file
//                 lock serialises writers (processes and threads); Verify()
//                 names the first record edited, removed or reordered.
//                 Other components append their records through Append().
//
// Thread safety: Policy is immutable; PolicyStore, QueryService and AuditLog are
// thread-safe. A GovernedQuery is used by one thread (Cancel() from any).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/file_system.h"
#include "common/status.h"
#include "engine/engine.h"
#include "privacy/privacy.h"

namespace clicklake::access {

// ---- Policy ----

enum class Mask { kRedact, kNull, kHash, kEmailSha256, kLast4, kTruncateIp, kYearOnly };
Result<Mask> ParseMask(std::string_view name);
const char* MaskName(Mask mask);
// The SQL expression masking `column_sql` (an expression over raw values).
// kHash calls clicklake_pii_hmac(), which QueryService registers with the PII key.
std::string MaskSql(Mask mask, const std::string& column_sql);
// The DuckDB type MaskSql yields for a column of DuckDB type `column_type`.
std::string MaskedType(Mask mask, const std::string& column_type);

struct Principal {
  std::string name;
  std::string role;
  std::map<std::string, std::vector<std::string>> attributes;  // e.g. regions = ["US", "CA"]
  std::vector<std::string> token_sha256;  // hex SHA-256 of each API token
  std::string password_scram;             // SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey> (RFC 5803 form)
  bool disabled = false;                  // revoked: its tokens and password no longer authenticate
};

struct Rule {
  std::string role;
  std::string table;                    // "layer.table" pattern: '*' matches any run of characters
  bool select = true;                   // privileges = ["select"]; [] makes the rule deny
  std::vector<std::string> columns;     // allowed columns; empty = all
  std::vector<std::string> deny_columns;
  std::map<std::string, Mask> masks;    // column → mask
  std::string row_filter;               // SQL over the table's columns; ${attr} = the principal's values
};

class Policy {
 public:
  static Result<Policy> Parse(const std::string& toml_text);
  static Result<Policy> LoadFile(const std::string& path);
  // The shipped defaults (admin, pii_service, data_engineer, analyst,
  // marketing, finance, data_science) with no principals.
  static const std::string& DefaultToml();

  // The principal holding `token` (compared by SHA-256), or nullptr.
  const Principal* FindByToken(std::string_view token) const;
  const Principal* FindByName(std::string_view name) const;
  // True when `password` matches the principal's SCRAM verifier.
  bool CheckPassword(const Principal& principal, std::string_view password) const;
  bool HasRole(const std::string& role) const;
  // The first rule of `role` whose pattern matches `table`, or nullptr.
  const Rule* Match(const std::string& role, const std::string& table) const;

  const std::vector<Principal>& principals() const { return principals_; }
  const std::vector<Rule>& rules() const { return rules_; }

 private:
  std::vector<Principal> principals_;
  std::vector<Rule> rules_;
  std::vector<std::string> roles_;
};

// What one role sees of one table: the source query's projection.
struct TableView {
  std::string table;                          // "layer.table"
  std::vector<std::string> columns;           // visible columns, in table order
  std::vector<std::string> expressions;       // SQL per visible column (a raw column or a mask)
  std::map<std::string, Mask> masks;          // masked visible columns
  std::string row_filter;                     // expanded SQL, "" = none
};
// The view of `table` (with `columns`) for `principal` under `policy`;
// nullopt when denied. InvalidArgument for a rule naming an unknown column.
Result<std::optional<TableView>> ViewFor(const Policy& policy, const Principal& principal, const std::string& table,
                                         const std::vector<std::string>& columns);

// Hashes and verifiers, as stored in the policy file (SHA-256 hex: the privacy library's).
using privacy::Sha256Hex;
// A SCRAM-SHA-256 verifier (RFC 5802/7677; stored as in RFC 5803 / PostgreSQL):
// SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations);
// StoredKey = H(HMAC(SaltedPassword, "Client Key")); ServerKey = HMAC(SaltedPassword, "Server Key").
std::string MakeScramVerifier(std::string_view password, std::string_view salt, int iterations = 4096);
// A new API token (32 random bytes, hex).
std::string NewToken();
// The user name and password of an HTTP Basic `Authorization` header value
// ("Basic <base64 of user:password>", RFC 7617); InvalidArgument when it is
// not one (other scheme, bad base64, no colon, empty user, NUL or control bytes).
Result<std::pair<std::string, std::string>> ParseBasicCredentials(std::string_view header);
// Base64 (RFC 4648, padded) decoded; "" when it is not base64.
std::string Base64Decode(std::string_view s);

class PolicyStore {
 public:
  // `path` "" or missing file: the shipped defaults (no principals).
  explicit PolicyStore(std::string path);
  // The current policy, reloaded first if the file changed since the last call.
  std::shared_ptr<const Policy> Current();
  // The error of the last reload that failed ("" = none).
  std::string last_error() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  mutable std::mutex mu_;
  std::shared_ptr<const Policy> policy_;  // GUARDED_BY(mu_)
  std::string stamp_;                     // GUARDED_BY(mu_) the file's mtime and size when loaded
  std::string error_;                     // GUARDED_BY(mu_)
};

// ---- Audit ----

struct AuditRecord {
  std::string action = "query";  // query | restricted_read | query_started | (other components') …
  std::string principal;
  std::string role;
  std::string sql;
  std::vector<std::string> tables;   // tables read
  std::vector<std::string> columns;  // "table.column" read
  std::vector<std::string> masks;    // "table.column:mask" applied
  int64_t rows = 0;
  int64_t duration_us = 0;
  std::string outcome = "ok";        // ok | denied | error | timeout | started
  std::string error;
  std::string detail;                // free JSON or text (e.g. an erasure receipt's hash)
};

struct AuditVerifyReport {
  int64_t records = 0;
  bool ok = true;
  int64_t first_bad_seq = -1;  // the first record that was edited, removed or reordered
  std::string problem;         // what is wrong there
};

class AuditLog {
 public:
  // system.audit of the lake at `lake_dir`; `db` writes its Parquet files.
  AuditLog(std::string lake_dir, engine::Database* db, FileSystem* fs = FileSystem::Default());
  // Appends one record after the last (seq + 1, prev_hash = the last hash),
  // under an exclusive file lock. IOError when it cannot be written (a full
  // disk): callers fail the audited operation.
  Status Append(const AuditRecord& record);
  // Re-reads the chain from the start and recomputes every hash.
  Result<AuditVerifyReport> Verify();
  std::string table_path() const;

 private:
  std::string lake_dir_;
  engine::Database* db_;
  FileSystem* fs_;
  std::mutex mu_;  // one appender per process at a time (the file lock covers other processes)
};

// Appends `record` to the audit chain of the lake at `lake_dir` (for other
// components: erasure receipts, PII detokenisation).
Status AppendAuditRecord(const std::string& lake_dir, const AuditRecord& record);

// ---- Governed queries ----

struct QueryLimits {
  int64_t timeout_ms = 60000;      // access.query_timeout
  int64_t max_rows = 1000000;      // access.max_rows: rows past it are not returned (truncated = true)
  std::string memory_limit = "2GB";  // access.memory_limit, per query
  int threads = 2;                 // access.threads, per query
};

struct QueryServiceOptions {
  std::string lake_dir = "./lake";
  std::string policy_file;  // access.policy_file; "" = the shipped defaults
  std::string pii_key_file;  // privacy.key_file (the hash mask's HMAC key)
  bool audit = true;        // access.audit
  // access.source_plans: a statement of the shape source_plan.h proves safe
  // (one table, column-vs-constant filters, pure functions) runs whole in the
  // source engine over the governed view; false: every statement runs in the
  // sandbox.
  bool source_plans = true;
  QueryLimits limits;
  static QueryServiceOptions FromConfig(const Config& config, const std::string& config_path);
};

class GovernedQuery;

class QueryService {
 public:
  explicit QueryService(QueryServiceOptions options);
  ~QueryService();

  PolicyStore& policy() { return policy_; }
  const QueryServiceOptions& options() const { return options_; }

  // The principal for an API token (Unauthenticated-style InvalidArgument:
  // "unauthorized: ..." for a missing, unknown or revoked token).
  Result<Principal> Authenticate(std::string_view token);
  // A principal acting as `role` (the local operator's `--as`; "" = admin).
  Result<Principal> LocalPrincipal(const std::string& role);
  // The user `name` if `password` matches its SCRAM-SHA-256 verifier (the
  // keys compared in constant time; an unknown user costs the same PBKDF2).
  // Failures are audited (action "login", outcome "denied") and returned as
  // NotFound "unauthorized: ..." (unknown user, no password, wrong password:
  // one message) or Conflict (the right password of a revoked user); IOError
  // when the failure cannot be audited.
  Result<Principal> AuthenticatePassword(std::string_view name, std::string_view password);

  // Starts `sql` for `principal`. A refusal (denied table, forbidden
  // statement) is audited and returned as InvalidArgument starting with
  // "permission denied". The query runs as its result is read. With
  // `audit_start`, a record with outcome "started" is appended before any
  // row can be read (for streamed results, which leave before Finish()).
  Result<std::unique_ptr<GovernedQuery>> Start(const Principal& principal, const std::string& sql,
                                               bool audit_start = false);

 private:
  friend class GovernedQuery;
  Status Audit(const AuditRecord& record);
  Result<std::string> PiiKey();
  // The SELECT answering a DESCRIBE/SHOW from the policy and the schemas;
  // the tables shown are added to `tables_listed`.
  Result<std::string> ListingSql(const Principal& principal, const Policy& policy,
                                 const engine::Sandbox::Listing& listing, engine::Connection* conn,
                                 std::vector<std::string>* tables_listed);

  QueryServiceOptions options_;
  PolicyStore policy_;
  std::mutex key_mu_;
  std::optional<std::string> pii_key_;  // GUARDED_BY(key_mu_)
  std::mutex audit_mu_;
  std::unique_ptr<engine::Database> audit_db_;  // GUARDED_BY(audit_mu_)
  std::unique_ptr<AuditLog> audit_;             // GUARDED_BY(audit_mu_)
};

class GovernedQuery {
 public:
  ~GovernedQuery();
  const engine::QueryResult& header() const { return stream_->header(); }
  // The next chunk, or nullopt at the end (then Finish()). Fails with
  // "timeout: ..." when the query ran past the limit.
  Result<std::optional<engine::QueryResult>> Next();
  // Audits the query (outcome from what Next() saw, or `error` if given).
  // IOError when the audit record cannot be written.
  Status Finish(const Status& error = Status::OK());
  void Cancel();
  int64_t rows() const { return rows_; }
  bool truncated() const { return truncated_; }
  // Tables and columns read, masks applied (filled as the query runs).
  AuditRecord record() const;
  // Whether the statement runs whole in the source engine (a source plan)
  // rather than in the sandbox.
  bool in_source() const { return in_source_; }
  // Where Start() spent its time (microseconds per step, in order), for
  // profiling: "engines", "check", "tables", "plan", ["sandbox",] "start".
  const std::vector<std::pair<std::string, int64_t>>& phases() const { return phases_; }

 private:
  friend class QueryService;
  GovernedQuery() = default;
  QueryService* service_ = nullptr;
  AuditRecord record_;
  std::map<std::string, TableView> views_;
  std::vector<std::string> listed_;  // a DESCRIBE/SHOW: the tables it showed
  bool in_source_ = false;
  std::map<std::string, std::vector<std::string>> source_columns_;  // a source plan's columns read
  std::vector<std::pair<std::string, int64_t>> phases_;
  std::unique_ptr<engine::Database> source_;
  std::unique_ptr<engine::Sandbox> sandbox_;
  std::unique_ptr<engine::ResultStream> stream_;
  int64_t started_us_ = 0;
  int64_t deadline_us_ = 0;
  int64_t max_rows_ = 0;
  int64_t rows_ = 0;
  bool truncated_ = false;
  bool finished_ = false;
  std::atomic<bool> timed_out_{false};
  Status failure_;
  struct Watchdog;
  std::unique_ptr<Watchdog> watchdog_;
};

}  // namespace clicklake::access

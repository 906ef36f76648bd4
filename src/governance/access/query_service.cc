// QueryService: one principal's SQL over the lake, below which the policy's
// masks and filters are applied (see access.h).
#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <set>
#include <thread>

#include "common/clock.h"
#include "common/file_system.h"
#include "delta/table.h"
#include "governance/access/access.h"
#include "governance/access/source_plan.h"
#include "pipeline/silver.h"

namespace clicklake::access {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool IsPermissionError(const Status& s) { return s.message().find("permission denied") != std::string::npos; }

// The DuckDB type of each visible column of `view` as the role sees it (the
// Delta type, or what its mask yields).
Result<std::vector<std::string>> ViewTypes(const TableView& view, const delta::Schema& schema) {
  std::vector<std::string> types;
  for (const std::string& c : view.columns) {
    const delta::Field* f = schema.Find(c);
    if (f == nullptr) return Status::Internal("no column " + c + " in " + view.table);
    ASSIGN_OR_RETURN(std::string type, delta::DuckDbType(f->type));
    auto m = view.masks.find(c);
    types.push_back(m == view.masks.end() ? type : MaskedType(m->second, type));
  }
  return types;
}

// The lake's tables ("layer.table" → directory), as `clicklake sql` lists them.
std::map<std::string, std::string> LakeTables(const std::string& lake_dir) {
  std::map<std::string, std::string> out;
  FileSystem* fs = FileSystem::Default();
  auto layers = fs->ListDir(lake_dir);
  if (!layers.ok()) return out;
  for (const FileInfo& layer : *layers) {
    if (!layer.is_dir || layer.name.empty() || layer.name[0] == '_' || layer.name[0] == '.') continue;
    auto tables = fs->ListDir(JoinPath(lake_dir, layer.name));
    if (!tables.ok()) continue;
    for (const FileInfo& t : *tables) {
      if (!t.is_dir || t.name.empty() || t.name[0] == '_' || t.name[0] == '.') continue;
      const std::string dir = JoinPath(JoinPath(lake_dir, layer.name), t.name);
      if (fs->Exists(JoinPath(dir, "_delta_log"))) out[Lower(layer.name + "." + t.name)] = dir;
    }
  }
  return out;
}

// A type's name as DuckDB spells it (DESCRIBE's "TIMESTAMP WITH TIME ZONE"
// for TIMESTAMPTZ), computed where the listing runs.
std::string TypeName(const std::string& type) { return "typeof(CAST(NULL AS " + type + "))"; }
std::string TypeNames(const std::vector<std::string>& types) {
  std::string out = "[";
  for (size_t i = 0; i < types.size(); i++) out += (i ? ", " : "") + TypeName(types[i]);
  return out + "]::VARCHAR[]";
}

std::string ListLiteral(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); i++) out += (i ? ", " : "") + engine::QuoteLiteral(values[i]);
  return out + "]::VARCHAR[]";
}

// A SELECT over `rows` (SQL literals, in order) with typed, named columns;
// no rows gives the same columns, empty.
std::string ValuesSql(const std::vector<std::pair<std::string, std::string>>& columns,
                      const std::vector<std::vector<std::string>>& rows) {
  std::string typed, names;
  for (const auto& [name, type] : columns) {
    typed += (typed.empty() ? "" : ", ") + ("CAST(NULL AS " + type + ") AS " + engine::QuoteIdentifier(name));
    names += (names.empty() ? "" : ", ") + engine::QuoteIdentifier(name);
  }
  std::string sql = "SELECT * EXCLUDE (_clicklake_n) FROM (SELECT " + typed + ", 0 AS _clicklake_n WHERE false";
  for (size_t r = 0; r < rows.size(); r++) {
    sql += r ? ", (" : " UNION ALL VALUES (";
    for (const auto& v : rows[r]) sql += v + ", ";
    sql += std::to_string(r + 1) + ")";
  }
  return sql + ") ORDER BY _clicklake_n";
}

// Drops the pushed-down predicates whose literal is not already in its
// column's canonical form: ScanSql casts the literal to the column's type,
// which follows DuckDB's coercion only when the cast round-trips (a DECIMAL
// literal's tree holds its unscaled digits, '2024-05-01 10:00' against a DATE
// column would be truncated). The query's own WHERE still applies them all.
Status KeepCanonicalPredicates(engine::Connection* conn, const delta::Schema& schema,
                               std::vector<delta::Predicate>* predicates) {
  if (predicates->empty()) return Status::OK();
  std::string probe;
  std::vector<std::string> types;
  for (const delta::Predicate& p : *predicates) {
    const delta::Field* f = schema.Find(p.column);
    if (f == nullptr) return Status::Internal("no column " + p.column);
    ASSIGN_OR_RETURN(std::string type, delta::DuckDbType(f->type));
    probe += (probe.empty() ? "SELECT " : ", ") + ("TRY_CAST(" + engine::QuoteLiteral(p.literal) + " AS " + type + ")::VARCHAR");
    types.push_back(type);
  }
  ASSIGN_OR_RETURN(engine::QueryResult canonical, conn->Query(probe));
  std::vector<delta::Predicate> kept;
  for (size_t i = 0; i < predicates->size(); i++) {
    const delta::Predicate& p = (*predicates)[i];
    if (!p.literal_type.empty() && Lower(p.literal_type) != Lower(types[i])) continue;
    if (canonical.IsNull(0, i) || canonical.GetString(0, i) != p.literal) continue;
    kept.push_back(p);
  }
  *predicates = std::move(kept);
  return Status::OK();
}

}  // namespace

// DESCRIBE / SHOW TABLES / SHOW ALL TABLES for `principal`, answered from the
// policy and the Delta schemas: only the tables the role may read, each with
// the columns it sees (types after masking, the mask named).
Result<std::string> QueryService::ListingSql(const Principal& principal, const Policy& policy,
                                             const engine::Sandbox::Listing& listing, engine::Connection* conn,
                                             std::vector<std::string>* tables_listed) {
  using Kind = engine::Sandbox::Listing::Kind;
  const std::map<std::string, std::string> lake = LakeTables(options_.lake_dir);
  std::string only = Lower(listing.relation);
  if (listing.kind == Kind::kDescribe) {
    if (only.find('.') == std::string::npos || !lake.count(only)) {
      return Status::NotFound("query failed: no table " + listing.relation +
                              " in the lake (SHOW TABLES lists the tables you may read)");
    }
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, dir] : lake) {
    if (listing.kind == Kind::kDescribe && name != only) continue;
    const std::string layer = name.substr(0, name.find('.')), table = name.substr(name.find('.') + 1);
    if (listing.kind == Kind::kShowTables && !listing.schema.empty() && listing.schema != layer) continue;
    const Rule* rule = policy.Match(principal.role, name);
    if (rule == nullptr || !rule->select) {
      if (listing.kind == Kind::kDescribe) {
        return Status::InvalidArgument("permission denied: role " + principal.role + " may not read " + name);
      }
      continue;  // not listed: a role sees only what it may read
    }
    auto snapshot = delta::LoadSnapshotAt(dir, conn, std::nullopt);
    if (snapshot.status().IsNotFound()) continue;  // no commit yet
    if (!snapshot.ok()) return snapshot.status().WithContext("table " + name);
    std::vector<std::string> all;
    for (const auto& f : snapshot->schema().fields) all.push_back(f.name);
    ASSIGN_OR_RETURN(auto view, ViewFor(policy, principal, name, all));
    if (!view.has_value()) continue;
    ASSIGN_OR_RETURN(std::vector<std::string> types, ViewTypes(*view, snapshot->schema()));
    tables_listed->push_back(name);
    if (listing.kind == Kind::kDescribe) {
      for (size_t i = 0; i < view->columns.size(); i++) {
        const std::string& c = view->columns[i];
        auto m = view->masks.find(c);
        rows.push_back({engine::QuoteLiteral(c), TypeName(types[i]),
                        engine::QuoteLiteral(snapshot->schema().Find(c)->nullable ? "YES" : "NO"),
                        m == view->masks.end() ? "NULL" : engine::QuoteLiteral(MaskName(m->second))});
      }
    } else if (listing.kind == Kind::kShowTables) {
      rows.push_back({engine::QuoteLiteral(layer), engine::QuoteLiteral(table)});
    } else {
      std::vector<std::string> masks;
      for (const auto& c : view->columns) {
        auto m = view->masks.find(c);
        if (m != view->masks.end()) masks.push_back(c + ":" + MaskName(m->second));
      }
      rows.push_back({engine::QuoteLiteral(layer), engine::QuoteLiteral(table), ListLiteral(view->columns),
                      TypeNames(types), ListLiteral(masks), view->row_filter.empty() ? "false" : "true"});
    }
  }
  if (listing.kind == Kind::kDescribe) {
    return ValuesSql({{"column_name", "VARCHAR"}, {"column_type", "VARCHAR"}, {"null", "VARCHAR"}, {"mask", "VARCHAR"}},
                     rows);
  }
  if (listing.kind == Kind::kShowTables) return ValuesSql({{"schema", "VARCHAR"}, {"name", "VARCHAR"}}, rows);
  return ValuesSql({{"schema", "VARCHAR"},
                    {"name", "VARCHAR"},
                    {"column_names", "VARCHAR[]"},
                    {"column_types", "VARCHAR[]"},
                    {"masks", "VARCHAR[]"},
                    {"row_filtered", "BOOLEAN"}},
                   rows);
}

QueryServiceOptions QueryServiceOptions::FromConfig(const Config& config, const std::string& config_path) {
  QueryServiceOptions o;
  o.lake_dir = config.lake_dir();
  o.policy_file = config.GetString("access.policy_file", "");
  if (o.policy_file.empty() && !config_path.empty()) {
    // Beside the config: <dir of config>/policy.toml, when it exists.
    const std::string beside = JoinPath(DirName(config_path), "policy.toml");
    if (FileSystem::Default()->Exists(beside)) o.policy_file = beside;
  }
  o.pii_key_file = config.GetString("privacy.key_file", "");
  o.audit = config.GetBool("access.audit", true);
  o.source_plans = config.GetBool("access.source_plans", true);
  o.limits.timeout_ms = config.GetDurationMicros("access.query_timeout", 60 * 1000000LL) / 1000;
  o.limits.max_rows = config.GetInt("access.max_rows", o.limits.max_rows);
  o.limits.memory_limit = config.GetString("access.memory_limit", o.limits.memory_limit);
  o.limits.threads = static_cast<int>(config.GetInt("access.threads", o.limits.threads));
  return o;
}

QueryService::QueryService(QueryServiceOptions options)
    : options_(std::move(options)), policy_(options_.policy_file) {}
QueryService::~QueryService() = default;

Result<Principal> QueryService::Authenticate(std::string_view token) {
  if (token.empty()) return Status::InvalidArgument("unauthorized: no bearer token (Authorization: Bearer <token>)");
  auto policy = policy_.Current();
  const Principal* p = policy->FindByToken(token);
  if (p == nullptr) return Status::NotFound("unauthorized: unknown token");
  if (p->disabled) return Status::Conflict("unauthorized: the token of " + p->name + " was revoked");
  return *p;
}

Result<Principal> QueryService::AuthenticatePassword(std::string_view name, std::string_view password) {
  auto policy = policy_.Current();
  const Principal* p = policy->FindByName(name);
  // Unknown users and users without a password are checked against a fixed
  // verifier, so every attempt pays the same PBKDF2 and answers alike.
  static const Principal* const kNobody = [] {
    auto* nobody = new Principal();
    nobody->password_scram = MakeScramVerifier(NewToken(), "clicklake-no-such-user");
    return nobody;
  }();
  Principal checked = p != nullptr && !p->password_scram.empty() ? *p : *kNobody;
  checked.disabled = false;  // a revoked user is told so only with the right password
  const bool match = policy->CheckPassword(checked, password) && p != nullptr && !p->password_scram.empty();
  Status failure;
  if (!match) {
    failure = Status::NotFound("unauthorized: wrong user name or password");
  } else if (p->disabled) {
    failure = Status::Conflict("unauthorized: user " + p->name + " was revoked");
  } else {
    return *p;
  }
  AuditRecord record;
  record.action = "login";
  record.principal = std::string(name);
  record.role = match ? p->role : "";
  record.outcome = "denied";
  record.error = failure.message();
  record.detail = "password";
  RETURN_IF_ERROR(Audit(record));
  return failure;
}

Result<Principal> QueryService::LocalPrincipal(const std::string& role) {
  Principal p;
  const char* user = std::getenv("USER");
  p.name = std::string("local:") + (user ? user : "operator");
  p.role = role.empty() ? "admin" : role;
  if (!policy_.Current()->HasRole(p.role)) {
    return Status::InvalidArgument("unknown role '" + p.role + "' (not in the policy)");
  }
  return p;
}

Result<std::string> QueryService::PiiKey() {
  std::lock_guard<std::mutex> lock(key_mu_);
  if (!pii_key_) {
    std::string path = options_.pii_key_file;
    if (path.empty()) {
      const char* home = std::getenv("HOME");
      path = std::string(home ? home : ".") + "/.clicklake/pii.key";
    }
    ASSIGN_OR_RETURN(std::string key, pipeline::LoadOrCreatePiiKey(path));
    pii_key_ = std::move(key);
  }
  return *pii_key_;
}

Status QueryService::Audit(const AuditRecord& record) {
  if (!options_.audit) return Status::OK();
  std::lock_guard<std::mutex> lock(audit_mu_);
  if (!audit_) {
    engine::DatabaseOptions o;
    o.threads = 1;
    ASSIGN_OR_RETURN(audit_db_, engine::Database::Open(o));
    audit_ = std::make_unique<AuditLog>(options_.lake_dir, audit_db_.get());
  }
  return audit_->Append(record);
}

// Interrupts the query at its deadline.
struct GovernedQuery::Watchdog {
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::thread thread;
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    if (thread.joinable()) thread.join();
  }
};

Result<std::unique_ptr<GovernedQuery>> QueryService::Start(const Principal& principal, const std::string& raw_sql,
                                                           bool audit_start) {
  std::unique_ptr<GovernedQuery> q(new GovernedQuery());
  q->service_ = this;
  q->started_us_ = SystemClock()->MonotonicMicros();
  q->record_.principal = principal.name;
  q->record_.role = principal.role;
  q->record_.sql = raw_sql;
  q->max_rows_ = options_.limits.max_rows;
  auto refuse = [&](const Status& s) -> Status {
    q->record_.outcome = IsPermissionError(s) ? "denied" : "error";
    q->record_.error = s.message();
    q->record_.duration_us = SystemClock()->MonotonicMicros() - q->started_us_;
    RETURN_IF_ERROR(Audit(q->record_));
    return s;
  };
  int64_t mark_us = q->started_us_;
  auto phase = [&](const char* name) {
    const int64_t now = SystemClock()->MonotonicMicros();
    q->phases_.emplace_back(name, now - mark_us);
    mark_us = now;
  };
  auto policy = policy_.Current();
  if (!policy->HasRole(principal.role)) return refuse(Status::InvalidArgument("permission denied: unknown role " + principal.role));

  engine::DatabaseOptions source_options;
  source_options.threads = options_.limits.threads;
  source_options.memory_limit = options_.limits.memory_limit;
  ASSIGN_OR_RETURN(q->source_, engine::Database::Open(source_options));
  // The sandbox's own engine is opened only when the statement runs there
  // (not for a source plan); until then statements are parsed on the source.
  ASSIGN_OR_RETURN(q->sandbox_, engine::Sandbox::OpenSourceOnly(q->source_.get()));
  phase("engines");

  // DuckDB reserves the catalog name `system`: system.x is memory.system.x.
  const std::string sql = engine::QualifySchemaReferences(raw_sql, "system", "memory");
  engine::Sandbox::Listing listing;
  auto relations = q->sandbox_->Check(sql, &listing);
  if (!relations.ok()) return refuse(relations.status());
  phase("check");

  ASSIGN_OR_RETURN(auto conn, q->source_->Connect());
  std::string run_sql = sql;
  if (listing.kind != engine::Sandbox::Listing::Kind::kNone) {
    // Answered from the policy and the schemas: nothing of the lake is read.
    RETURN_IF_ERROR(conn->Execute("SET TimeZone = 'UTC'"));
    auto listed = ListingSql(principal, *policy, listing, conn.get(), &q->listed_);
    if (!listed.ok()) return refuse(listed.status());
    run_sql = *listed;
    relations->clear();
  }
  // Parquet footers read once per query even when a table is scanned twice.
  RETURN_IF_ERROR(conn->Execute("SET parquet_metadata_cache = true"));
  // A source's rows are a set to the sandbox: its scan runs in parallel
  // instead of in file order through one thread.
  RETURN_IF_ERROR(conn->Execute("SET preserve_insertion_order = false"));
  const delta::TablePredicates pushdown = delta::PushdownPredicates(conn.get(), sql);
  std::vector<engine::SandboxTable> tables;
  bool needs_key = false;
  for (const std::string& written : std::set<std::string>(relations->begin(), relations->end())) {
    const std::string name = Lower(written);
    const size_t dot = name.find('.');
    if (dot == std::string::npos || name.find('.', dot + 1) != std::string::npos) continue;  // a CTE or unknown
    const std::string layer = name.substr(0, dot), table = name.substr(dot + 1);
    if (layer.empty() || table.empty() || layer[0] == '_' || layer[0] == '.' || table[0] == '_' || table[0] == '.') continue;
    const std::string path = JoinPath(JoinPath(options_.lake_dir, layer), table);
    if (!FileSystem::Default()->Exists(JoinPath(path, "_delta_log"))) continue;  // DuckDB reports the unknown table
    auto snapshot = delta::LoadSnapshotAt(path, conn.get(), std::nullopt);
    if (!snapshot.ok()) return refuse(snapshot.status().WithContext("table " + name));
    std::vector<std::string> columns;
    for (const auto& f : snapshot->schema().fields) columns.push_back(f.name);
    auto view = ViewFor(*policy, principal, name, columns);
    if (!view.ok()) return refuse(view.status());
    if (!view->has_value()) {
      return refuse(Status::InvalidArgument("permission denied: role " + principal.role + " may not read " + name));
    }
    const TableView& v = **view;
    // The query's simple predicates on columns it sees unmasked prune files
    // and rows before the projection (the same rows the user's WHERE keeps).
    delta::ScanOptions scan_options;
    for (const auto& key : {written, name}) {
      auto it = pushdown.find(key);
      if (it == pushdown.end()) continue;
      for (const auto& p : it->second) {
        if (std::find(v.columns.begin(), v.columns.end(), p.column) != v.columns.end() && !v.masks.count(p.column)) {
          scan_options.predicates.push_back(p);
        }
      }
      break;
    }
    if (Status s = KeepCanonicalPredicates(conn.get(), snapshot->schema(), &scan_options.predicates); !s.ok()) {
      return refuse(s);
    }
    auto scan = delta::ScanSql(path, *snapshot, scan_options);
    if (!scan.ok()) return refuse(scan.status().WithContext("table " + name));
    // The view's columns and types come from the Delta schema (and the masks),
    // so the sandbox never binds the source to learn them: it is bound once,
    // projected to the columns the query reads, when it is scanned. Each
    // column is cast to its declared type (a no-op when it already has it).
    auto types = ViewTypes(v, snapshot->schema());
    if (!types.ok()) return refuse(types.status());
    engine::SandboxTable sandbox_table{layer, table, "", v.columns, *types};
    std::string projection;
    for (size_t i = 0; i < v.columns.size(); i++) {
      const std::string column = engine::QuoteIdentifier(v.columns[i]);
      auto m = v.masks.find(v.columns[i]);
      const std::string expr = m == v.masks.end() ? column : MaskSql(m->second, column);
      projection += (i ? ", " : "") + ("CAST(" + expr + " AS " + (*types)[i] + ") AS " + column);
    }
    sandbox_table.source_sql = "SELECT " + projection + " FROM (" + *scan + ") AS _clicklake_raw";
    if (!v.row_filter.empty()) sandbox_table.source_sql += " WHERE (" + v.row_filter + ")";
    for (const auto& [c, m] : v.masks) needs_key |= m == Mask::kHash;
    tables.push_back(std::move(sandbox_table));
    q->views_[name] = v;
  }
  if (needs_key) {
    auto key = PiiKey();
    if (!key.ok()) return refuse(key.status().WithContext("the hash mask's PII key"));
    const std::string k = *key;
    RETURN_IF_ERROR(q->source_->RegisterStringFunction(
        "clicklake_pii_hmac", [k](std::string_view v) { return pipeline::HmacSha256Hex(k, v); }));
  }
  phase("tables");
  // One granted table and a statement of the proven shape: it runs whole in
  // the source engine, over the governed view (no second engine, no hand-over).
  std::optional<SourcePlan> plan;
  if (options_.source_plans && tables.size() == 1 && listing.kind == engine::Sandbox::Listing::Kind::kNone) {
    const engine::SandboxTable& t = tables[0];
    auto planned = PlanInSource(conn.get(), sql, {t.schema, t.name, t.source_sql, t.column_names, t.column_types});
    if (!planned.ok()) return refuse(planned.status());
    plan = std::move(*planned);
  }
  phase("plan");
  if (plan) {
    q->in_source_ = true;
    q->source_columns_[tables[0].schema + "." + tables[0].name] = plan->columns;
  } else {
    engine::SandboxOptions sandbox_options;
    sandbox_options.threads = options_.limits.threads;
    sandbox_options.memory_limit = options_.limits.memory_limit;
    ASSIGN_OR_RETURN(q->sandbox_, engine::Sandbox::Open(q->source_.get(), {}, sandbox_options));
    if (Status s = q->sandbox_->AddTables(tables); !s.ok()) return refuse(s);
    phase("sandbox");
  }
  if (audit_start) {
    AuditRecord started = q->record_;
    started.outcome = "started";
    for (const auto& [name, v] : q->views_) started.tables.push_back(name);
    started.tables.insert(started.tables.end(), q->listed_.begin(), q->listed_.end());
    RETURN_IF_ERROR(Audit(started));
  }
  auto stream = plan ? q->sandbox_->QuerySource(plan->sql) : q->sandbox_->Query(run_sql);
  if (!stream.ok()) return refuse(stream.status());
  q->stream_ = std::move(stream).value();
  phase("start");

  // The timeout: a watchdog interrupts the sandbox and its scans.
  q->deadline_us_ = q->started_us_ + options_.limits.timeout_ms * 1000;
  q->watchdog_ = std::make_unique<GovernedQuery::Watchdog>();
  GovernedQuery* raw = q.get();
  GovernedQuery::Watchdog* w = q->watchdog_.get();
  const int64_t wait_us = std::max<int64_t>(0, q->deadline_us_ - SystemClock()->MonotonicMicros());
  w->thread = std::thread([raw, w, wait_us] {
    std::unique_lock<std::mutex> lock(w->mu);
    if (!w->cv.wait_for(lock, std::chrono::microseconds(wait_us), [w] { return w->stop; })) {
      raw->timed_out_ = true;
      raw->sandbox_->Interrupt();
    }
  });
  return q;
}

GovernedQuery::~GovernedQuery() {
  watchdog_.reset();  // before the sandbox it may interrupt
}

Result<std::optional<engine::QueryResult>> GovernedQuery::Next() {
  if (rows_ >= max_rows_) {
    // One more chunk tells whether rows were left out.
    auto more = stream_->Next();
    if (more.ok() && more->has_value() && (*more)->row_count() > 0) truncated_ = true;
    return std::optional<engine::QueryResult>();
  }
  auto chunk = stream_->Next();
  if (!chunk.ok()) {
    if (timed_out_) {
      failure_ = Status::ResourceExhausted("timeout: the query ran longer than " +
                                           std::to_string(service_->options_.limits.timeout_ms) +
                                           " ms and was stopped (access.query_timeout)");
    } else {
      failure_ = chunk.status();
    }
    return failure_;
  }
  if (!chunk->has_value()) return chunk;
  if (rows_ + static_cast<int64_t>((*chunk)->row_count()) > max_rows_) {
    (*chunk)->Truncate(static_cast<size_t>(max_rows_ - rows_));
    truncated_ = true;
  }
  rows_ += static_cast<int64_t>((*chunk)->row_count());
  return chunk;
}

void GovernedQuery::Cancel() { sandbox_->Interrupt(); }

AuditRecord GovernedQuery::record() const {
  AuditRecord r = record_;
  r.tables.clear();
  r.columns.clear();
  r.masks.clear();
  if (!listed_.empty()) {
    r.tables = listed_;  // a catalog listing: the schemas shown, no rows read
    r.detail = "catalog listing";
  }
  if (sandbox_) {
    for (const auto& [table, columns] : in_source_ ? source_columns_ : sandbox_->ColumnsRead()) {
      r.tables.push_back(table);
      auto v = views_.find(table);
      for (const auto& c : columns) {
        r.columns.push_back(table + "." + c);
        if (v != views_.end()) {
          auto m = v->second.masks.find(c);
          if (m != v->second.masks.end()) r.masks.push_back(table + "." + c + ":" + MaskName(m->second));
        }
      }
    }
  }
  r.rows = rows_;
  r.duration_us = SystemClock()->MonotonicMicros() - started_us_;
  return r;
}

Status GovernedQuery::Finish(const Status& error) {
  if (finished_) return Status::OK();
  finished_ = true;
  watchdog_.reset();
  AuditRecord r = record();
  const Status& failure = !error.ok() ? error : failure_;
  if (!failure.ok()) {
    r.outcome = timed_out_ ? "timeout" : "error";
    r.error = failure.message();
  } else if (truncated_) {
    r.detail = "truncated at access.max_rows = " + std::to_string(max_rows_);
  }
  RETURN_IF_ERROR(service_->Audit(r));
  for (const auto& t : r.tables) {
    if (t.rfind("restricted.", 0) != 0) continue;
    AuditRecord restricted = r;
    restricted.action = "restricted_read";
    RETURN_IF_ERROR(service_->Audit(restricted));
  }
  return Status::OK();
}

}  // namespace clicklake::access

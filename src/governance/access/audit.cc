// system.audit: the hash-chained audit trail (see access.h).
//
// Each record is one row of the Delta table <lake>/system/audit with a
// sequence number, the hash of the previous record and its own hash:
//   hash = SHA-256(prev_hash "\n" canonical JSON of the record's fields)
// Appends hold an exclusive flock on <lake>/system/_audit/lock (processes and
// threads alike); <lake>/system/_audit/head caches "version seq hash" of the
// last record so an append does not re-read the table (a stale cache, e.g.
// after a crash between the commit and its update, is rebuilt from the table).
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/clock.h"
#include "common/json_string.h"
#include "delta/table.h"
#include "governance/access/access.h"

namespace clicklake::access {
namespace {

delta::Schema AuditSchema() {
  delta::Schema s;
  for (const auto& [name, type] : std::vector<std::pair<const char*, const char*>>{
           {"seq", "long"},         {"ts", "timestamp"},     {"action", "string"},  {"principal", "string"},
           {"role", "string"},      {"sql", "string"},       {"tables", "string"},  {"columns", "string"},
           {"masks", "string"},     {"rows", "long"},        {"duration_us", "long"}, {"outcome", "string"},
           {"error", "string"},     {"detail", "string"},    {"prev_hash", "string"}, {"hash", "string"}}) {
    s.fields.push_back({name, type, true, "{}"});
  }
  return s;
}

std::string JsonList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); i++) {
    if (i) out.push_back(',');
    AppendJsonString(items[i], &out);
  }
  return out + "]";
}

// The hashed fields, as text, in a fixed order.
struct StoredRecord {
  int64_t seq = 0;
  int64_t ts_us = 0;
  std::string action, principal, role, sql, tables, columns, masks;
  int64_t rows = 0, duration_us = 0;
  std::string outcome, error, detail, prev_hash, hash;

  std::string Canonical() const {
    std::string out = "[" + std::to_string(seq) + "," + std::to_string(ts_us);
    for (const std::string* f : {&action, &principal, &role, &sql, &tables, &columns, &masks}) {
      out.push_back(',');
      AppendJsonString(*f, &out);
    }
    out += "," + std::to_string(rows) + "," + std::to_string(duration_us);
    for (const std::string* f : {&outcome, &error, &detail}) {
      out.push_back(',');
      AppendJsonString(*f, &out);
    }
    return out + "]";
  }
  std::string ComputeHash() const { return Sha256Hex(prev_hash + "\n" + Canonical()); }
};

// An exclusive flock for the life of the object.
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      status_ = Status::FromErrno("open audit lock", path, errno);
      return;
    }
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        status_ = Status::FromErrno("lock", path, errno);
        return;
      }
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  const Status& status() const { return status_; }

 private:
  int fd_ = -1;
  Status status_;
};

const char kColumns[] =
    "seq, epoch_us(ts) AS ts_us, action, principal, role, sql, tables, columns, masks, rows, duration_us, outcome, "
    "error, detail, prev_hash, hash";

Result<std::vector<StoredRecord>> ReadRecords(const std::string& table_path, engine::Connection* conn,
                                              const std::string& suffix, FileSystem* fs) {
  ASSIGN_OR_RETURN(delta::Snapshot snap, delta::LoadSnapshotAt(table_path, conn, std::nullopt, fs));
  ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(table_path, snap));
  RETURN_IF_ERROR(conn->Execute("SET TimeZone = 'UTC'"));
  ASSIGN_OR_RETURN(engine::QueryResult r,
                   conn->Query(std::string("SELECT ") + kColumns + " FROM (" + scan + ") AS a " + suffix));
  std::vector<StoredRecord> out;
  for (size_t i = 0; i < r.row_count(); i++) {
    StoredRecord s;
    s.seq = r.GetInt64(i, 0);
    s.ts_us = r.GetInt64(i, 1);
    std::string* texts[] = {&s.action, &s.principal, &s.role, &s.sql, &s.tables, &s.columns, &s.masks};
    for (size_t k = 0; k < 7; k++) *texts[k] = r.GetString(i, 2 + k);
    s.rows = r.GetInt64(i, 9);
    s.duration_us = r.GetInt64(i, 10);
    s.outcome = r.GetString(i, 11);
    s.error = r.GetString(i, 12);
    s.detail = r.GetString(i, 13);
    s.prev_hash = r.GetString(i, 14);
    s.hash = r.GetString(i, 15);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

AuditLog::AuditLog(std::string lake_dir, engine::Database* db, FileSystem* fs)
    : lake_dir_(std::move(lake_dir)), db_(db), fs_(fs) {}

std::string AuditLog::table_path() const { return JoinPath(JoinPath(lake_dir_, "system"), "audit"); }

Status AuditLog::Append(const AuditRecord& record) {
  std::lock_guard<std::mutex> guard(mu_);
  const std::string state_dir = JoinPath(JoinPath(lake_dir_, "system"), "_audit");
  auto fail = [](const Status& s) {
    return Status::IOError("audit: cannot append to system.audit (" + s.message() +
                           "); the operation is refused until the audit trail can be written");
  };
  if (Status s = fs_->CreateDirs(state_dir); !s.ok()) return fail(s);
  FileLock lock(JoinPath(state_dir, "lock"));
  if (!lock.status().ok()) return fail(lock.status());
  auto table = delta::Table::OpenOrCreate(table_path(), AuditSchema(), {}, {}, db_, fs_);
  if (!table.ok()) return fail(table.status());
  auto latest = (*table)->LatestVersion();
  if (!latest.ok()) return fail(latest.status());
  ASSIGN_OR_RETURN(auto conn, db_->Connect());

  // The last record: from the head file when it describes the latest version.
  int64_t last_seq = -1;
  std::string last_hash;
  bool have_head = false;
  const std::string head_path = JoinPath(state_dir, "head");
  if (auto head = fs_->ReadFile(head_path); head.ok()) {
    char hash[65] = {0};
    long long version = -1, seq = -1;
    if (std::sscanf(head->c_str(), "%lld %lld %64s", &version, &seq, hash) == 3 && version == *latest) {
      last_seq = seq;
      last_hash = hash;
      have_head = true;
    }
  }
  if (!have_head) {
    auto last = ReadRecords(table_path(), conn.get(), "ORDER BY seq DESC LIMIT 1", fs_);
    if (!last.ok()) return fail(last.status());
    if (!last->empty()) {
      last_seq = last->front().seq;
      last_hash = last->front().hash;
    }
  }

  StoredRecord s;
  s.seq = last_seq + 1;
  s.ts_us = SystemClock()->NowMicros();
  s.action = record.action;
  s.principal = record.principal;
  s.role = record.role;
  s.sql = record.sql;
  s.tables = JsonList(record.tables);
  s.columns = JsonList(record.columns);
  s.masks = JsonList(record.masks);
  s.rows = record.rows;
  s.duration_us = record.duration_us;
  s.outcome = record.outcome;
  s.error = record.error;
  s.detail = record.detail;
  s.prev_hash = last_hash;
  s.hash = s.ComputeHash();

  using engine::QuoteLiteral;
  const std::string row =
      "SELECT " + std::to_string(s.seq) + "::BIGINT AS seq, make_timestamp(" + std::to_string(s.ts_us) +
      "::BIGINT)::TIMESTAMPTZ AS ts, " + QuoteLiteral(s.action) + " AS action, " + QuoteLiteral(s.principal) +
      " AS principal, " + QuoteLiteral(s.role) + " AS role, " + QuoteLiteral(s.sql) + " AS sql, " +
      QuoteLiteral(s.tables) + " AS tables, " + QuoteLiteral(s.columns) + " AS columns, " + QuoteLiteral(s.masks) +
      " AS masks, " + std::to_string(s.rows) + "::BIGINT AS rows, " + std::to_string(s.duration_us) +
      "::BIGINT AS duration_us, " + QuoteLiteral(s.outcome) + " AS outcome, " + QuoteLiteral(s.error) +
      " AS error, " + QuoteLiteral(s.detail) + " AS detail, " + QuoteLiteral(s.prev_hash) + " AS prev_hash, " +
      QuoteLiteral(s.hash) + " AS hash";
  auto txn = (*table)->StartTransaction();
  txn->SetBlindAppend(true);
  txn->SetOperation("AUDIT", {{"action", s.action}});
  auto written = txn->WriteFiles(conn.get(), row);
  if (!written.ok()) return fail(written.status());
  auto version = txn->Commit();
  if (!version.ok()) return fail(version.status());
  // A head that cannot be written is rebuilt by the next append.
  (void)fs_->WriteFile(head_path, std::to_string(*version) + " " + std::to_string(s.seq) + " " + s.hash + "\n");
  return Status::OK();
}

Result<AuditVerifyReport> AuditLog::Verify() {
  AuditVerifyReport report;
  if (!fs_->Exists(JoinPath(table_path(), "_delta_log"))) return report;  // nothing audited yet
  ASSIGN_OR_RETURN(auto conn, db_->Connect());
  ASSIGN_OR_RETURN(std::vector<StoredRecord> records, ReadRecords(table_path(), conn.get(), "ORDER BY seq", fs_));
  report.records = static_cast<int64_t>(records.size());
  auto bad = [&](int64_t seq, std::string problem) {
    report.ok = false;
    report.first_bad_seq = seq;
    report.problem = std::move(problem);
    return report;
  };
  std::string prev;
  for (size_t i = 0; i < records.size(); i++) {
    const StoredRecord& r = records[i];
    const int64_t expected = static_cast<int64_t>(i);
    if (r.seq > expected) return bad(expected, "record " + std::to_string(expected) + " was removed");
    if (r.seq < expected) return bad(r.seq, "record " + std::to_string(r.seq) + " appears twice (copied or reordered)");
    if (r.prev_hash != prev) {
      return bad(r.seq, "record " + std::to_string(r.seq) +
                            " does not follow the record before it (reordered, or one before it replaced)");
    }
    if (r.ComputeHash() != r.hash) return bad(r.seq, "record " + std::to_string(r.seq) + " was edited (hash mismatch)");
    prev = r.hash;
  }
  // Records removed at the end: the head file remembers the last sequence number.
  if (auto head = fs_->ReadFile(JoinPath(JoinPath(JoinPath(lake_dir_, "system"), "_audit"), "head")); head.ok()) {
    long long version = -1, seq = -1;
    if (std::sscanf(head->c_str(), "%lld %lld", &version, &seq) == 2 && seq >= report.records) {
      return bad(report.records, "record " + std::to_string(report.records) + " was removed (the chain's head is record " +
                                     std::to_string(seq) + ")");
    }
  }
  return report;
}

Status AppendAuditRecord(const std::string& lake_dir, const AuditRecord& record) {
  engine::DatabaseOptions options;
  options.threads = 1;
  ASSIGN_OR_RETURN(auto db, engine::Database::Open(options));
  AuditLog log(lake_dir, db.get());
  return log.Append(record);
}

}  // namespace clicklake::access

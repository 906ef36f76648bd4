// Table: open/create, snapshots, history, describe, log commit primitives.

#include <algorithm>
#include <set>

#include "delta/internal.h"

namespace clicklake::delta {
namespace internal {

Status WriteSyncedFile(FileSystem* fs, const std::string& path, std::string_view content) {
  ASSIGN_OR_RETURN(auto file, fs->NewWritableFile(path));
  Status st = file->Append(content);
  if (st.ok()) st = file->Sync();
  Status close = file->Close();
  if (st.ok()) st = close;
  if (!st.ok()) fs->DeleteFile(path).IgnoreError();
  return st;
}

Status PutIfAbsent(FileSystem* fs, const std::string& log_dir, int64_t version, std::string_view content) {
  std::string temp = JoinPath(log_dir, "." + NewUuid() + ".tmp");
  std::string target = JoinPath(log_dir, CommitFileName(version));
  RETURN_IF_ERROR(WriteSyncedFile(fs, temp, content));
  Status link = fs->Link(temp, target);
  // The temp name is garbage either way; a crash before this unlink leaves it
  // behind for CleanupLog (readers ignore it).
  fs->DeleteFile(temp).IgnoreError();
  if (!link.ok()) {
    if (link.IsAlreadyExists() || (link.code() != StatusCode::kIOError && fs->Exists(target))) {
      return Status::AlreadyExists("commit " + std::to_string(version) + " already exists");
    }
    return link;
  }
  return fs->SyncDir(log_dir);
}

Status WriteAtomically(FileSystem* fs, const std::string& path, std::string_view content) {
  std::string temp = JoinPath(DirName(path), "." + NewUuid() + ".tmp");
  RETURN_IF_ERROR(WriteSyncedFile(fs, temp, content));
  Status st = fs->Rename(temp, path);
  if (!st.ok()) {
    fs->DeleteFile(temp).IgnoreError();
    return st;
  }
  return fs->SyncDir(DirName(path));
}

Status SyncExternalFile(FileSystem* fs, const std::string& path) {
  ASSIGN_OR_RETURN(auto file, fs->NewAppendableFile(path));
  Status st = file->Sync();
  Status close = file->Close();
  return st.ok() ? close : st;
}

std::string CommitInfoJson(int64_t timestamp_ms, const std::string& operation,
                           const std::map<std::string, std::string>& params, int64_t read_version,
                           const std::string& isolation_level, bool blind_append,
                           const std::map<std::string, std::string>& metrics,
                           const std::vector<std::pair<std::string, std::string>>& extra) {
  std::string out = "{\"commitInfo\":{\"timestamp\":" + std::to_string(timestamp_ms) +
                    ",\"operation\":" + JsonString(operation) + ",\"operationParameters\":" + JsonStringMap(params);
  if (read_version >= 0) out += ",\"readVersion\":" + std::to_string(read_version);
  out += ",\"isolationLevel\":" + JsonString(isolation_level);
  out += std::string(",\"isBlindAppend\":") + (blind_append ? "true" : "false");
  out += ",\"operationMetrics\":" + JsonStringMap(metrics);
  out += ",\"engineInfo\":" + JsonString(kEngineInfo);
  out += ",\"txnId\":" + JsonString(NewUuid());
  for (const auto& [k, v] : extra) out += "," + JsonString(k) + ":" + v;
  out += "}}";
  return out;
}

}  // namespace internal

Table::Table(std::string path, engine::Database* db, FileSystem* fs, Clock* clock)
    : path_(std::move(path)), db_(db), fs_(fs), clock_(clock) {}
Table::~Table() = default;

std::string Table::log_dir() const { return JoinPath(path_, "_delta_log"); }

Result<std::unique_ptr<Table>> Table::Open(const std::string& path, engine::Database* db, FileSystem* fs,
                                           Clock* clock) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  std::unique_ptr<Table> table(new Table(p, db, fs, clock));
  ASSIGN_OR_RETURN(internal::LogListing listing, internal::ListLog(fs, table->log_dir()));
  if (listing.commits.empty() && listing.checkpoints.empty()) {
    return Status::NotFound("no Delta table at " + path + ": _delta_log holds no commits");
  }
  return table;
}

Result<std::unique_ptr<Table>> Table::OpenOrCreate(const std::string& path, const Schema& schema,
                                                   const std::vector<std::string>& partition_columns,
                                                   const std::map<std::string, std::string>& configuration,
                                                   engine::Database* db, FileSystem* fs, Clock* clock) {
  auto existing = Open(path, db, fs, clock);
  if (existing.ok() || !existing.status().IsNotFound()) return existing;

  if (schema.fields.empty()) return Status::InvalidArgument("cannot create table " + path + " with no columns");
  std::set<std::string> names;
  for (const Field& f : schema.fields) {
    if (!names.insert(f.name).second) return Status::InvalidArgument("duplicate column " + f.name);
    RETURN_IF_ERROR(DuckDbType(f.type).status().WithContext("column " + f.name));
  }
  for (const auto& p : partition_columns) {
    const Field* f = schema.Find(p);
    if (f == nullptr) return Status::InvalidArgument("partition column " + p + " is not in the schema");
    if (!f->type.empty() && f->type[0] == '{') return Status::InvalidArgument("partition column " + p + " is nested");
  }
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  std::unique_ptr<Table> table(new Table(p, db, fs, clock));
  RETURN_IF_ERROR(fs->CreateDirs(table->log_dir()));
  Metadata md;
  md.id = internal::NewUuid();
  md.schema = schema;
  md.schema_string = schema.ToJson();
  md.partition_columns = partition_columns;
  md.configuration = configuration;
  md.created_time = clock->NowMillis();
  // Deletion vectors unless switched off ("delta.enableDeletionVectors":"false").
  const Protocol protocol = internal::NewTableProtocol(configuration);
  if (protocol.min_writer_version == 7) md.configuration.emplace("delta.enableDeletionVectors", "true");
  std::map<std::string, std::string> params = {{"isManaged", "false"},
                                               {"partitionBy", internal::JsonStringArray(partition_columns)},
                                               {"properties", internal::JsonStringMap(md.configuration)}};
  std::string content = internal::CommitInfoJson(clock->NowMillis(), "CREATE TABLE", params, -1, "Serializable",
                                                 true, {}, {}) +
                        "\n" + internal::SerializeProtocol(protocol) + "\n" + internal::SerializeMetadata(md) + "\n";
  Status st = internal::PutIfAbsent(fs, table->log_dir(), 0, content);
  if (st.IsAlreadyExists()) return Open(p, db, fs, clock);  // lost the creation race
  RETURN_IF_ERROR(st);
  return table;
}

Result<Snapshot> Table::LoadSnapshot(std::optional<int64_t> version) {
  ASSIGN_OR_RETURN(auto conn, db_->Connect());
  return internal::LoadSnapshotImpl(path_, fs_, conn.get(), version);
}

Result<Snapshot> Table::LoadSnapshotAsOf(int64_t timestamp_ms) {
  ASSIGN_OR_RETURN(internal::LogListing listing, internal::ListLog(fs_, log_dir()));
  auto times = internal::CommitTimestamps(listing);
  // In-commit timestamps, where the table enables them, take precedence.
  std::optional<int64_t> chosen;
  for (const auto& [version, t] : times) {
    if (t <= timestamp_ms) chosen = version;
  }
  if (!chosen) {
    return Status::InvalidArgument("timestamp " + std::to_string(timestamp_ms) + " is before the first commit of " +
                                   path_ + " still in the log");
  }
  ASSIGN_OR_RETURN(auto conn, db_->Connect());
  ASSIGN_OR_RETURN(Snapshot snap, internal::LoadSnapshotImpl(path_, fs_, conn.get(), *chosen, &listing));
  if (snap.Config("delta.enableInCommitTimestamps", "false") == "true") {
    // Re-pick by the commits' own timestamps.
    std::optional<int64_t> by_ict;
    for (const auto& [version, info] : listing.commits) {
      auto text = fs_->ReadFile(JoinPath(log_dir(), info.name));
      if (!text.ok()) continue;
      internal::CommitActions a;
      if (!internal::ParseActions(*text, &a).ok()) continue;
      int64_t t = a.in_commit_timestamp.value_or(times[version]);
      if (t <= timestamp_ms) by_ict = version;
    }
    if (by_ict && *by_ict != *chosen) {
      return internal::LoadSnapshotImpl(path_, fs_, conn.get(), *by_ict, &listing);
    }
  }
  return snap;
}

Result<int64_t> Table::LatestVersion() {
  ASSIGN_OR_RETURN(internal::LogListing listing, internal::ListLog(fs_, log_dir()));
  int64_t latest = -1;
  if (!listing.commits.empty()) latest = listing.commits.rbegin()->first;
  return latest;
}

std::unique_ptr<Transaction> Table::StartTransaction() {
  auto snap = LoadSnapshot();
  if (!snap.ok()) return std::unique_ptr<Transaction>(new Transaction(this, Snapshot{}, snap.status()));
  return std::unique_ptr<Transaction>(new Transaction(this, std::move(*snap), Status::OK()));
}

std::unique_ptr<Transaction> Table::StartTransaction(Snapshot read_snapshot) {
  return std::unique_ptr<Transaction>(new Transaction(this, std::move(read_snapshot), Status::OK()));
}

Result<std::vector<CommitSummary>> Table::History(std::optional<int64_t> limit) {
  ASSIGN_OR_RETURN(internal::LogListing listing, internal::ListLog(fs_, log_dir()));
  auto times = internal::CommitTimestamps(listing);
  std::vector<CommitSummary> out;
  for (auto it = listing.commits.rbegin(); it != listing.commits.rend(); ++it) {
    if (limit && static_cast<int64_t>(out.size()) >= *limit) break;
    CommitSummary s;
    s.version = it->first;
    s.timestamp_ms = times[it->first];
    ASSIGN_OR_RETURN(std::string text, fs_->ReadFile(JoinPath(log_dir(), it->second.name)));
    internal::CommitActions a;
    RETURN_IF_ERROR(internal::ParseActions(text, &a).WithContext("commit " + std::to_string(it->first)));
    if (a.commit_info) {
      s.commit_info_json = *a.commit_info;
      if (a.commit_timestamp) s.timestamp_ms = *a.commit_timestamp;
      // Pull a few fields out of the commitInfo object.
      auto field = [&](const std::string& key) -> std::string {
        std::string needle = "\"" + key + "\":";
        size_t pos = s.commit_info_json.find(needle);
        if (pos == std::string::npos) return "";
        pos += needle.size();
        // Scan one JSON value (string or balanced object).
        size_t end = pos;
        if (s.commit_info_json[pos] == '"') {
          end++;
          while (end < s.commit_info_json.size() && s.commit_info_json[end] != '"') {
            if (s.commit_info_json[end] == '\\') end++;
            end++;
          }
          return s.commit_info_json.substr(pos + 1, end - pos - 1);
        }
        if (s.commit_info_json[pos] == '{') {
          int depth = 0;
          bool in_str = false;
          for (; end < s.commit_info_json.size(); end++) {
            char c = s.commit_info_json[end];
            if (in_str) {
              if (c == '\\') end++;
              else if (c == '"') in_str = false;
            } else if (c == '"') {
              in_str = true;
            } else if (c == '{') {
              depth++;
            } else if (c == '}' && --depth == 0) {
              break;
            }
          }
          return s.commit_info_json.substr(pos, end - pos + 1);
        }
        return "";
      };
      s.operation = field("operation");
      std::string params = field("operationParameters");
      if (!params.empty()) s.operation_parameters_json = params;
      std::string metrics = field("operationMetrics");
      if (!metrics.empty()) s.operation_metrics_json = metrics;
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<TableDescription> Table::Describe(std::optional<int64_t> version) {
  ASSIGN_OR_RETURN(Snapshot snap, LoadSnapshot(version));
  TableDescription d;
  d.path = path_;
  d.version = snap.version;
  d.protocol = snap.protocol;
  d.metadata = snap.metadata;
  d.num_files = static_cast<int64_t>(snap.files.size());
  d.size_bytes = snap.TotalBytes();
  int64_t records = 0;
  for (const auto& f : snap.files) {
    size_t pos = f.stats.find("\"numRecords\":");
    if (pos == std::string::npos) {
      records = -1;
      break;
    }
    records += std::strtoll(f.stats.c_str() + pos + 13, nullptr, 10);
  }
  d.num_records = records;
  return d;
}

}  // namespace clicklake::delta

// Table maintenance operations: optimize, vacuum, replace-partitions,
// delete-where, schema evolution. Each is one commit (vacuum: START and END).

#include <algorithm>
#include <set>
#include <sstream>

#include "delta/deletion_vector.h"
#include "delta/internal.h"

namespace clicklake::delta {
namespace {

std::vector<std::string> SplitColumns(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
    if (a != std::string::npos) out.push_back(item.substr(a, b - a + 1));
  }
  return out;
}

// SQL scanning just `files` of `snap`.
Result<std::string> ScanFiles(const std::string& path, const Snapshot& snap, std::vector<AddFile> files) {
  Snapshot sub;
  sub.version = snap.version;
  sub.protocol = snap.protocol;
  sub.metadata = snap.metadata;
  sub.files = std::move(files);
  return ScanSql(path, sub);
}

bool Matches(const AddFile& f, const std::map<std::string, std::optional<std::string>>& filter) {
  for (const auto& [k, v] : filter) {
    auto it = f.partition_values.find(k);
    if (it == f.partition_values.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace

Result<OptimizeResult> Table::Optimize(const OptimizeOptions& options) {
  if (options.target_size <= 0) return Status::InvalidArgument("optimize target size must be positive");
  if (!(options.purge_deleted_fraction >= 0 && options.purge_deleted_fraction <= 1)) {
    return Status::InvalidArgument("optimize purge_deleted_fraction must lie in [0, 1]");
  }
  if (options.max_input_bytes && *options.max_input_bytes <= 0) {
    return Status::InvalidArgument("optimize max_input_bytes must be positive");
  }
  auto tx = StartTransaction();
  RETURN_IF_ERROR(tx->read_status_);
  const Snapshot& snap = tx->read_snapshot();
  std::vector<std::string> sort_by = options.sort_by;
  if (sort_by.empty()) sort_by = SplitColumns(snap.Config("delta.clicklake.zOrderBy", ""));
  if (sort_by.empty()) sort_by = SplitColumns(snap.Config("delta.clicklake.sortBy", ""));
  for (const auto& c : sort_by) {
    if (snap.schema().Find(c) == nullptr) return Status::InvalidArgument("optimize: no column " + c + " to sort by");
  }
  int64_t min_size = options.min_file_size.value_or(options.target_size);

  // Candidates per partition: small files, and files whose DV deletes more
  // than the purge fraction of their rows (rewritten however big).
  struct Candidate {
    AddFile file;
    double deleted_fraction = 0;
    bool purge = false;
    int64_t live_bytes = 0;  // size scaled by the rows still live
  };
  std::map<std::string, std::vector<Candidate>> by_partition;
  for (const auto& f : snap.files) {
    if (!Matches(f, options.partition_filter)) continue;
    Candidate c;
    c.file = f;
    if (f.deletion_vector && f.deletion_vector->cardinality > 0) {
      int64_t records = internal::StatsNumRecords(f.stats).value_or(0);
      c.deleted_fraction = records > 0 ? static_cast<double>(f.deletion_vector->cardinality) / records : 1.0;
      c.purge = c.deleted_fraction > options.purge_deleted_fraction;
    }
    if (f.size >= min_size && !c.purge) continue;
    c.live_bytes = static_cast<int64_t>(static_cast<double>(f.size) * (1 - std::min(c.deleted_fraction, 1.0)));
    by_partition[internal::PartitionKey(f.partition_values)].push_back(std::move(c));
  }
  // Bin-packed up to the target size (by live bytes); a bin is rewritten when
  // it merges files or purges a DV.
  struct Bin {
    std::vector<Candidate> files;
    int64_t input_bytes = 0;
    double worst_fraction = 0;
    bool purge = false;
  };
  std::vector<Bin> bins;
  for (auto& [key, files] : by_partition) {
    std::sort(files.begin(), files.end(),
              [](const Candidate& a, const Candidate& b) { return a.live_bytes < b.live_bytes; });
    Bin bin;
    int64_t bin_live = 0;
    auto flush = [&]() {
      if (bin.files.size() > 1 || bin.purge) bins.push_back(std::move(bin));
      bin = Bin{};
      bin_live = 0;
    };
    for (auto& c : files) {
      if (!bin.files.empty() && bin_live + c.live_bytes > options.target_size) flush();
      bin_live += c.live_bytes;
      bin.input_bytes += c.file.size;
      bin.worst_fraction = std::max(bin.worst_fraction, c.purge ? c.deleted_fraction : 0.0);
      bin.purge |= c.purge;
      bin.files.push_back(std::move(c));
    }
    flush();
  }
  // Worst first: most deleted rows, then most files merged, then least input.
  std::stable_sort(bins.begin(), bins.end(), [](const Bin& a, const Bin& b) {
    if (a.worst_fraction != b.worst_fraction) return a.worst_fraction > b.worst_fraction;
    if (a.files.size() != b.files.size()) return a.files.size() > b.files.size();
    return a.input_bytes < b.input_bytes;
  });
  OptimizeResult result;
  if (options.max_input_bytes) {
    std::vector<Bin> chosen;
    int64_t input = 0;
    for (auto& b : bins) {
      if (!chosen.empty() && input + b.input_bytes > *options.max_input_bytes) {
        result.more_work = true;
        continue;
      }
      input += b.input_bytes;
      chosen.push_back(std::move(b));
    }
    bins = std::move(chosen);
  }
  if (bins.empty()) return result;

  ASSIGN_OR_RETURN(auto conn, db_->Connect());
  tx->SetDataChange(false);
  std::string order;
  for (const auto& c : sort_by) order += (order.empty() ? "" : ", ") + engine::QuoteIdentifier(c);
  for (const auto& bin : bins) {
    std::vector<AddFile> inputs;
    for (const auto& c : bin.files) inputs.push_back(c.file);
    // ScanSql applies the DVs: deleted rows are not copied.
    ASSIGN_OR_RETURN(std::string scan, ScanFiles(path_, snap, inputs));
    std::string sql = "SELECT * FROM (" + scan + ")" + (order.empty() ? "" : " ORDER BY " + order);
    ASSIGN_OR_RETURN(std::vector<AddFile> added, tx->WriteFiles(conn.get(), sql, inputs[0].partition_values));
    for (const auto& f : inputs) {
      tx->RemoveFile(f);
      result.files_removed++;
      result.bytes_removed += f.size;
      if (f.deletion_vector) {
        result.deletion_vectors_purged++;
        result.deleted_rows_purged += f.deletion_vector->cardinality;
      }
    }
    for (const auto& a : added) {
      result.files_added++;
      result.bytes_added += a.size;
      result.rows += internal::StatsNumRecords(a.stats).value_or(0);
    }
  }
  std::string predicate = "[]";
  if (!options.partition_filter.empty()) predicate = internal::JsonStringArray({internal::PartitionKey(options.partition_filter)});
  tx->SetOperation("OPTIMIZE", {{"predicate", predicate}, {"zOrderBy", internal::JsonStringArray(sort_by)}});
  tx->SetOperationMetrics({{"numRemovedFiles", std::to_string(result.files_removed)},
                           {"numAddedFiles", std::to_string(result.files_added)},
                           {"numRemovedBytes", std::to_string(result.bytes_removed)},
                           {"numAddedBytes", std::to_string(result.bytes_added)},
                           {"numDeletionVectorsRemoved", std::to_string(result.deletion_vectors_purged)},
                           {"numDeletionVectorRowsRemoved", std::to_string(result.deleted_rows_purged)}});
  ASSIGN_OR_RETURN(result.version, tx->Commit());
  return result;
}

Result<VacuumResult> Table::Vacuum(const VacuumOptions& options) {
  ASSIGN_OR_RETURN(Snapshot snap, LoadSnapshot());
  int64_t default_ms = internal::ParseIntervalMs(snap.Config("delta.deletedFileRetentionDuration", "interval 7 days"))
                           .value_or(7LL * 86400 * 1000);
  int64_t retain_ms = options.retain_hours ? static_cast<int64_t>(*options.retain_hours * 3600 * 1000) : default_ms;
  if (retain_ms < 0) return Status::InvalidArgument("vacuum retention must not be negative");
  if (retain_ms < 168LL * 3600 * 1000 && !options.force) {
    return Status::InvalidArgument(
        "vacuum refuses a retention under 168 hours: concurrent readers and time travel may still need those files; "
        "pass --force to override");
  }
  int64_t now = clock_->NowMillis();
  int64_t cutoff = now - retain_ms;
  std::set<std::string> keep;
  // DV files are kept while a live add or an unexpired tombstone refers to them.
  std::string table_dir = DataFilePath(path_, "x");
  table_dir.pop_back();
  auto keep_dv = [&](const std::optional<DeletionVector>& dv) {
    if (!dv || dv->storage_type == "i") return;
    auto file = internal::DeletionVectorFilePath(path_, *dv);
    if (file.ok() && file->rfind(table_dir, 0) == 0) keep.insert(file->substr(table_dir.size()));
  };
  for (const auto& f : snap.files) {
    keep.insert(DecodePath(f.path));
    keep_dv(f.deletion_vector);
  }
  for (const auto& r : snap.tombstones) {
    if (r.deletion_timestamp > cutoff) {
      keep.insert(DecodePath(r.path));
      keep_dv(r.deletion_vector);
    }
  }
  VacuumResult result;
  std::vector<std::pair<std::string, int64_t>> to_delete;
  // Walk the table directory; skip hidden names except partition directories.
  std::vector<std::string> stack = {""};
  while (!stack.empty()) {
    std::string rel = stack.back();
    stack.pop_back();
    ASSIGN_OR_RETURN(auto entries, fs_->ListDir(rel.empty() ? path_ : JoinPath(path_, rel)));
    for (const auto& e : entries) {
      bool hidden = (e.name[0] == '_' || e.name[0] == '.') && e.name.find('=') == std::string::npos;
      if (hidden) continue;
      std::string child = rel.empty() ? e.name : rel + "/" + e.name;
      if (e.is_dir) {
        stack.push_back(child);
        continue;
      }
      if (keep.count(child) || e.mtime_ms > cutoff) continue;
      to_delete.emplace_back(child, static_cast<int64_t>(e.size));
    }
  }
  std::sort(to_delete.begin(), to_delete.end());
  int64_t bytes = 0;
  for (const auto& [p, s] : to_delete) bytes += s;
  auto is_dv_file = [](const std::string& rel) {
    std::string name = BaseName(rel);
    return name.rfind("deletion_vector_", 0) == 0 && name.size() > 4 && name.substr(name.size() - 4) == ".bin";
  };
  if (options.dry_run) {
    for (const auto& [p, s] : to_delete) {
      result.deleted.push_back(p);
      result.deletion_vector_files += is_dv_file(p);
    }
    result.bytes_deleted = bytes;
    return result;
  }
  std::map<std::string, std::string> params = {{"retentionCheckEnabled", options.force ? "false" : "true"},
                                               {"defaultRetentionMillis", std::to_string(default_ms)},
                                               {"specifiedRetentionMillis", std::to_string(retain_ms)}};
  {
    auto tx = StartTransaction(snap);
    tx->SetBlindAppend(true);
    tx->SetOperation("VACUUM START", params);
    tx->SetOperationMetrics({{"numFilesToDelete", std::to_string(to_delete.size())},
                             {"sizeOfDataToDelete", std::to_string(bytes)}});
    RETURN_IF_ERROR(tx->Commit().status());
  }
  for (const auto& [p, s] : to_delete) {
    Status st = fs_->DeleteFile(JoinPath(path_, p));
    if (!st.ok() && fs_->Exists(JoinPath(path_, p))) return st;
    result.deleted.push_back(p);
    result.bytes_deleted += s;
    result.deletion_vector_files += is_dv_file(p);
  }
  {
    ASSIGN_OR_RETURN(Snapshot latest, LoadSnapshot());
    auto tx = StartTransaction(latest);
    tx->SetBlindAppend(true);
    tx->SetOperation("VACUUM END", {{"status", "COMPLETED"}});
    tx->SetOperationMetrics({{"numDeletedFiles", std::to_string(result.deleted.size())},
                             {"numVacuumedDirectories", "0"}});
    RETURN_IF_ERROR(tx->Commit().status());
  }
  return result;
}

Result<int64_t> Table::ReplacePartitions(
    engine::Connection* conn, const std::string& query,
    const std::vector<std::map<std::string, std::optional<std::string>>>& partitions) {
  auto tx = StartTransaction();
  RETURN_IF_ERROR(tx->read_status_);
  const Snapshot& snap = tx->read_snapshot();
  std::set<std::string> keys;
  std::set<std::string> columns(snap.partition_columns().begin(), snap.partition_columns().end());
  for (const auto& p : partitions) {
    std::set<std::string> given;
    for (const auto& [k, v] : p) given.insert(k);
    if (given != columns) {
      return Status::InvalidArgument("replace-partitions needs a value for exactly the partition columns " +
                                     internal::JsonStringArray(snap.partition_columns()));
    }
    keys.insert(internal::PartitionKey(p));
    tx->ReadPartition(p);
  }
  int64_t removed = 0;
  for (const auto& f : snap.files) {
    if (keys.count(internal::PartitionKey(f.partition_values))) {
      tx->RemoveFile(f);
      removed++;
    }
  }
  ASSIGN_OR_RETURN(std::vector<AddFile> added, tx->WriteFiles(conn, query));
  int64_t rows = 0;
  for (const auto& a : added) {
    if (!keys.count(internal::PartitionKey(a.partition_values))) {
      for (const auto& x : added) fs_->DeleteFile(JoinPath(path_, DecodePath(x.path))).IgnoreError();
      return Status::InvalidArgument("replace-partitions: the rows hold partition " +
                                     internal::PartitionKey(a.partition_values) + ", which is not being replaced");
    }
    size_t pos = a.stats.find("\"numRecords\":");
    if (pos != std::string::npos) rows += std::strtoll(a.stats.c_str() + pos + 13, nullptr, 10);
  }
  std::vector<std::string> predicate(keys.begin(), keys.end());
  tx->SetOperation("WRITE", {{"mode", "Overwrite"},
                             {"partitionBy", internal::JsonStringArray(snap.partition_columns())},
                             {"predicate", internal::JsonStringArray(predicate)}});
  tx->SetOperationMetrics({{"numFiles", std::to_string(added.size())},
                           {"numRemovedFiles", std::to_string(removed)},
                           {"numOutputRows", std::to_string(rows)}});
  return tx->Commit();
}

Result<int64_t> Table::DeleteWhere(engine::Connection* conn, const std::string& predicate) {
  auto tx = StartTransaction();
  RETURN_IF_ERROR(tx->read_status_);
  const Snapshot& snap = tx->read_snapshot();
  RETURN_IF_ERROR(conn->Execute("SET TimeZone='UTC'"));
  tx->ReadWholeTable();
  // The matching rows' addresses; DeleteRows marks them deleted with DVs, or
  // rewrites their files on tables without DVs.
  ScanOptions scan_options;
  scan_options.row_address = true;
  ASSIGN_OR_RETURN(std::string scan, ScanSql(path_, snap, scan_options));
  ASSIGN_OR_RETURN(int64_t deleted, tx->DeleteRows(conn, "SELECT _delta_file, _delta_row FROM (" + scan +
                                                             ") WHERE (" + predicate + ")"));
  if (deleted == 0) return 0;
  tx->SetOperation("DELETE", {{"predicate", internal::JsonStringArray({predicate})}});
  RETURN_IF_ERROR(tx->Commit().status());
  return deleted;
}

Result<int64_t> Table::EvolveSchema(const Schema& desired_in) {
  // Normalise nested type JSON through a round trip.
  ASSIGN_OR_RETURN(Schema desired, Schema::FromJson(desired_in.ToJson()));
  auto tx = StartTransaction();
  RETURN_IF_ERROR(tx->read_status_);
  const Snapshot& snap = tx->read_snapshot();
  const Schema& current = snap.schema();
  for (const Field& f : current.fields) {
    const Field* d = desired.Find(f.name);
    if (d == nullptr) {
      return Status::InvalidArgument("schema change drops column " + f.name +
                                     ": dropping columns needs column mapping, which clicklake does not support");
    }
    if (d->type != f.type) {
      return Status::InvalidArgument("schema change alters column " + f.name + " from " + f.type + " to " + d->type +
                                     ": type changes need table features clicklake does not support; add a new column instead");
    }
  }
  std::vector<Field> added;
  for (const Field& d : desired.fields) {
    if (current.Find(d.name) != nullptr) continue;
    if (!d.nullable) {
      return Status::InvalidArgument("new column " + d.name + " must be nullable: existing files have no values for it");
    }
    RETURN_IF_ERROR(DuckDbType(d.type).status().WithContext("column " + d.name));
    added.push_back(d);
  }
  if (added.empty()) return snap.version;
  Metadata md = snap.metadata;
  for (const auto& f : added) md.schema.fields.push_back(f);
  md.schema_string = md.schema.ToJson();
  tx->UpdateMetadata(md);
  std::string cols = "[";
  for (size_t i = 0; i < added.size(); i++) {
    cols += (i ? "," : "") + std::string("{\"column\":{\"name\":") + JsonString(added[i].name) +
            ",\"type\":" + JsonString(added[i].type) + ",\"nullable\":true}}";
  }
  cols += "]";
  tx->SetOperation("ADD COLUMNS", {{"columns", cols}});
  return tx->Commit();
}

}  // namespace clicklake::delta

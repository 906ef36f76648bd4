#include "pipeline/compaction.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <vector>

#include "common/clock.h"
#include "engine/engine.h"
#include "pipeline/silver_sessions.h"

namespace clicklake::pipeline {

Result<CompactionResult> CompactSilverEvents(delta::Table* table, engine::Connection* conn, int64_t max_input_bytes) {
  CompactionResult result;
  auto txn = table->StartTransaction();
  const delta::Snapshot& snap = txn->read_snapshot();
  if (snap.version < 0) return result;
  // Candidates per slice (event_date, bucket).
  struct Slice {
    std::vector<delta::AddFile> files;
    bool has_deletes = false;
    int64_t bytes = 0;
    int64_t live_rows = 0;
    int64_t largest = 0;  // live rows of its largest file

    bool Due() const {
      if (has_deletes) return true;
      if (files.size() < 2) return false;
      return files.size() >= kSilverMaxSmallFiles ||
             static_cast<double>(live_rows - largest) >= kSilverFoldRatio * static_cast<double>(largest);
    }
  };
  std::map<std::pair<std::string, int64_t>, Slice> slices;
  simdjson::dom::parser parser;
  for (const auto& f : snap.files) {
    SilverFileRange range;
    if (!ReadSilverFileRange(&parser, f, &range)) continue;
    const int64_t n = range.rows;
    // Stats maxima are truncated to milliseconds: the slice must hold both ends.
    const int64_t bucket = SilverBucketOf(range.min_ts_us);
    if (SilverBucketOf(range.max_ts_us) != bucket || SilverBucketOf(range.max_ts_us + 999) != bucket) continue;
    const int64_t deleted = f.deletion_vector ? f.deletion_vector->cardinality : 0;
    const bool many_deleted = n > 0 && deleted > kSilverMaxDeletedFraction * static_cast<double>(n);
    if (n - deleted >= kSilverSmallFileRows && !many_deleted) continue;
    const auto date = f.partition_values.count("event_date") ? f.partition_values.at("event_date") : std::nullopt;
    if (!date) continue;
    Slice& s = slices[{*date, bucket}];
    s.files.push_back(f);
    s.has_deletes = s.has_deletes || many_deleted;
    s.bytes += f.size;
    s.live_rows += n - deleted;
    s.largest = std::max(s.largest, n - deleted);
  }
  std::vector<const Slice*> order;
  for (const auto& [key, s] : slices)
    if (s.Due()) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(),
                   [](const Slice* a, const Slice* b) { return a->files.size() > b->files.size(); });
  std::vector<delta::AddFile> chosen;
  for (const Slice* s : order) {
    if (!chosen.empty() && result.bytes_read + s->bytes > max_input_bytes) break;
    chosen.insert(chosen.end(), s->files.begin(), s->files.end());
    result.bytes_read += s->bytes;
  }
  if (chosen.empty()) return result;

  delta::Snapshot part = snap;
  part.files = chosen;
  ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(table->path(), part));
  RETURN_IF_ERROR(conn->Execute("SET TimeZone = 'UTC'"));
  RETURN_IF_ERROR(conn->Execute(
      "CREATE OR REPLACE TABLE silver_compact AS SELECT o.* REPLACE (CAST(o.event_ts AS TIMESTAMP) AS event_ts, "
      "CAST(o.original_ts AS TIMESTAMP) AS original_ts, CAST(o.sent_at AS TIMESTAMP) AS sent_at, "
      "CAST(o.received_at AS TIMESTAMP) AS received_at) FROM (" + scan + ") o"));
  ASSIGN_OR_RETURN(std::vector<SilverMerge::Slice> out_slices, SilverSlicesOf(conn, "silver_compact"));
  txn->SetDataChange(false);
  ASSIGN_OR_RETURN(std::vector<delta::AddFile> added, WriteSilverSlices(txn.get(), conn, "silver_compact", out_slices));
  for (const auto& f : chosen) {
    txn->RemoveFile(f);
    if (f.deletion_vector) result.deleted_rows_purged += f.deletion_vector->cardinality;
  }
  for (const auto& s : out_slices) result.rows += s.rows;
  result.files_removed = static_cast<int64_t>(chosen.size());
  result.files_added = static_cast<int64_t>(added.size());
  txn->SetOperation("OPTIMIZE", {{"predicate", "[]"}, {"auto", "true"}, {"zOrderBy", "[]"}});
  txn->SetOperationMetrics({{"numRemovedFiles", std::to_string(result.files_removed)},
                            {"numAddedFiles", std::to_string(result.files_added)},
                            {"numRemovedBytes", std::to_string(result.bytes_read)},
                            {"numDeletionVectorsRemoved", std::to_string(std::count_if(
                                                              chosen.begin(), chosen.end(),
                                                              [](const delta::AddFile& f) { return f.deletion_vector.has_value(); }))},
                            {"numOutputRows", std::to_string(result.rows)}});
  ASSIGN_OR_RETURN(result.version, txn->Commit());
  RETURN_IF_ERROR(conn->Execute("DROP TABLE IF EXISTS silver_compact"));
  return result;
}

}  // namespace clicklake::pipeline

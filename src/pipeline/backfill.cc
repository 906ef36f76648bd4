#include "pipeline/backfill.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <vector>

#include <simdjson.h>

#include "common/clock.h"
#include "common/file_system.h"
#include "common/raw_event.h"
#include "delta/table.h"
#include "engine/engine.h"
#include "pipeline/bronze.h"
#include "pipeline/dedup.h"
#include "pipeline/gold/gold.h"
#include "pipeline/pipeline.h"
#include "pipeline/silver.h"
#include "pipeline/silver_sessions.h"

namespace clicklake::pipeline {
namespace {

void Report(const BackfillOptions& o, const std::string& line) {
  if (o.progress) o.progress(line);
}

// Removes the scratch directory when the backfill ends, however it ends.
struct ScratchDir {
  std::string path;
  ~ScratchDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

// partition → (start offset → batch id), from system.batches' offsets.
using BatchIndex = std::map<int32_t, std::map<int64_t, int64_t>>;

Result<BatchIndex> LoadBatchIndex(engine::Database* db, engine::Connection* conn, const std::string& lake_dir) {
  BatchIndex index;
  const std::string path = JoinPath(lake_dir, "system/batches");
  auto table = delta::Table::Open(path, db);
  if (!table.ok()) return table.status().IsNotFound() ? Result<BatchIndex>(index) : table.status();
  ASSIGN_OR_RETURN(delta::Snapshot snap, (*table)->LoadSnapshot());
  ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(path, snap));
  ASSIGN_OR_RETURN(auto rows, conn->Query("SELECT batch_id, offsets FROM (" + scan + ")"));
  simdjson::dom::parser parser;
  for (size_t i = 0; i < rows.row_count(); i++) {
    simdjson::dom::object offsets;
    if (parser.parse(rows.GetString(i, 1)).get(offsets)) continue;
    for (auto [key, value] : offsets) {
      int64_t start;
      if (value["start"].get(start)) continue;
      index[std::stoi(std::string(key))][start] = rows.GetInt64(i, 0);
    }
  }
  return index;
}

// The batch that read (partition, offset); batches not recorded sort last.
int64_t BatchOf(const BatchIndex& index, int32_t partition, int64_t offset) {
  auto p = index.find(partition);
  if (p == index.end()) return INT64_MAX;
  auto it = p->second.upper_bound(offset);
  if (it == p->second.begin()) return INT64_MAX;
  return std::prev(it)->second;
}

// Replaces the files of `partition_column` ∈ [from, to] with the rows of
// `query`, as one BACKFILL commit.
Result<int64_t> ReplaceRange(delta::Table* table, engine::Connection* conn, const std::string& partition_column,
                             const BackfillOptions& o, const std::string& query, int64_t rows) {
  auto txn = table->StartTransaction();
  int64_t removed = 0;
  for (const auto& f : txn->read_snapshot().files) {
    auto pv = f.partition_values.find(partition_column);
    if (pv == f.partition_values.end() || !pv->second) continue;
    if (*pv->second >= o.from_date && *pv->second <= o.to_date) {
      txn->RemoveFile(f);
      removed++;
    }
  }
  ASSIGN_OR_RETURN(auto adds, txn->WriteFiles(conn, query));
  txn->SetOperation("BACKFILL", {{"from", o.from_date}, {"to", o.to_date}, {"partitionColumn", partition_column}});
  txn->SetOperationMetrics({{"numRemovedFiles", std::to_string(removed)},
                            {"numAddedFiles", std::to_string(adds.size())},
                            {"numOutputRows", std::to_string(rows)}});
  return txn->Commit();
}

// Steps 2-4 of the Silver backfill: replay Bronze, rebuild Silver, replace the range.
Status BackfillSilver(const BackfillOptions& o, engine::Database* db, engine::Connection* conn,
                      const std::function<std::string()>& elapsed, BackfillResult* out) {
  BackfillResult& result = *out;
  const SilverOptions silver_options = SilverOptions::FromConfig(o.config);
  const std::string bronze_path = JoinPath(o.lake_dir, kBronzeTable);
  auto bronze = delta::Table::Open(bronze_path, db);
  if (!bronze.ok()) return bronze.status();
  ASSIGN_OR_RETURN(delta::Snapshot bronze_snap, (*bronze)->LoadSnapshot());
  ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(bronze_path, bronze_snap));
  ASSIGN_OR_RETURN(BatchIndex index, LoadBatchIndex(db, conn, o.lake_dir));
  ASSIGN_OR_RETURN(auto rows, conn->Query("SELECT epoch_us(received_at), source, protocol, client_ip, user_agent, "
                                          "payload, log_partition, log_offset FROM (" + scan + ")"));
  struct Keyed {
    int64_t batch;
    log::LogRecord record;
  };
  std::vector<Keyed> keyed;
  keyed.reserve(rows.row_count());
  for (size_t i = 0; i < rows.row_count(); i++) {
    Keyed k;
    k.record.partition = static_cast<int32_t>(rows.GetInt64(i, 6));
    k.record.offset = rows.GetInt64(i, 7);
    k.batch = BatchOf(index, k.record.partition, k.record.offset);
    if (k.batch == INT64_MAX)
      return Status::Internal("bronze.events row " + std::to_string(k.record.partition) + "-" +
                              std::to_string(k.record.offset) + " is in no batch of system.batches");
    if (rows.GetString(i, 2) == "unknown") {
      k.record.value = rows.GetString(i, 5);  // not a RawEvent: undecodable again
    } else {
      RawEvent e;
      e.received_at_us = rows.GetInt64(i, 0);
      e.source = rows.GetString(i, 1);
      e.protocol = rows.GetString(i, 2);
      e.client_ip = rows.GetString(i, 3);
      e.user_agent = rows.GetString(i, 4);
      e.payload = rows.GetString(i, 5);
      EncodeRawEvent(e, &k.record.value);
    }
    keyed.push_back(std::move(k));
  }
  rows = engine::QueryResult();
  std::sort(keyed.begin(), keyed.end(), [](const Keyed& a, const Keyed& b) {
    return std::tie(a.batch, a.record.partition, a.record.offset) <
           std::tie(b.batch, b.record.partition, b.record.offset);
  });
  std::vector<log::LogRecord> records;
  records.reserve(keyed.size());
  for (auto& k : keyed) records.push_back(std::move(k.record));
  keyed.clear();
  keyed.shrink_to_fit();
  result.bronze_rows = static_cast<int64_t>(records.size());
  Report(o, "backfill: read " + std::to_string(records.size()) + " bronze rows (" + elapsed() + ")");

  // 3. Silver over the whole history with a scratch dedup store.
  ScratchDir scratch{JoinPath(o.lake_dir, "_clicklake/backfill-" + std::to_string(getpid()))};
  std::filesystem::remove_all(scratch.path);
  ASSIGN_OR_RETURN(auto stage, SilverStage::Open(o.config, scratch.path));
  int64_t undecodable = 0;
  RETURN_IF_ERROR(LoadBronzeBatch(conn, records, &undecodable));
  const std::string silver_path = JoinPath(o.lake_dir, kSilverEventsTable);
  ASSIGN_OR_RETURN(auto silver, delta::Table::OpenOrCreate(silver_path, SilverEventsSchema(), {"event_date"}, {},
                                                           db));
  ASSIGN_OR_RETURN(delta::Snapshot silver_snap, silver->LoadSnapshot());
  delta::Schema silver_schema = silver_snap.schema();
  ASSIGN_OR_RETURN(SilverBatchStats stats, stage->BuildBatch(conn, records, 0, &silver_schema));
  records.clear();
  records.shrink_to_fit();
  ASSIGN_OR_RETURN(SilverMerge merge, MergeIdentityAndSessions(conn, silver_path, delta::Snapshot{},
                                                               silver_options.session_timeout_us));
  (void)merge;
  Report(o, "backfill: rebuilt Silver: " + std::to_string(stats.silver_rows) + " events, " +
                std::to_string(stats.quarantined) + " quarantined, " + std::to_string(stats.duplicates) +
                " duplicates (" + elapsed() + ")");

  // 4. One commit per table replacing the range.
  if (!stats.new_prop_columns.empty()) {
    delta::Schema desired = silver_schema;
    for (const auto& f : stats.new_prop_columns)
      if (!desired.Find(f.name)) desired.fields.push_back(f);
    ASSIGN_OR_RETURN(int64_t evolved, silver->EvolveSchema(desired));
    (void)evolved;
  }
  const std::string range = " BETWEEN DATE '" + o.from_date + "' AND DATE '" + o.to_date + "'";
  ASSIGN_OR_RETURN(auto n, conn->Query("SELECT count(*) FROM silver_out WHERE event_date" + range));
  result.silver_rows = n.GetInt64(0, 0);
  ASSIGN_OR_RETURN(result.silver_version,
                   ReplaceRange(silver.get(), conn, "event_date", o,
                                "SELECT * FROM silver_out WHERE event_date" + range, result.silver_rows));
  Report(o, "backfill: silver.events version " + std::to_string(result.silver_version) + ": " +
                std::to_string(result.silver_rows) + " rows for " + o.from_date + ".." + o.to_date + " (" +
                elapsed() + ")");

  ASSIGN_OR_RETURN(auto quarantine, delta::Table::OpenOrCreate(JoinPath(o.lake_dir, kQuarantineTable),
                                                               QuarantineSchema(), {"received_date"}, {}, db));
  ASSIGN_OR_RETURN(auto q, conn->Query("SELECT count(*) FROM quarantine_batch WHERE received_date" + range));
  result.quarantine_rows = q.GetInt64(0, 0);
  ASSIGN_OR_RETURN(result.quarantine_version,
                   ReplaceRange(quarantine.get(), conn, "received_date", o,
                                "SELECT * FROM quarantine_batch WHERE received_date" + range, result.quarantine_rows));
  Report(o, "backfill: silver.quarantine version " + std::to_string(result.quarantine_version) + ": " +
                std::to_string(result.quarantine_rows) + " rows (" + elapsed() + ")");
  return Status::OK();
}

}  // namespace

Result<BackfillResult> RunBackfill(const BackfillOptions& o) {
  static const std::regex kDate(R"(\d{4}-\d{2}-\d{2})");
  if (!std::regex_match(o.from_date, kDate) || !std::regex_match(o.to_date, kDate))
    return Status::InvalidArgument("--from/--to expect dates like 2026-05-01, got '" + o.from_date + "' and '" +
                                   o.to_date + "'");
  if (o.from_date > o.to_date)
    return Status::InvalidArgument("--from " + o.from_date + " is after --to " + o.to_date);
  if (!o.silver && !o.gold) return Status::InvalidArgument("--layers: name silver, gold or both");
  const int64_t t0 = SystemClock()->MonotonicMicros();
  auto elapsed = [&] { return std::to_string((SystemClock()->MonotonicMicros() - t0) / 1000) + " ms"; };

  // 1. The processor's state lock, held until the end.
  const SilverOptions silver_options = SilverOptions::FromConfig(o.config);
  auto lock = DedupStore::Open(JoinPath(o.lake_dir, "_clicklake/state/dedup"), silver_options.dedup_window_us);
  if (!lock.ok())
    return Status::Unavailable("the processor's state in " + o.lake_dir +
                                      " is locked; stop `clicklake process`/`up` on this lake first (" +
                                      lock.status().message() + ")");

  // 2. Bronze, in the order the processor read it. Every batch must be in all
  //    four tables: a half-committed batch is the processor's to finish (its
  //    dedup state already holds it).
  ASSIGN_OR_RETURN(auto db, engine::Database::Open());
  ASSIGN_OR_RETURN(auto conn, db->Connect());
  {
    const std::string app_id = PipelineOptions::FromConfig(o.config).app_id;
    std::map<std::string, int64_t> last;
    for (const char* table : {kBronzeTable, kSilverEventsTable, kQuarantineTable, "system/batches"}) {
      auto t = delta::Table::Open(JoinPath(o.lake_dir, table), db.get());
      last[table] = -1;
      if (!t.ok()) {
        if (t.status().IsNotFound()) continue;
        return t.status();
      }
      ASSIGN_OR_RETURN(delta::Snapshot snap, (*t)->LoadSnapshot());
      auto it = snap.app_txn_versions.find(app_id);
      if (it != snap.app_txn_versions.end()) last[table] = it->second;
    }
    for (const auto& [table, batch] : last) {
      if (batch != last[kBronzeTable])
        return Status::Unavailable("batch " + std::to_string(last[kBronzeTable]) + " is not committed to " + table +
                                   " yet; run `clicklake process --once` on " + o.lake_dir + " first");
    }
  }
  BackfillResult result;
  if (o.silver) RETURN_IF_ERROR(BackfillSilver(o, db.get(), conn.get(), elapsed, &result));
  if (o.gold) {
    ASSIGN_OR_RETURN(auto stage, gold::GoldStage::Open(o.config, o.lake_dir, db.get()));
    ASSIGN_OR_RETURN(gold::GoldRefreshResult caught_up, stage->Refresh("", -1));
    if (!caught_up.noop) {
      Report(o, "backfill: Gold brought to silver.events version " + std::to_string(caught_up.silver_version) +
                    " (" + elapsed() + ")");
    }
    ASSIGN_OR_RETURN(gold::GoldRefreshResult rebuilt, stage->Rebuild(std::make_pair(o.from_date, o.to_date)));
    result.gold_silver_version = rebuilt.silver_version;
    for (const auto& [table, t] : rebuilt.tables) {
      result.gold_rows += t.rows_written;
      std::string name = table;
      std::replace(name.begin(), name.end(), '/', '.');
      Report(o, "backfill: " + name + " version " + std::to_string(t.version) + ": " +
                    std::to_string(t.rows_written) + " rows" +
                    (t.replaced_all ? "" : " in " + std::to_string(t.dates.size()) + " partitions"));
    }
    Report(o, "backfill: Gold rebuilt for " + o.from_date + ".." + o.to_date + " (" + elapsed() + ")");
  }
  return result;
}

}  // namespace clicklake::pipeline

// A sync run: model → diff against the snapshot → batches to the destination →
// journal → one snapshot commit and a system.syncs row. See activate.h.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "activate/activate.h"
#include "activate/destinations.h"
#include "common/json_string.h"
#include "common/metrics.h"
#include "delta/table.h"
#include "engine/engine.h"
#include "pipeline/gold/gold.h"

namespace clicklake::activate {
namespace {

constexpr const char* kAppId = "clicklake-activate";
constexpr int64_t kPageRows = 50'000;  // diff rows fetched from the engine at a time

delta::Schema SnapshotSchema() {
  delta::Schema s;
  s.fields = {
      {"sync_key", "string", false}, {"user_key", "string", true},   {"fields", "string", true},
      {"row_hash", "string", true},  {"delivered", "boolean", false}, {"pending_op", "string", true},
      {"error", "string", true},     {"attempts", "long", false},     {"forgotten", "boolean", false},
      {"updated_at", "timestamp", false}, {"run_id", "long", false},
  };
  return s;
}

delta::Schema SyncsSchema() {
  delta::Schema s;
  s.fields = {
      {"sync", "string", false},       {"run_id", "long", false},        {"trigger", "string", true},
      {"mode", "string", true},        {"destination", "string", true},  {"status", "string", false},
      {"started_at", "timestamp", true}, {"finished_at", "timestamp", false}, {"duration_ms", "double", true},
      {"model_rows", "long", true},    {"skipped_rows", "long", true},   {"unchanged", "long", true},
      {"added", "long", false},        {"changed", "long", false},       {"removed", "long", false},
      {"failed", "long", false},       {"requests", "long", true},       {"retries", "long", true},
      {"resumed", "boolean", false},   {"error_summary", "string", true},
  };
  return s;
}

std::map<std::string, std::string> TableProperties(const Config& config) {
  return {{"delta.enableDeletionVectors", config.GetBool("lake.deletion_vectors", true) ? "true" : "false"}};
}

std::string Q(const std::string& s) { return engine::QuoteLiteral(s); }
std::string I(const std::string& s) { return engine::QuoteIdentifier(s); }

std::string JournalPath(const std::string& lake, const std::string& sync) {
  return JoinPath(lake, "_clicklake/activate/" + sync + ".journal");
}

// The SQL producing a model row's fields JSON for the destination.
std::string FieldsExpr(const SyncConfig& sync, const std::vector<std::pair<std::string, std::string>>& mapping) {
  const DestinationConfig& d = sync.destination;
  std::string args;
  for (const auto& [field, column] : mapping) {
    std::string v = I(column);
    if (d.IsAdPlatform()) {
      const std::string text = "trim(CAST(" + v + " AS VARCHAR))";
      if (field == "email") {
        // trimmed, lower-cased, SHA-256 hex; not an address → NULL
        v = "CASE WHEN lower(" + text + ") LIKE '_%@_%' THEN sha256(lower(" + text + ")) END";
      } else {
        // E.164: "+" and digits kept, "00" prefix = "+", else the default country code;
        // 7-15 digits. Google hashes "+<digits>", Meta the digits alone.
        const std::string digits = "regexp_replace(" + text + ", '[^0-9]', '', 'g')";
        const std::string e164 = "(CASE WHEN " + text + " LIKE '+%' THEN " + digits + " WHEN " + digits +
                                 " LIKE '00%' THEN substr(" + digits + ", 3) ELSE " + Q(d.default_country_code) +
                                 " || ltrim(" + digits + ", '0') END)";
        v = "CASE WHEN length(" + e164 + ") BETWEEN 8 AND 15 THEN sha256(" +
            (d.type == "google_ads" ? "'+' || " : "") + e164 + ") END";
      }
    } else if (d.type == "hubspot") {
      v = "coalesce(CAST(" + v + " AS VARCHAR), '')";  // HubSpot property values are strings; "" clears
    }
    args += (args.empty() ? "" : ", ") + Q(field) + ", " + v;
  }
  return args.empty() ? "'{}'" : "json_object(" + args + ")::VARCHAR";
}

void AppendJournalRow(std::string* out, int64_t n, const OutRecord& r, bool ok, const std::string& row_hash,
                      bool delivered, bool forgotten, int64_t attempts, const std::string& error) {
  *out += "{\"t\":\"row\",\"n\":" + std::to_string(n) + ",\"k\":" + JsonString(r.key) +
          ",\"u\":" + (r.user_key.empty() ? std::string("null") : JsonString(r.user_key)) + ",\"op\":" +
          JsonString(r.op) + ",\"ok\":" + (ok ? "true" : "false") + ",\"f\":" + JsonString(r.fields) +
          ",\"h\":" + JsonString(row_hash) + ",\"d\":" + (delivered ? "true" : "false") +
          ",\"x\":" + (forgotten ? "true" : "false") + ",\"a\":" + std::to_string(attempts) +
          ",\"e\":" + (ok ? std::string("null") : JsonString(error)) +
          (r.old_fields.empty() ? std::string() : ",\"of\":" + JsonString(r.old_fields)) + "}\n";
}

class SyncRun {
 public:
  SyncRun(const Config& config, const SyncConfig& sync, FileSystem* fs, Clock* clock)
      : config_(config), sync_(sync), lake_(config.lake_dir()), fs_(fs), clock_(clock) {}

  // dry_run: an absent snapshot is not created (the diff reads it as empty).
  Status Open(bool dry_run = false) {
    engine::DatabaseOptions o;
    o.threads = static_cast<int>(config_.GetInt("activate.threads", 0));
    o.temp_directory = JoinPath(lake_, "_clicklake/tmp");
    ASSIGN_OR_RETURN(db_, engine::Database::Open(o));
    ASSIGN_OR_RETURN(conn_, db_->Connect());
    RETURN_IF_ERROR(conn_->Execute("SET TimeZone = 'UTC'"));
    const std::string path = JoinPath(lake_, SnapshotTablePath(sync_.name));
    if (dry_run && !fs_->Exists(JoinPath(path, "_delta_log"))) return Status::OK();
    ASSIGN_OR_RETURN(snapshot_, delta::Table::OpenOrCreate(JoinPath(lake_, SnapshotTablePath(sync_.name)),
                                                           SnapshotSchema(), {}, TableProperties(config_), db_.get(),
                                                           fs_, clock_));
    return Status::OK();
  }

  Result<SyncRunResult> Run(const SyncRunOptions& options) {
    SyncRunResult result;
    result.sync = sync_.name;
    const int64_t t0 = clock_->MonotonicMicros();
    started_us_ = clock_->NowMicros();
    trigger_ = options.trigger;
    RETURN_IF_ERROR(Open(options.dry_run));
    if (!options.dry_run) {
      // An interrupted run first: what it confirmed is not sent again.
      ASSIGN_OR_RETURN(result.resumed, FoldJournalIfAny());
    }
    delta::Snapshot snap;
    if (snapshot_) {
      ASSIGN_OR_RETURN(snap, snapshot_->LoadSnapshot());
      auto it = snap.app_txn_versions.find(kAppId);
      result.run_id = it == snap.app_txn_versions.end() ? 0 : it->second + 1;
    }
    Status diffed = Diff(snap, &result);
    result.diff_us = clock_->MonotonicMicros() - t0;
    if (!diffed.ok()) {
      result.status = "failed";
      result.error_summary = diffed.message();
      if (!options.dry_run) RETURN_IF_ERROR(RecordFailedRun(result));
      Count(result);
      return diffed;
    }
    if (options.dry_run) {
      result.status = "dry_run";
      ASSIGN_OR_RETURN(auto sample, conn_->Query("SELECT op, sync_key, fields FROM d WHERE op <> 'drop' ORDER BY rn LIMIT " +
                                                 std::to_string(options.sample_rows)));
      for (size_t r = 0; r < sample.row_count(); r++) {
        result.sample.push_back(sample.GetString(r, 0) + " " + sample.GetString(r, 1) +
                                (sample.GetString(r, 0) == "remove" ? "" : " " + sample.GetString(r, 2)));
      }
      result.duration_us = clock_->MonotonicMicros() - t0;
      return result;
    }
    const int64_t ts = clock_->MonotonicMicros();
    RETURN_IF_ERROR(Send(&result));
    result.send_us = clock_->MonotonicMicros() - ts;
    // Fold what this run's journal holds (and the rows it drops) into the snapshot.
    ASSIGN_OR_RETURN(int64_t folded, FoldJournal(/*with_drops=*/true, &result));
    (void)folded;
    result.duration_us = clock_->MonotonicMicros() - t0;
    Count(result);
    spdlog::info("activate: sync {} run {}: {} (+{} ~{} -{} confirmed, {} failed, {} unchanged; {} requests, {} "
                 "retries; diff {:.0f} ms, send {:.0f} ms){}",
                 sync_.name, result.run_id, result.status, result.added, result.changed, result.removed,
                 result.failed, result.unchanged, result.requests, result.retries, result.diff_us / 1000.0,
                 result.send_us / 1000.0, result.error_summary.empty() ? "" : "; errors: " + result.error_summary);
    return result;
  }

  // Folds an interrupted run's journal, if one is left. Returns its rows.
  Result<int64_t> FoldJournalIfAny() {
    if (!fs_->Exists(JournalPath(lake_, sync_.name))) return 0;
    SyncRunResult interrupted;
    interrupted.sync = sync_.name;
    ASSIGN_OR_RETURN(int64_t rows, FoldJournal(/*with_drops=*/false, &interrupted));
    if (rows > 0) {
      spdlog::warn("activate: sync {}: folded run {} that was interrupted ({} rows it had confirmed or refused)",
                   sync_.name, interrupted.run_id, rows);
    }
    return rows;
  }

  delta::Table* snapshot() { return snapshot_.get(); }
  engine::Connection* conn() { return conn_.get(); }

 private:
  // The model's rows (table m), the snapshot (snap) and the diff (d).
  Status Diff(const delta::Snapshot& snap, SyncRunResult* result) {
    RETURN_IF_ERROR(delta::RegisterLakeViews(conn_.get(), lake_, std::nullopt, fs_));
    // restricted.*: invisible unless the sync is granted raw fields, then only those.
    RETURN_IF_ERROR(conn_->Execute("DROP SCHEMA IF EXISTS restricted CASCADE"));
    const std::string pii_path = JoinPath(lake_, "restricted/pii");
    if (!sync_.raw_fields.empty() && fs_->Exists(JoinPath(pii_path, "_delta_log"))) {
      ASSIGN_OR_RETURN(delta::Snapshot pii, delta::LoadSnapshotAt(pii_path, conn_.get(), std::nullopt, fs_));
      ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(pii_path, pii));
      std::string granted;
      for (const auto& f : sync_.raw_fields) granted += (granted.empty() ? "" : ", ") + Q(f);
      RETURN_IF_ERROR(conn_->Execute("CREATE SCHEMA restricted; CREATE VIEW restricted.pii AS SELECT * FROM (" + scan +
                                     ") WHERE field IN (" + granted + ")"));
      spdlog::info("activate: sync {} reads raw fields {} of restricted.pii", sync_.name, granted);
    }
    const std::string model = engine::QualifySchemaReferences(sync_.model, "system", "memory");
    auto cols = conn_->Query("SELECT * FROM (" + model + ") LIMIT 0");
    if (!cols.ok()) return Status::InvalidArgument("sync " + sync_.name + ": the model failed: " + cols.status().message());
    std::set<std::string> columns;
    for (size_t c = 0; c < cols->column_count(); c++) columns.insert(cols->column_name(c));
    if (!columns.count(sync_.primary_key)) {
      return Status::InvalidArgument("sync " + sync_.name + ": the model has no primary key column '" +
                                     sync_.primary_key + "'");
    }
    const bool has_user_key = columns.count(sync_.user_key_column) > 0;
    std::vector<std::pair<std::string, std::string>> mapping = sync_.mapping;
    if (mapping.empty()) {
      for (size_t c = 0; c < cols->column_count(); c++) {
        const std::string& n = cols->column_name(c);
        if (n != sync_.primary_key && n != sync_.user_key_column) mapping.emplace_back(n, n);
      }
    }
    for (const auto& [field, column] : mapping) {
      if (!columns.count(column))
        return Status::InvalidArgument("sync " + sync_.name + ": mapping." + field + " names column '" + column +
                                       "', which the model does not return");
    }
    // The model runs once, into m; rows without a key (or, for ad platforms,
    // without any identifier) are counted, then left out.
    Status s = conn_->Execute(
        "CREATE OR REPLACE TEMP TABLE m AS SELECT sync_key, user_key, fields, md5(fields) AS row_hash FROM "
        "(SELECT CAST(" + I(sync_.primary_key) + " AS VARCHAR) AS sync_key, " +
        (has_user_key ? "CAST(" + I(sync_.user_key_column) + " AS VARCHAR)" : std::string("NULL::VARCHAR")) +
        " AS user_key, " + FieldsExpr(sync_, mapping) + " AS fields FROM (" + model + ") model_out)");
    if (!s.ok()) return Status::InvalidArgument("sync " + sync_.name + ": the model failed: " + s.message());
    ASSIGN_OR_RETURN(auto total, conn_->Query("SELECT count(*) FROM m"));
    result->model_rows = total.GetInt64(0, 0);
    RETURN_IF_ERROR(conn_->Execute(
        "DELETE FROM m WHERE sync_key IS NULL" +
        std::string(sync_.destination.IsAdPlatform() ? " OR (json_extract_string(fields, '$.email') IS NULL AND "
                                                      "json_extract_string(fields, '$.phone') IS NULL)"
                                                    : "")));
    // Distinct 64-bit hashes of the keys are cheaper to count than the keys;
    // fewer hashes than rows (a duplicate key, or rarely a collision) is checked exactly.
    ASSIGN_OR_RETURN(auto counts, conn_->Query("SELECT count(*), count(DISTINCT hash(sync_key)) FROM m"));
    result->skipped_rows = result->model_rows - counts.GetInt64(0, 0);
    if (counts.GetInt64(0, 0) != counts.GetInt64(0, 1)) {
      ASSIGN_OR_RETURN(auto dup, conn_->Query("SELECT count(*) - count(DISTINCT sync_key), (SELECT min(sync_key) FROM "
                                              "(SELECT sync_key FROM m GROUP BY 1 HAVING count(*) > 1)) FROM m"));
      if (dup.GetInt64(0, 0) > 0) {
        return Status::InvalidArgument("sync " + sync_.name + ": primary key '" + sync_.primary_key +
                                       "' is not unique in the model: " + std::to_string(dup.GetInt64(0, 0)) +
                                       " duplicate rows (e.g. key '" + dup.GetString(0, 1) + "')");
      }
    }
    if (snapshot_) {
      // A view: the join reads only the columns it needs.
      ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(snapshot_->path(), snap));
      RETURN_IF_ERROR(conn_->Execute("CREATE OR REPLACE TEMP VIEW snap AS " + scan));
    } else {
      RETURN_IF_ERROR(conn_->Execute("CREATE OR REPLACE TEMP TABLE snap (sync_key VARCHAR, user_key VARCHAR, fields "
                                     "VARCHAR, row_hash VARCHAR, delivered BOOLEAN, pending_op VARCHAR, error VARCHAR, "
                                     "attempts BIGINT, forgotten BOOLEAN)"));
    }
    const bool deletes = sync_.mode == SyncMode::kMirror || sync_.mode == SyncMode::kAudience;
    const std::string from_snap = "(m.sync_key IS NULL OR coalesce(s.forgotten, false))";
    const std::string op =
        "CASE WHEN s.forgotten THEN (CASE WHEN s.delivered THEN 'remove' WHEN m.sync_key IS NULL THEN 'drop' END) "
        "WHEN m.sync_key IS NULL THEN (CASE WHEN " + std::string(deletes ? "true" : "false") +
        " AND s.delivered THEN 'remove' ELSE 'drop' END) "
        "WHEN s.sync_key IS NULL THEN 'add' "
        "WHEN s.pending_op IS NULL AND s.row_hash = m.row_hash THEN NULL "
        "WHEN s.delivered THEN 'change' ELSE 'add' END";
    const std::string row =
        "CASE WHEN " + from_snap + " THEN s.user_key ELSE m.user_key END AS user_key, "
        "CASE WHEN " + from_snap + " THEN s.fields ELSE m.fields END AS fields, "
        "CASE WHEN " + from_snap + " THEN s.row_hash ELSE m.row_hash END AS row_hash, "
        "coalesce(s.delivered, false) AS delivered, coalesce(s.forgotten, false) AS forgotten, "
        "coalesce(s.attempts, 0) AS attempts, "
        // What the destination holds of a changed member (ad platforms remove the identifiers it lost).
        "CASE WHEN NOT " + from_snap + " AND s.delivered THEN s.fields END AS old_fields";
    const std::string numbered = "CREATE OR REPLACE TEMP TABLE d AS SELECT row_number() OVER (ORDER BY op, sync_key) "
                                 "AS rn, * FROM ";
    // The keys' ops from the keys and hashes alone (the join of every row
    // carries no fields); then, when few rows have one, their fields in a
    // second pass; when many do (a first run), in one join as wide as the rows.
    RETURN_IF_ERROR(conn_->Execute(
        "CREATE OR REPLACE TEMP TABLE d_ops AS SELECT * FROM (SELECT coalesce(m.sync_key, s.sync_key) AS sync_key, " +
        op + " AS op FROM (SELECT sync_key, row_hash FROM m) m FULL OUTER JOIN (SELECT sync_key, row_hash, delivered, "
        "pending_op, forgotten FROM snap) s ON m.sync_key = s.sync_key) WHERE op IS NOT NULL"));
    ASSIGN_OR_RETURN(auto with_op, conn_->Query("SELECT count(*) FROM d_ops"));
    if (with_op.GetInt64(0, 0) * 4 <= counts.GetInt64(0, 0)) {
      RETURN_IF_ERROR(conn_->Execute(
          numbered + "(SELECT o.sync_key, o.op, " + row +
          " FROM d_ops o LEFT JOIN (SELECT * FROM m WHERE sync_key IN (SELECT sync_key FROM d_ops)) m ON m.sync_key = "
          "o.sync_key LEFT JOIN (SELECT * FROM snap WHERE sync_key IN (SELECT sync_key FROM d_ops)) s ON s.sync_key = "
          "o.sync_key)"));
    } else {
      RETURN_IF_ERROR(conn_->Execute(numbered + "(SELECT coalesce(m.sync_key, s.sync_key) AS sync_key, " + op +
                                     " AS op, " + row + " FROM m FULL OUTER JOIN snap s ON m.sync_key = s.sync_key) "
                                     "WHERE op IS NOT NULL"));
    }
    ASSIGN_OR_RETURN(auto ops, conn_->Query("SELECT count(*) FILTER (WHERE op = 'add'), count(*) FILTER (WHERE op = "
                                            "'change'), count(*) FILTER (WHERE op = 'remove') FROM d"));
    result->added = ops.GetInt64(0, 0);
    result->changed = ops.GetInt64(0, 1);
    result->removed = ops.GetInt64(0, 2);
    result->unchanged = counts.GetInt64(0, 0) - result->added - result->changed;
    // A forgotten key still in the model is neither unchanged nor added.
    ASSIGN_OR_RETURN(auto forgotten, conn_->Query("SELECT count(*) FROM snap WHERE forgotten AND sync_key IN (SELECT "
                                                  "sync_key FROM m)"));
    result->unchanged -= forgotten.GetInt64(0, 0);
    return Status::OK();
  }

  // Sends the diff's rows in batches of one op; each batch's outcomes are
  // journaled (and synced) before the next batch goes.
  Status Send(SyncRunResult* result) {
    // destination.concurrency workers, each with its own connection, share the
    // destination's token bucket; the journal is appended under a mutex.
    const int workers = std::max(1, sync_.destination.concurrency);
    std::vector<SendStats> stats(static_cast<size_t>(workers));
    std::vector<std::unique_ptr<Destination>> destinations;
    for (int w = 0; w < workers; w++) {
      ASSIGN_OR_RETURN(auto d, MakeDestination(sync_, clock_, &stats[static_cast<size_t>(w)]));
      destinations.push_back(std::move(d));
    }
    const std::string path = JournalPath(lake_, sync_.name);
    RETURN_IF_ERROR(fs_->CreateDirs(JoinPath(lake_, "_clicklake/activate")));
    ASSIGN_OR_RETURN(auto journal, fs_->NewWritableFile(path));
    std::string begin = "{\"t\":\"begin\",\"run_id\":" + std::to_string(result->run_id) +
                        ",\"started_us\":" + std::to_string(started_us_) + ",\"trigger\":" + JsonString(trigger_) +
                        ",\"model_rows\":" + std::to_string(result->model_rows) +
                        ",\"skipped\":" + std::to_string(result->skipped_rows) +
                        ",\"unchanged\":" + std::to_string(result->unchanged) + "}\n";
    RETURN_IF_ERROR(journal->Append(begin));
    RETURN_IF_ERROR(journal->Sync());
    RETURN_IF_ERROR(fs_->SyncDir(JoinPath(lake_, "_clicklake/activate")));

    struct Pending {
      OutRecord record;
      std::string row_hash;
      bool delivered, forgotten;
      int64_t attempts;
    };
    using Batch = std::vector<Pending>;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Batch> queue;    // GUARDED_BY(mu)
    bool done = false;          // GUARDED_BY(mu): no more batches
    Status failure;             // GUARDED_BY(mu): the first journal error
    int64_t line = 0;           // GUARDED_BY(mu)
    int64_t synced_us = clock_->MonotonicMicros();  // GUARDED_BY(mu)
    auto work = [&](Destination* destination) {
      while (true) {
        Batch batch;
        {
          std::unique_lock l(mu);
          cv.wait(l, [&] { return !queue.empty() || done || !failure.ok(); });
          if (queue.empty() || !failure.ok()) return;
          batch = std::move(queue.front());
          queue.pop_front();
          cv.notify_all();
        }
        std::vector<OutRecord> records;
        for (const auto& p : batch) records.push_back(p.record);
        std::vector<RecordOutcome> outcomes;
        Status s = destination->Send(records, &outcomes);
        if (!s.ok() || outcomes.size() != records.size()) {
          outcomes.assign(records.size(), RecordOutcome{false, s.ok() ? "no outcome per record" : s.message()});
        }
        std::lock_guard l(mu);
        std::string lines;
        for (size_t i = 0; i < batch.size(); i++) {
          const Pending& p = batch[i];
          AppendJournalRow(&lines, line++, p.record, outcomes[i].ok, p.row_hash, p.delivered, p.forgotten,
                           outcomes[i].ok ? 0 : p.attempts + 1, outcomes[i].error);
        }
        // Written as soon as the destination answers, so a killed process loses
        // nothing it confirmed; fsynced at most once a second (a machine crash
        // may resend up to a second of confirmed batches, with the same
        // idempotency keys).
        Status w = journal->Append(lines);
        if (w.ok() && clock_->MonotonicMicros() - synced_us >= 1'000'000) {
          w = journal->Sync();
          synced_us = clock_->MonotonicMicros();
        }
        if (!w.ok() && failure.ok()) failure = w;
        cv.notify_all();
      }
    };
    std::vector<std::thread> threads;
    for (auto& d : destinations) threads.emplace_back(work, d.get());
    auto enqueue = [&](Batch* batch) {
      if (batch->empty()) return;
      std::unique_lock l(mu);
      cv.wait(l, [&] { return queue.size() < static_cast<size_t>(2 * workers) || !failure.ok(); });
      queue.push_back(std::move(*batch));
      batch->clear();
      cv.notify_all();
    };
    Status paged = [&]() -> Status {
      Batch batch;
      for (int64_t from = 0;; from += kPageRows) {
        ASSIGN_OR_RETURN(auto page, conn_->Query("SELECT sync_key, user_key, op, fields, row_hash, delivered, "
                                                 "forgotten, attempts, old_fields FROM d WHERE op <> 'drop' AND rn > " +
                                                 std::to_string(from) + " AND rn <= " +
                                                 std::to_string(from + kPageRows) + " ORDER BY rn"));
        ASSIGN_OR_RETURN(auto more,
                         conn_->Query("SELECT count(*) FROM d WHERE rn > " + std::to_string(from + kPageRows)));
        for (size_t r = 0; r < page.row_count(); r++) {
          Pending p{{page.GetString(r, 0), page.GetString(r, 1), page.GetString(r, 2), page.GetString(r, 3)},
                    page.GetString(r, 4),
                    page.GetString(r, 5) == "true",
                    page.GetString(r, 6) == "true",
                    page.GetInt64(r, 7)};
          if (p.record.fields.empty()) p.record.fields = "{}";
          if (p.record.op == "change" && sync_.destination.IsAdPlatform()) p.record.old_fields = page.GetString(r, 8);
          if (!batch.empty() && (batch[0].record.op == "remove") != (p.record.op == "remove")) enqueue(&batch);
          batch.push_back(std::move(p));
          if (batch.size() >= destinations[0]->BatchSize(batch[0].record.op)) enqueue(&batch);
        }
        if (more.GetInt64(0, 0) == 0) break;
      }
      enqueue(&batch);
      return Status::OK();
    }();
    {
      std::lock_guard l(mu);
      done = true;
      cv.notify_all();
    }
    for (auto& t : threads) t.join();
    RETURN_IF_ERROR(paged);
    RETURN_IF_ERROR(failure);
    for (const auto& s : stats) {
      result->requests += s.requests;
      result->retries += s.retries;
    }
    RETURN_IF_ERROR(journal->Append("{\"t\":\"end\",\"requests\":" + std::to_string(result->requests) +
                                    ",\"retries\":" + std::to_string(result->retries) + "}\n"));
    RETURN_IF_ERROR(journal->Sync());
    return journal->Close();
  }

  // Folds the journal into the snapshot (one commit, txn = its run id) and
  // appends the run's system.syncs row, then deletes the journal. Each step
  // is skipped when already done, so a crash anywhere here is repaired by
  // the next fold. Returns the journal's rows.
  Result<int64_t> FoldJournal(bool with_drops, SyncRunResult* result) {
    const std::string path = JournalPath(lake_, sync_.name);
    RETURN_IF_ERROR(conn_->Execute(
        "CREATE OR REPLACE TEMP TABLE j AS SELECT * FROM read_json(" + Q(path) +
        ", format = 'newline_delimited', ignore_errors = true, columns = {t: 'VARCHAR', n: 'BIGINT', k: 'VARCHAR', "
        "u: 'VARCHAR', op: 'VARCHAR', ok: 'BOOLEAN', f: 'VARCHAR', h: 'VARCHAR', d: 'BOOLEAN', x: 'BOOLEAN', a: "
        "'BIGINT', e: 'VARCHAR', run_id: 'BIGINT', started_us: 'BIGINT', trigger: 'VARCHAR', model_rows: 'BIGINT', "
        "skipped: 'BIGINT', unchanged: 'BIGINT', requests: 'BIGINT', retries: 'BIGINT', of: 'VARCHAR'})"));
    ASSIGN_OR_RETURN(auto head, conn_->Query(
                                    "SELECT max(run_id), max(started_us), max(trigger), max(model_rows), max(skipped), "
                                    "max(unchanged), max(requests) FILTER (WHERE t = 'end'), max(retries), "
                                    "count(*) FILTER (WHERE t = 'end'), count(*) FILTER (WHERE t = 'row') FROM j"));
    if (head.IsNull(0, 0)) {
      // Killed before the begin line was synced: nothing was sent.
      RETURN_IF_ERROR(fs_->DeleteFile(path));
      return 0;
    }
    const int64_t run_id = head.GetInt64(0, 0);
    const bool ended = head.GetInt64(0, 8) > 0;
    const int64_t rows = head.GetInt64(0, 9);
    result->run_id = run_id;
    result->model_rows = head.GetInt64(0, 3);
    result->skipped_rows = head.GetInt64(0, 4);
    result->unchanged = head.GetInt64(0, 5);
    if (ended) {
      result->requests = head.GetInt64(0, 6);
      result->retries = head.GetInt64(0, 7);
    }
    const int64_t started_us = head.GetInt64(0, 1);
    const std::string trigger = head.GetString(0, 2);
    // The last outcome per key.
    RETURN_IF_ERROR(conn_->Execute("CREATE OR REPLACE TEMP TABLE jr AS SELECT k, arg_max(u, n) AS u, arg_max(op, n) AS "
                                   "op, arg_max(ok, n) AS ok, arg_max(f, n) AS f, arg_max(h, n) AS h, arg_max(d, n) AS "
                                   "d, arg_max(x, n) AS x, arg_max(a, n) AS a, arg_max(e, n) AS e, arg_max(of, n) AS of FROM j WHERE t = "
                                   "'row' AND k IS NOT NULL AND ok IS NOT NULL GROUP BY k"));
    ASSIGN_OR_RETURN(auto counts, conn_->Query(
                                      "SELECT count(*) FILTER (WHERE ok AND op = 'add'), count(*) FILTER (WHERE ok AND "
                                      "op = 'change'), count(*) FILTER (WHERE ok AND op = 'remove'), count(*) FILTER "
                                      "(WHERE NOT ok) FROM jr"));
    result->added = counts.GetInt64(0, 0);
    result->changed = counts.GetInt64(0, 1);
    result->removed = counts.GetInt64(0, 2);
    result->failed = counts.GetInt64(0, 3);
    ASSIGN_OR_RETURN(auto errors, conn_->Query("SELECT string_agg(e || ' (' || n || ')', '; ' ORDER BY n DESC, e) "
                                               "FROM (SELECT e, count(*) AS n FROM jr WHERE NOT ok GROUP BY e "
                                               "ORDER BY n DESC, e LIMIT 5)"));
    result->error_summary = errors.GetString(0, 0);
    const int64_t confirmed = result->added + result->changed + result->removed;
    if (!ended) result->status = "interrupted";
    else if (result->failed == 0) result->status = "success";
    else result->status = confirmed > 0 ? "partial" : "failed";

    // 1. The snapshot.
    for (int attempt = 0;; attempt++) {
      auto txn = snapshot_->StartTransaction();
      const auto& txns = txn->read_snapshot().app_txn_versions;
      auto it = txns.find(kAppId);
      if (it != txns.end() && it->second >= run_id) break;  // folded before a crash
      ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(snapshot_->path(), txn->read_snapshot(),
                                                        delta::ScanOptions{{}, /*row_address=*/true}));
      std::string touched = "SELECT k FROM jr";
      if (with_drops) touched += " UNION ALL SELECT sync_key FROM d WHERE op = 'drop'";
      ASSIGN_OR_RETURN(int64_t deleted, txn->DeleteRows(conn_.get(), "SELECT _delta_file, _delta_row FROM (" + scan +
                                                                         ") WHERE sync_key IN (" + touched + ")"));
      const std::string now = "make_timestamp(" + std::to_string(clock_->NowMicros()) + "::BIGINT)";
      // A confirmed removal leaves no row, except a forgotten user's: it stays a
      // key-only marker (suppressing the key) until the model stops returning it.
      const std::string kept = "NOT (ok AND op = 'remove' AND NOT coalesce(x, false))";
      ASSIGN_OR_RETURN(auto n, conn_->Query("SELECT count(*) FROM jr WHERE " + kept));
      if (n.GetInt64(0, 0) > 0) {
        ASSIGN_OR_RETURN(auto adds, txn->WriteFiles(conn_.get(),
            // A refused change keeps what the destination holds (an ad platform's old
            // identifiers are removed when it is sent again).
            "SELECT k AS sync_key, u AS user_key, CASE WHEN ok AND op = 'remove' THEN '{}' WHEN NOT ok AND op = "
            "'change' AND of IS NOT NULL THEN of ELSE f END AS fields, "
            "CASE WHEN ok AND op = 'remove' THEN NULL ELSE h END AS row_hash, "
            "CASE WHEN ok THEN op <> 'remove' WHEN op = 'add' THEN coalesce(d, false) ELSE true END AS delivered, "
            "CASE WHEN ok THEN NULL ELSE op END AS pending_op, CASE WHEN ok THEN NULL ELSE e END AS error, "
            "CASE WHEN ok THEN 0 ELSE coalesce(a, 1) END::BIGINT AS attempts, "
            "coalesce(x, false) AS forgotten, " + now + " AS updated_at, " +
            std::to_string(run_id) + "::BIGINT AS run_id FROM jr WHERE " + kept + " ORDER BY k"));
        (void)adds;
      }
      txn->SetAppTransaction(kAppId, run_id);
      txn->SetOperation("MERGE", {{"predicate", "sync_key"}, {"source", "activate run " + std::to_string(run_id)}});
      txn->SetOperationMetrics({{"numTargetRowsDeleted", std::to_string(deleted)},
                                {"numOutputRows", std::to_string(n.GetInt64(0, 0))}});
      auto committed = txn->Commit();
      if (committed.ok()) break;
      if (!committed.status().IsConflict() || attempt >= 3) return committed.status();
    }
    // 2. system.syncs.
    const int64_t finished_us = clock_->NowMicros();
    std::ostringstream sql;
    sql << "SELECT " << Q(sync_.name) << " AS sync, " << run_id << "::BIGINT AS run_id, " << Q(trigger)
        << " AS trigger, " << Q(SyncModeName(sync_.mode)) << " AS mode, " << Q(sync_.destination.type)
        << " AS destination, " << Q(result->status) << " AS status, make_timestamp(" << started_us
        << "::BIGINT) AS started_at, make_timestamp(" << finished_us << "::BIGINT) AS finished_at, "
        << (finished_us - started_us) / 1000.0 << "::DOUBLE AS duration_ms, " << result->model_rows
        << "::BIGINT AS model_rows, " << result->skipped_rows << "::BIGINT AS skipped_rows, " << result->unchanged
        << "::BIGINT AS unchanged, " << result->added << "::BIGINT AS added, " << result->changed
        << "::BIGINT AS changed, " << result->removed << "::BIGINT AS removed, " << result->failed
        << "::BIGINT AS failed, " << (ended ? std::to_string(result->requests) : "NULL")
        << "::BIGINT AS requests, " << (ended ? std::to_string(result->retries) : "NULL")
        << "::BIGINT AS retries, " << (with_drops ? "false" : "true") << " AS resumed, "
        << (result->error_summary.empty() ? "NULL" : Q(result->error_summary)) << " AS error_summary";
    RETURN_IF_ERROR(AppendSyncsRow(sql.str(), run_id));
    RETURN_IF_ERROR(fs_->DeleteFile(path));
    return rows;
  }

  // A run that failed before sending anything (bad model, unreadable lake).
  Status RecordFailedRun(const SyncRunResult& r) {
    std::ostringstream sql;
    const int64_t now = clock_->NowMicros();
    sql << "SELECT " << Q(sync_.name) << " AS sync, " << r.run_id << "::BIGINT AS run_id, " << Q(trigger_)
        << " AS trigger, " << Q(SyncModeName(sync_.mode)) << " AS mode, " << Q(sync_.destination.type)
        << " AS destination, 'failed' AS status, make_timestamp(" << started_us_
        << "::BIGINT) AS started_at, make_timestamp(" << now << "::BIGINT) AS finished_at, "
        << (now - started_us_) / 1000.0 << "::DOUBLE AS duration_ms, 0::BIGINT AS added, 0::BIGINT AS changed, "
        << "0::BIGINT AS removed, 0::BIGINT AS failed, false AS resumed, " << Q(r.error_summary) << " AS error_summary";
    return AppendSyncsRow(sql.str(), -1);
  }

  // Appends to system.syncs; with run_id >= 0 under txn(kAppId/<sync>, run_id),
  // skipped when that run is already recorded.
  Status AppendSyncsRow(const std::string& query, int64_t run_id) {
    ASSIGN_OR_RETURN(auto table, delta::Table::OpenOrCreate(JoinPath(lake_, kSyncsTable), SyncsSchema(), {},
                                                            TableProperties(config_), db_.get(), fs_, clock_));
    const std::string app = std::string(kAppId) + "/" + sync_.name;
    for (int attempt = 0;; attempt++) {
      auto txn = table->StartTransaction();
      if (run_id >= 0) {
        const auto& txns = txn->read_snapshot().app_txn_versions;
        auto it = txns.find(app);
        if (it != txns.end() && it->second >= run_id) return Status::OK();
        txn->SetAppTransaction(app, run_id);
      }
      ASSIGN_OR_RETURN(auto adds, txn->WriteFiles(conn_.get(), query));
      (void)adds;
      txn->SetBlindAppend(true);
      txn->SetOperation("WRITE", {{"mode", "Append"}});
      auto v = txn->Commit();
      if (v.ok()) return Status::OK();
      if (!v.status().IsConflict() || attempt >= 3) return v.status();
    }
  }

  void Count(const SyncRunResult& r) {
    auto* m = MetricsRegistry::Global();
    for (const auto& [op, n] : {std::pair<const char*, int64_t>{"add", r.added}, {"change", r.changed},
                                {"remove", r.removed}}) {
      m->GetCounter("clicklake_activate_rows_total", "Rows the destination confirmed, by sync and op.",
                    {{"sync", sync_.name}, {"op", op}})
          ->Increment(n);
    }
    m->GetCounter("clicklake_activate_row_failures_total", "Rows a destination refused or that could not be sent.",
                  {{"sync", sync_.name}})
        ->Increment(r.failed);
    m->GetCounter("clicklake_activate_runs_total", "Sync runs, by outcome.", {{"sync", sync_.name}, {"status", r.status}})
        ->Increment();
    m->GetGauge("clicklake_activate_last_run_seconds", "Duration of the sync's last run.", {{"sync", sync_.name}})
        ->Set(r.duration_us / 1e6);
    if (r.status == "success") {
      m->GetGauge("clicklake_activate_last_success_timestamp_seconds", "When the sync last ran without a failed row.",
                  {{"sync", sync_.name}})
          ->Set(clock_->NowMicros() / 1e6);
    }
  }

  const Config& config_;
  const SyncConfig& sync_;
  const std::string lake_;
  FileSystem* fs_;
  Clock* clock_;
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<engine::Connection> conn_;
  std::unique_ptr<delta::Table> snapshot_;
  int64_t started_us_ = 0;
  std::string trigger_;
};

Result<SyncConfig> FindSync(const Config& config, const std::string& name) {
  ASSIGN_OR_RETURN(auto syncs, SyncsFromConfig(config));
  for (auto& s : syncs)
    if (s.name == name) return s;
  std::string names;
  for (const auto& s : syncs) names += (names.empty() ? "" : ", ") + s.name;
  return Status::NotFound("no sync named '" + name + "' in [[activate.syncs]] (configured: " +
                          (names.empty() ? "none" : names) + ")");
}

}  // namespace

Result<SyncRunResult> RunSync(const Config& config, const std::string& name, const SyncRunOptions& options,
                              FileSystem* fs, Clock* clock) {
  ASSIGN_OR_RETURN(SyncConfig sync, FindSync(config, name));
  SyncRun run(config, sync, fs, clock);
  return run.Run(options);
}

Result<ForgetResult> ForgetUsers(const Config& config, const std::vector<std::string>& user_keys, FileSystem* fs,
                                 Clock* clock) {
  ForgetResult out;
  ASSIGN_OR_RETURN(auto syncs, SyncsFromConfig(config));
  if (user_keys.empty()) return out;
  const std::string lake = config.lake_dir();
  for (const SyncConfig& sync : syncs) {
    if (!fs->Exists(JoinPath(JoinPath(lake, SnapshotTablePath(sync.name)), "_delta_log"))) continue;
    SyncRun run(config, sync, fs, clock);
    RETURN_IF_ERROR(run.Open());
    // An interrupted run's journal may hold their fields: fold it first.
    ASSIGN_OR_RETURN(int64_t folded, run.FoldJournalIfAny());
    (void)folded;
    engine::Connection* conn = run.conn();
    RETURN_IF_ERROR(conn->Execute("CREATE OR REPLACE TEMP TABLE forget_keys (k VARCHAR)"));
    {
      ASSIGN_OR_RETURN(auto app, conn->CreateAppender("", "forget_keys"));
      for (const auto& k : user_keys) {
        RETURN_IF_ERROR(app->AppendString(k));
        RETURN_IF_ERROR(app->EndRow());
      }
      RETURN_IF_ERROR(app->Close());
    }
    const bool tombstones = sync.mode == SyncMode::kMirror || sync.mode == SyncMode::kAudience;
    for (int attempt = 0;; attempt++) {
      auto txn = run.snapshot()->StartTransaction();
      ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(run.snapshot()->path(), txn->read_snapshot(),
                                                        delta::ScanOptions{{}, /*row_address=*/true}));
      RETURN_IF_ERROR(conn->Execute("CREATE OR REPLACE TEMP TABLE forget_rows AS SELECT * FROM (" + scan +
                                    ") WHERE user_key IN (SELECT k FROM forget_keys) OR sync_key IN (SELECT k FROM "
                                    "forget_keys)"));
      ASSIGN_OR_RETURN(auto counts, conn->Query("SELECT count(*), count(*) FILTER (WHERE delivered) FROM forget_rows"));
      const int64_t matched = counts.GetInt64(0, 0);
      if (matched == 0) break;
      const int64_t stones = tombstones ? counts.GetInt64(0, 1) : 0;
      ASSIGN_OR_RETURN(int64_t deleted, txn->DeleteRows(conn, "SELECT _delta_file, _delta_row FROM forget_rows"));
      // Every matched row becomes a forgotten marker: the key alone (no user_key,
      // no fields), which keeps the model from sending the user again while Gold
      // still returns them. In mirror/audience mode a delivered row's marker is a
      // pending removal carrying only what the delete call needs (for ad
      // platforms, the hashed identifiers).
      const std::string pending = tombstones ? "delivered" : "false";
      const std::string fields = sync.destination.IsAdPlatform() ? "fields" : "'{}'";
      ASSIGN_OR_RETURN(auto adds, txn->WriteFiles(conn,
          "SELECT sync_key, NULL::VARCHAR AS user_key, CASE WHEN " + pending + " THEN " + fields +
          " ELSE '{}' END AS fields, NULL::VARCHAR AS row_hash, " + pending + " AS delivered, CASE WHEN " + pending +
          " THEN 'remove' END AS pending_op, 'forgotten' AS error, 0::BIGINT AS attempts, true AS forgotten, "
          "make_timestamp(" + std::to_string(clock->NowMicros()) + "::BIGINT) AS updated_at, run_id FROM forget_rows"));
      (void)adds;
      txn->SetOperation("DELETE", {{"predicate", "forgotten users"}});
      txn->SetOperationMetrics({{"numDeletedRows", std::to_string(deleted)}, {"numTombstones", std::to_string(stones)}});
      auto committed = txn->Commit();
      if (committed.ok()) {
        out.rows_removed += matched - stones;
        out.tombstones += stones;
        out.by_sync[sync.name] = matched;
        break;
      }
      if (!committed.status().IsConflict() || attempt >= 3) return committed.status();
    }
  }
  return out;
}

Result<std::vector<SyncStatusRow>> SyncStatus(const Config& config, FileSystem* fs) {
  ASSIGN_OR_RETURN(auto syncs, SyncsFromConfig(config));
  const std::string lake = config.lake_dir();
  ASSIGN_OR_RETURN(auto db, engine::Database::Open());
  ASSIGN_OR_RETURN(auto conn, db->Connect());
  RETURN_IF_ERROR(conn->Execute("SET TimeZone = 'UTC'"));
  const bool have_runs = fs->Exists(JoinPath(JoinPath(lake, kSyncsTable), "_delta_log"));
  if (have_runs) RETURN_IF_ERROR(delta::AttachTable(conn.get(), "syncs", JoinPath(lake, kSyncsTable), std::nullopt, fs));
  std::vector<SyncStatusRow> out;
  for (const auto& s : syncs) {
    SyncStatusRow row;
    row.sync = s.name;
    row.mode = SyncModeName(s.mode);
    row.destination = s.destination.type;
    row.trigger = s.trigger;
    const std::string snap_path = JoinPath(lake, SnapshotTablePath(s.name));
    if (fs->Exists(JoinPath(snap_path, "_delta_log"))) {
      RETURN_IF_ERROR(delta::AttachTable(conn.get(), "snap", snap_path, std::nullopt, fs));
      ASSIGN_OR_RETURN(auto c, conn->Query("SELECT count(*), count(*) FILTER (WHERE pending_op IS NOT NULL) FROM snap"));
      row.snapshot_rows = c.GetInt64(0, 0);
      row.pending_rows = c.GetInt64(0, 1);
    }
    if (have_runs) {
      ASSIGN_OR_RETURN(auto r, conn->Query("SELECT run_id, status, strftime(finished_at, '%Y-%m-%d %H:%M:%S'), "
                                           "coalesce(error_summary, ''), added, changed, removed, failed FROM syncs "
                                           "WHERE sync = " + Q(s.name) + " ORDER BY finished_at DESC LIMIT 1"));
      if (r.row_count() > 0) {
        row.last_run_id = r.GetInt64(0, 0, -1);
        row.last_status = r.GetString(0, 1);
        row.last_finished_at = r.GetString(0, 2);
        row.last_error = r.GetString(0, 3);
        row.last_added = r.GetInt64(0, 4);
        row.last_changed = r.GetInt64(0, 5);
        row.last_removed = r.GetInt64(0, 6);
        row.last_failed = r.GetInt64(0, 7);
      }
    }
    out.push_back(std::move(row));
  }
  return out;
}

// ---- SyncScheduler ----

Result<std::unique_ptr<SyncScheduler>> SyncScheduler::Create(const Config& config) {
  ASSIGN_OR_RETURN(auto syncs, SyncsFromConfig(config));
  std::vector<SyncConfig> scheduled;
  for (auto& s : syncs)
    if (s.trigger != "manual") scheduled.push_back(std::move(s));
  if (scheduled.empty()) return std::unique_ptr<SyncScheduler>();
  return std::unique_ptr<SyncScheduler>(new SyncScheduler(config, std::move(scheduled)));
}

SyncScheduler::SyncScheduler(Config config, std::vector<SyncConfig> syncs)
    : config_(std::move(config)), syncs_(std::move(syncs)) {}

SyncScheduler::~SyncScheduler() { Stop(); }

void SyncScheduler::Start() {
  const int64_t now = SystemClock()->MonotonicMicros();
  for (const auto& s : syncs_)
    if (s.interval_us > 0) next_due_us_[s.name] = now + s.interval_us;
  thread_ = std::thread([this] { Loop(); });
}

void SyncScheduler::Stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void SyncScheduler::NotifyGoldRefreshed() {
  std::lock_guard l(mu_);
  gold_pending_ = true;
  cv_.notify_all();
}

namespace {

class GoldTrigger final : public pipeline::BatchObserver {
 public:
  explicit GoldTrigger(SyncScheduler* scheduler) : scheduler_(scheduler) {}
  void OnBatchCommitted(const pipeline::BatchResult& result) override {
    if (result.gold && !result.gold->noop) scheduler_->NotifyGoldRefreshed();
  }

 private:
  SyncScheduler* scheduler_;
};

}  // namespace

std::shared_ptr<pipeline::BatchObserver> SyncScheduler::GoldObserver() { return std::make_shared<GoldTrigger>(this); }

int64_t SyncScheduler::runs_completed() const {
  std::lock_guard l(mu_);
  return runs_completed_;
}

void SyncScheduler::Loop() {
  Clock* clock = SystemClock();
  while (true) {
    std::vector<std::pair<const SyncConfig*, std::string>> due;
    {
      std::unique_lock l(mu_);
      int64_t wake = clock->MonotonicMicros() + 3'600'000'000LL;
      for (const auto& [name, at] : next_due_us_) wake = std::min(wake, at);
      cv_.wait_for(l, std::chrono::microseconds(std::max<int64_t>(0, wake - clock->MonotonicMicros())),
                   [&] { return stop_ || gold_pending_ || clock->MonotonicMicros() >= wake; });
      if (stop_) return;
      const bool gold = gold_pending_;
      gold_pending_ = false;
      const int64_t now = clock->MonotonicMicros();
      for (const auto& s : syncs_) {
        if (s.trigger == "gold" && gold) due.emplace_back(&s, "gold");
        auto it = next_due_us_.find(s.name);
        if (it != next_due_us_.end() && now >= it->second) {
          due.emplace_back(&s, "interval");
          it->second = now + s.interval_us;
        }
      }
    }
    for (const auto& [sync, trigger] : due) {
      SyncRunOptions o;
      o.trigger = trigger;
      auto r = RunSync(config_, sync->name, o);
      if (!r.ok()) spdlog::error("activate: sync {} ({} trigger) failed: {}", sync->name, trigger, r.status().ToString());
      std::lock_guard l(mu_);
      runs_completed_++;
      if (stop_) return;
    }
  }
}

}  // namespace clicklake::activate

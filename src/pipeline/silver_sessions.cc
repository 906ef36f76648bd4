#include "pipeline/silver_sessions.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <map>
#include <set>

#include "common/clock.h"
#include "common/file_system.h"
#include "engine/engine.h"

namespace clicklake::pipeline {
namespace {

const char* kActivity = "('track', 'page', 'screen')";

// The columns the merge needs of an existing row, and the data file holding it.
const char* kProjection =
    "event_id, log_partition, log_offset, event_type, CAST(event_ts AS TIMESTAMP) AS event_ts, user_id, "
    "anonymous_id, user_key, session_id, session_event_index, COALESCE(is_late, false) AS is_late, filename";

// SELECT <kProjection> over `files` (none: an empty result of the same shape).
std::string ProjectionScan(const std::string& table_path, const std::vector<delta::AddFile>& files) {
  if (files.empty()) {
    return "SELECT NULL::VARCHAR AS event_id, NULL::INTEGER AS log_partition, NULL::BIGINT AS log_offset, "
           "NULL::VARCHAR AS event_type, NULL::TIMESTAMP AS event_ts, NULL::VARCHAR AS user_id, "
           "NULL::VARCHAR AS anonymous_id, NULL::VARCHAR AS user_key, NULL::VARCHAR AS session_id, "
           "NULL::BIGINT AS session_event_index, false AS is_late, NULL::VARCHAR AS filename WHERE false";
  }
  std::string list = "[";
  for (size_t i = 0; i < files.size(); i++) {
    if (i) list += ", ";
    list += engine::QuoteLiteral(delta::DataFilePath(table_path, files[i].path));
  }
  list += "]";
  return std::string("SELECT ") + kProjection + " FROM read_parquet(" + list + ", filename=true, union_by_name=true)";
}

// The slice of `ts_expr` (a TIMESTAMP): floor(epoch µs / kSilverFileBucketUs),
// also before 1970 (DuckDB's // truncates toward zero).
std::string BucketSql(const std::string& ts_expr) {
  const std::string us = "epoch_us(" + ts_expr + ")", w = std::to_string(kSilverFileBucketUs);
  return "((" + us + " - ((" + us + " % " + w + ") + " + w + ") % " + w + ") // " + w + ")";
}

}  // namespace

Result<SilverMerge> MergeIdentityAndSessions(engine::Connection* conn, const std::string& table_path,
                                             const delta::Snapshot& snapshot, int64_t session_timeout_us) {
  const std::string timeout = std::to_string(session_timeout_us);
  const std::string activity = kActivity;
  const std::vector<delta::AddFile> no_files;
  const std::vector<delta::AddFile>& all_files = snapshot.version < 0 ? no_files : snapshot.files;
  SilverMerge merge;
  Clock* clock = SystemClock();
  std::vector<std::pair<const char*, int64_t>> marks = {{"start", clock->MonotonicMicros()}};
  auto mark = [&](const char* what) { marks.emplace_back(what, clock->MonotonicMicros()); };
  RETURN_IF_ERROR(conn->Execute("SET TimeZone = 'UTC'"));

  // 1. Links: the latest event carrying both ids, for the batch's anonymous ids,
  //    before and after this batch; anonymous ids whose link changed move.
  RETURN_IF_ERROR(conn->Execute(
      "CREATE OR REPLACE TABLE new_anons AS "
      "SELECT DISTINCT anonymous_id FROM silver_batch WHERE anonymous_id IS NOT NULL;"
      "CREATE OR REPLACE TABLE link_rows AS "
      "SELECT anonymous_id, user_id, event_ts, event_id, true AS old FROM (" +
      ProjectionScan(table_path, all_files) +
      ") WHERE user_id IS NOT NULL AND anonymous_id IN (SELECT anonymous_id FROM new_anons) "
      "UNION ALL SELECT anonymous_id, user_id, event_ts, event_id, false FROM silver_batch "
      "  WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL;"
      "CREATE OR REPLACE TABLE links AS SELECT anonymous_id, user_id FROM ("
      "  SELECT anonymous_id, user_id, row_number() OVER (PARTITION BY anonymous_id "
      "    ORDER BY event_ts DESC, event_id DESC) AS rn FROM link_rows) WHERE rn = 1;"
      "CREATE OR REPLACE TABLE links_before AS SELECT anonymous_id, user_id FROM ("
      "  SELECT anonymous_id, user_id, row_number() OVER (PARTITION BY anonymous_id "
      "    ORDER BY event_ts DESC, event_id DESC) AS rn FROM link_rows WHERE old) WHERE rn = 1;"
      "CREATE OR REPLACE TABLE changed_anons AS "
      "SELECT a.anonymous_id, COALESCE(a.user_id, 'anon:' || a.anonymous_id) AS new_key FROM links a "
      "LEFT JOIN links_before b ON a.anonymous_id = b.anonymous_id WHERE b.user_id IS DISTINCT FROM a.user_id;"
      // The batch's rows with their keys (a view: the merge reads a few of
      // their columns, and only the write reads them all).
      "CREATE OR REPLACE VIEW nb AS "
      "SELECT b.* REPLACE (COALESCE(b.user_id, l.user_id, 'anon:' || b.anonymous_id) AS user_key) "
      "FROM silver_batch b LEFT JOIN links l ON b.anonymous_id = l.anonymous_id;"));
  mark("links");
  ASSIGN_OR_RETURN(auto changed, conn->Query("SELECT count(*) FROM changed_anons"));
  // 2. Existing rows that move to another key (any age, as a rebuild would).
  RETURN_IF_ERROR(conn->Execute(
      "CREATE OR REPLACE TABLE moved AS SELECT p.*, c.new_key FROM (" +
      ProjectionScan(table_path, changed.GetInt64(0, 0) > 0 ? all_files : no_files) +
      ") p JOIN changed_anons c ON p.anonymous_id = c.anonymous_id "
      "WHERE p.user_id IS NULL AND p.user_key IS DISTINCT FROM c.new_key;"
      // 3. c_k per affected key: the earliest non-late change (NULL: late rows only).
      "CREATE OR REPLACE TABLE change_at AS SELECT user_key, min(event_ts) FILTER (WHERE NOT is_late) AS c FROM ("
      "  SELECT user_key, event_ts, COALESCE(is_late, false) AS is_late FROM nb "
      "  UNION ALL SELECT user_key, event_ts, is_late FROM moved "
      "  UNION ALL SELECT new_key, event_ts, is_late FROM moved) GROUP BY user_key;"));
  mark("moved");
  ASSIGN_OR_RETURN(auto minc, conn->Query("SELECT epoch_us(min(c)) FROM change_at"));
  std::vector<delta::AddFile> recent;
  if (!minc.IsNull(0, 0) && !all_files.empty()) {
    const std::string from = FormatTimestampMicros(minc.GetInt64(0, 0) - session_timeout_us);
    recent = delta::PruneFiles(snapshot, {{"event_ts", ">=", from, "TIMESTAMP"}});
  }
  merge.files_scanned = static_cast<int64_t>(recent.size());
  RETURN_IF_ERROR(conn->Execute(
      // 4. The keys' rows from one timeout before c_k on (not moving away).
      "CREATE OR REPLACE TABLE cand AS SELECT p.*, ch.c FROM (" + ProjectionScan(table_path, recent) +
      ") p JOIN change_at ch ON p.user_key = ch.user_key "
      "WHERE ch.c IS NOT NULL AND epoch_us(p.event_ts) >= epoch_us(ch.c) - " + timeout +
      " AND NOT EXISTS (SELECT 1 FROM moved m WHERE m.event_id = p.event_id AND m.log_partition = p.log_partition "
      "  AND m.log_offset = p.log_offset);"
      // The seed: each key's last non-late activity row before c_k.
      "CREATE OR REPLACE TABLE seeds AS SELECT user_key, event_ts, event_id, session_id, session_event_index FROM ("
      "  SELECT *, row_number() OVER (PARTITION BY user_key ORDER BY event_ts DESC, event_id DESC) AS rn "
      "  FROM cand WHERE event_ts < c AND NOT is_late AND event_type IN " + activity + ") WHERE rn = 1;"
      // 5. The non-late rows to recompute, and the seeds.
      "CREATE OR REPLACE TABLE r AS "
      "SELECT event_id, log_partition, log_offset, user_key, event_type, event_ts, NULL::VARCHAR AS seed_sid, "
      "  NULL::BIGINT AS seed_idx FROM cand WHERE event_ts >= c AND NOT is_late "
      "UNION ALL SELECT event_id, log_partition, log_offset, new_key, event_type, event_ts, NULL, NULL "
      "  FROM moved WHERE NOT is_late "
      "UNION ALL SELECT event_id, log_partition, log_offset, user_key, event_type, event_ts, NULL, NULL "
      "  FROM nb WHERE NOT COALESCE(is_late, false) "
      "UNION ALL SELECT event_id, NULL, NULL, user_key, 'track', event_ts, session_id, session_event_index "
      "  FROM seeds;"
      "CREATE OR REPLACE TABLE r_sess AS "
      "WITH a AS (SELECT *, epoch_us(event_ts) AS ts, "
      "    epoch_us(event_ts) - lag(epoch_us(event_ts)) OVER (PARTITION BY user_key ORDER BY event_ts, event_id) "
      "      AS gap FROM r WHERE event_type IN " + activity + "), "
      "b AS (SELECT *, sum(CASE WHEN gap IS NULL OR gap > " + timeout + " THEN 1 ELSE 0 END) OVER ("
      "    PARTITION BY user_key ORDER BY event_ts, event_id ROWS UNBOUNDED PRECEDING) AS sn FROM a), "
      "c AS (SELECT *, min(ts) OVER (PARTITION BY user_key, sn) AS s_start, "
      "    max(ts) OVER (PARTITION BY user_key, sn) AS s_end, "
      "    max(seed_sid) OVER (PARTITION BY user_key, sn) AS g_sid, "
      "    max(seed_idx) OVER (PARTITION BY user_key, sn) AS g_idx, "
      "    row_number() OVER (PARTITION BY user_key, sn ORDER BY event_ts, event_id) AS rnk FROM b) "
      "SELECT event_id, log_partition, log_offset, user_key, s_start, s_end, seed_sid IS NOT NULL AS is_seed, "
      "  CASE WHEN g_sid IS NOT NULL THEN g_idx + rnk - 1 ELSE rnk END AS idx, "
      "  COALESCE(g_sid, left(sha256(user_key || '|' || s_start::VARCHAR), 32)) AS session_id FROM c;"
      "CREATE OR REPLACE TABLE r_spans AS SELECT DISTINCT user_key, session_id, s_start, s_end FROM r_sess;"
      "CREATE OR REPLACE TABLE upd AS "
      "SELECT event_id, log_partition, log_offset, user_key, session_id, idx::BIGINT AS session_event_index "
      "  FROM r_sess WHERE NOT is_seed "
      "UNION ALL SELECT r.event_id, r.log_partition, r.log_offset, r.user_key, sp.session_id, NULL::BIGINT "
      "  FROM r LEFT JOIN r_spans sp ON sp.user_key = r.user_key AND epoch_us(r.event_ts) >= sp.s_start "
      "  AND epoch_us(r.event_ts) <= sp.s_end + " + timeout + " WHERE r.event_type NOT IN " + activity +
      "  AND r.seed_sid IS NULL "
      // Late rows: a session of their own (activity) or none.
      "UNION ALL SELECT event_id, log_partition, log_offset, user_key, "
      "  CASE WHEN event_type IN " + activity + " THEN left(sha256(user_key || '|' || epoch_us(event_ts)::VARCHAR), 32) END, "
      "  CASE WHEN event_type IN " + activity + " THEN 1 END::BIGINT FROM ("
      "  SELECT event_id, log_partition, log_offset, user_key, event_type, event_ts FROM nb "
      "    WHERE COALESCE(is_late, false) "
      "  UNION ALL SELECT event_id, log_partition, log_offset, new_key, event_type, event_ts FROM moved "
      "    WHERE is_late);"
      // 6. Existing rows whose values change, and the files holding them.
      "CREATE OR REPLACE TABLE changes AS "
      "SELECT u.*, o.filename FROM upd u JOIN ("
      "  SELECT event_id, log_partition, log_offset, user_key, session_id, session_event_index, filename FROM cand "
      "  UNION ALL SELECT event_id, log_partition, log_offset, user_key, session_id, session_event_index, filename "
      "    FROM moved) o "
      "  ON u.event_id = o.event_id AND u.log_partition = o.log_partition AND u.log_offset = o.log_offset "
      "WHERE u.user_key IS DISTINCT FROM o.user_key OR u.session_id IS DISTINCT FROM o.session_id "
      "  OR u.session_event_index IS DISTINCT FROM o.session_event_index;"));
  mark("sessions");
  ASSIGN_OR_RETURN(auto files, conn->Query("SELECT DISTINCT filename FROM changes"));
  std::map<std::string, const delta::AddFile*> by_path;
  for (const auto& f : all_files) by_path[delta::DataFilePath(table_path, f.path)] = &f;
  delta::Snapshot rewrite = snapshot;
  rewrite.files.clear();
  for (size_t i = 0; i < files.row_count(); i++) {
    auto it = by_path.find(files.GetString(i, 0));
    if (it == by_path.end()) return Status::Internal("silver merge: a changed row in unknown file " + files.GetString(i, 0));
    rewrite.files.push_back(*it->second);
  }
  // Slices this batch writes; their small files are compacted into the new ones.
  ASSIGN_OR_RETURN(auto new_buckets, conn->Query("SELECT DISTINCT " + BucketSql("event_ts") +
                                                 " FROM nb UNION SELECT DISTINCT " + BucketSql("event_ts") +
                                                 " FROM changes c JOIN cand USING (event_id, log_partition, log_offset)"));
  std::set<int64_t> buckets;
  for (size_t i = 0; i < new_buckets.row_count(); i++) buckets.insert(new_buckets.GetInt64(i, 0));
  {
    std::set<std::string> chosen;
    for (const auto& f : rewrite.files) chosen.insert(f.path);
    simdjson::dom::parser parser;
    for (const auto& f : all_files) {
      if (chosen.count(f.path) || f.stats.empty()) continue;
      simdjson::dom::element st;
      if (parser.parse(f.stats.data(), f.stats.size()).get(st)) continue;
      int64_t n = 0;
      std::string_view mn, mx;
      if (st["numRecords"].get(n) || st["minValues"]["event_ts"].get(mn) || st["maxValues"]["event_ts"].get(mx))
        continue;
      int64_t lo, hi;
      if (n >= kSilverSmallFileRows || !ParseTimestampMicros(mn, &lo) || !ParseTimestampMicros(mx, &hi)) continue;
      auto bucket = [](int64_t us) { return us >= 0 ? us / kSilverFileBucketUs : -((-us - 1) / kSilverFileBucketUs) - 1; };
      // Stats maxima are truncated to milliseconds: the slice must hold both ends.
      if (bucket(lo) != bucket(hi) || bucket(hi + 999) != bucket(lo) || !buckets.count(bucket(lo))) continue;
      rewrite.files.push_back(f);
      merge.files_compacted++;
    }
  }
  merge.rewritten_files = rewrite.files;

  // 7. silver_out: the rewritten files' rows (changed ones updated) and the new rows.
  std::string old_rows;
  if (rewrite.files.empty()) {
    old_rows = "SELECT * FROM silver_batch WHERE false";
  } else {
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(table_path, rewrite));
    old_rows =
        "SELECT o.* REPLACE (CAST(o.event_ts AS TIMESTAMP) AS event_ts, CAST(o.original_ts AS TIMESTAMP) AS "
        "original_ts, CAST(o.sent_at AS TIMESTAMP) AS sent_at, CAST(o.received_at AS TIMESTAMP) AS received_at, "
        "CASE WHEN ch.event_id IS NULL THEN o.user_key ELSE ch.user_key END AS user_key, "
        "CASE WHEN ch.event_id IS NULL THEN o.session_id ELSE ch.session_id END AS session_id, "
        "CASE WHEN ch.event_id IS NULL THEN o.session_event_index ELSE ch.session_event_index END "
        "  AS session_event_index) "
        "FROM (" + scan + ") o LEFT JOIN changes ch ON o.event_id = ch.event_id "
        "AND o.log_partition = ch.log_partition AND o.log_offset = ch.log_offset";
  }
  RETURN_IF_ERROR(conn->Execute(
      "CREATE OR REPLACE VIEW silver_out AS " + old_rows +
      " UNION ALL BY NAME "
      "SELECT b.* REPLACE (u.user_key AS user_key, u.session_id AS session_id, "
      "  u.session_event_index AS session_event_index) "
      "FROM silver_batch b JOIN upd u ON b.event_id = u.event_id AND b.log_partition = u.log_partition "
      "  AND b.log_offset = u.log_offset;"));
  ASSIGN_OR_RETURN(auto out_buckets,
                   conn->Query("SELECT b, min(event_date)::VARCHAR, count(DISTINCT event_date), count(*) FROM (SELECT " +
                               BucketSql("event_ts") + " AS b, event_date FROM silver_out) GROUP BY b ORDER BY b"));
  for (size_t i = 0; i < out_buckets.row_count(); i++) {
    if (out_buckets.GetInt64(i, 2) != 1) return Status::Internal("silver merge: a 4-hour slice spans event dates");
    merge.slices.push_back({out_buckets.GetInt64(i, 0), out_buckets.GetString(i, 1), out_buckets.GetInt64(i, 3)});
  }
  ASSIGN_OR_RETURN(auto counts, conn->Query("SELECT (SELECT count(*) FROM changes), (SELECT count(*) FROM silver_out) - "
                                            "(SELECT count(*) FROM silver_batch), (SELECT count(*) FROM nb), "
                                            "(SELECT count(*) FROM silver_out)"));
  mark("output");
  merge.rows_changed = counts.GetInt64(0, 0);
  std::string timing;
  for (size_t i = 1; i < marks.size(); i++)
    timing += fmt::format("{}{} {:.0f} ms", i > 1 ? ", " : "", marks[i].first,
                          (marks[i].second - marks[i - 1].second) / 1000.0);
  spdlog::info("silver merge: {} anonymous ids re-keyed, {} of {} files scanned, {} rows changed, {} files ({} rows, "
               "{} small files compacted) rewritten; {}",
               changed.GetInt64(0, 0), merge.files_scanned, all_files.size(), merge.rows_changed,
               merge.rewritten_files.size(), counts.GetInt64(0, 1), merge.files_compacted, timing);
  merge.rows_rewritten = counts.GetInt64(0, 1);
  if (counts.GetInt64(0, 3) - counts.GetInt64(0, 1) != counts.GetInt64(0, 2)) {
    return Status::Internal("silver merge: " + std::to_string(counts.GetInt64(0, 2)) + " new rows but " +
                            std::to_string(counts.GetInt64(0, 3) - counts.GetInt64(0, 1)) + " in the output");
  }
  return merge;
}

Result<std::vector<delta::AddFile>> WriteSilverOut(delta::Transaction* txn, engine::Connection* conn,
                                                   const SilverMerge& merge) {
  // The files: event_ts ranges [bounds[i], bounds[i + 1]) of one slice each,
  // written by one parallel COPY (delta::Transaction::WriteFileGroups).
  std::vector<int64_t> lower;  // each file's lower bound, ascending
  std::vector<int64_t> upper;
  std::vector<std::map<std::string, std::optional<std::string>>> groups;
  for (const SilverMerge::Slice& slice : merge.slices) {
    std::vector<int64_t> bounds = {slice.bucket * kSilverFileBucketUs};
    const int64_t end = (slice.bucket + 1) * kSilverFileBucketUs;
    if (slice.rows > kSilverFileMaxRows) {
      // Split points: the event_ts of every per_file-th row in event_ts order
      // (rows of equal event_ts stay in one file, which may then be a little
      // larger). Only event_ts is sorted; a file is about one row group, so
      // the order of rows inside it buys nothing.
      const int64_t files = (slice.rows + kSilverFileMaxRows - 1) / kSilverFileMaxRows;
      const int64_t per_file = (slice.rows + files - 1) / files;
      ASSIGN_OR_RETURN(auto splits,
                       conn->Query("SELECT DISTINCT t FROM (SELECT epoch_us(event_ts) AS t, row_number() OVER (ORDER BY "
                                   "event_ts) AS rn FROM silver_out WHERE event_ts >= make_timestamp(" +
                                   std::to_string(bounds[0]) + "::BIGINT) AND event_ts < make_timestamp(" +
                                   std::to_string(end) + "::BIGINT)) WHERE rn > 1 AND rn % " +
                                   std::to_string(per_file) + " = 1 ORDER BY t"));
      for (size_t i = 0; i < splits.row_count(); i++) {
        if (splits.GetInt64(i, 0) > bounds.back()) bounds.push_back(splits.GetInt64(i, 0));
      }
    }
    bounds.push_back(end);
    for (size_t i = 0; i + 1 < bounds.size(); i++) {
      lower.push_back(bounds[i]);
      upper.push_back(bounds[i + 1]);
      groups.push_back({{"event_date", slice.event_date}});
    }
  }
  if (groups.empty()) return std::vector<delta::AddFile>{};
  // Slices are disjoint and ascending: the first upper bound above a row's
  // event_ts is its file's (a row between slices matches none: an error).
  std::string group = "CASE";
  for (size_t i = 0; i < groups.size(); i++) {
    group += " WHEN epoch_us(event_ts) < " + std::to_string(upper[i]) + " THEN " +
             (i > 0 && lower[i] == upper[i - 1] ? std::to_string(i)
                                                  : "(CASE WHEN epoch_us(event_ts) >= " + std::to_string(lower[i]) +
                                                        " THEN " + std::to_string(i) + " END)");
  }
  group += " END";
  return txn->WriteFileGroups(conn, "SELECT * FROM silver_out", group, groups);
}

}  // namespace clicklake::pipeline

#include "pipeline/silver_sessions.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "common/clock.h"
#include "common/file_system.h"
#include "engine/engine.h"
#include "pipeline/dedup.h"

namespace clicklake::pipeline {
namespace {

const char* kActivity = "('track', 'page', 'screen')";

// The columns the merge needs of an existing row, and where it is (the data
// file's add.path and the row's position there, for DeleteRows).
const char* kProjection =
    "event_id, log_partition, log_offset, event_type, CAST(event_ts AS TIMESTAMP) AS event_ts, user_id, "
    "anonymous_id, user_key, session_id, session_event_index, COALESCE(is_late, false) AS is_late, _delta_file, "
    "_delta_row";

// SELECT <kProjection> over `files` of `snapshot`, deletion vectors applied
// (none: an empty result of the same shape).
Result<std::string> ProjectionScan(const std::string& table_path, const delta::Snapshot& snapshot,
                                   const std::vector<delta::AddFile>& files) {
  if (files.empty()) {
    return std::string(
        "SELECT NULL::VARCHAR AS event_id, NULL::INTEGER AS log_partition, NULL::BIGINT AS log_offset, "
        "NULL::VARCHAR AS event_type, NULL::TIMESTAMP AS event_ts, NULL::VARCHAR AS user_id, "
        "NULL::VARCHAR AS anonymous_id, NULL::VARCHAR AS user_key, NULL::VARCHAR AS session_id, "
        "NULL::BIGINT AS session_event_index, false AS is_late, NULL::VARCHAR AS _delta_file, "
        "NULL::BIGINT AS _delta_row WHERE false");
  }
  delta::Snapshot part = snapshot;
  part.files = files;
  delta::ScanOptions options;
  options.row_address = true;
  ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(table_path, part, options));
  return std::string("SELECT ") + kProjection + " FROM (" + scan + ")";
}

// The files of `files` whose event_ts stats overlap one of `intervals`
// ([lo, hi] epoch µs); files without such stats are kept.
std::vector<delta::AddFile> FilesOverlapping(const std::vector<delta::AddFile>& files,
                                             std::vector<std::pair<int64_t, int64_t>> intervals) {
  std::sort(intervals.begin(), intervals.end());
  std::vector<std::pair<int64_t, int64_t>> merged;
  for (const auto& iv : intervals) {
    if (!merged.empty() && iv.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, iv.second);
    } else {
      merged.push_back(iv);
    }
  }
  std::vector<delta::AddFile> out;
  if (merged.empty()) return out;
  simdjson::dom::parser parser;
  for (const auto& f : files) {
    SilverFileRange range;
    if (!ReadSilverFileRange(&parser, f, &range)) {
      out.push_back(f);
      continue;
    }
    const int64_t lo = range.min_ts_us;
    const int64_t hi = range.max_ts_us + 999;  // stats maxima are truncated to milliseconds
    // The first merged interval ending at or after lo: overlap iff it starts by hi.
    auto it = std::lower_bound(merged.begin(), merged.end(), lo,
                               [](const std::pair<int64_t, int64_t>& iv, int64_t v) { return iv.second < v; });
    if (it != merged.end() && it->first <= hi) out.push_back(f);
  }
  return out;
}

// A key's session state from columns [first, first + 4] of `rows`' row i:
// max_ts, seed_ts, seed_event_id, seed_session_id, seed_index (no seed when
// seed_ts or seed_session_id is NULL).
DedupStore::KeyState KeyStateFromRow(const engine::QueryResult& rows, size_t i, size_t first) {
  DedupStore::KeyState k;
  if (!rows.IsNull(i, first)) k.max_ts_us = rows.GetInt64(i, first);
  if (!rows.IsNull(i, first + 1) && !rows.IsNull(i, first + 3)) {
    k.has_seed = true;
    k.seed_ts_us = rows.GetInt64(i, first + 1);
    k.seed_event_id = rows.GetString(i, first + 2);
    k.seed_session_id = rows.GetString(i, first + 3);
    k.seed_index = rows.GetInt64(i, first + 4);
  }
  return k;
}

// Loads the identity state of the batch's anonymous ids into `state_anons`
// (anonymous_id, user_id, event_ts, event_id of its latest link; min_ts, max_ts
// of its rows without user_id, epoch µs). First, for a lake whose state
// predates this (or a new state store), the state of every row of the table
// is computed from `all_scan` once and persisted.
Status LoadIdentityState(engine::Connection* conn, DedupStore* state, bool table_has_rows,
                         const std::function<Result<std::string>()>& all_scan) {
  ASSIGN_OR_RETURN(bool initialized, state->IdentityInitialized());
  if (!initialized) {
    std::vector<DedupStore::AnonUpdate> all;
    if (table_has_rows) {
      ASSIGN_OR_RETURN(std::string scan, all_scan());
      ASSIGN_OR_RETURN(auto rows, conn->Query(
          "WITH s AS (" + scan + ") "
          "SELECT anonymous_id, max(epoch_us(event_ts)) FILTER (WHERE user_id IS NULL), "
          "  min(epoch_us(event_ts)) FILTER (WHERE user_id IS NULL), "
          "  arg_max(epoch_us(event_ts), (event_ts, event_id)) FILTER (WHERE user_id IS NOT NULL), "
          "  arg_max(event_id, (event_ts, event_id)) FILTER (WHERE user_id IS NOT NULL), "
          "  arg_max(user_id, (event_ts, event_id)) FILTER (WHERE user_id IS NOT NULL) "
          "FROM s WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id"));
      all.resize(rows.row_count());
      for (size_t i = 0; i < rows.row_count(); i++) {
        all[i].anonymous_id = rows.GetString(i, 0);
        if (!rows.IsNull(i, 1)) {
          all[i].max_ts_us = rows.GetInt64(i, 1);
          all[i].min_ts_us = rows.GetInt64(i, 2);
        }
        if (!rows.IsNull(i, 5)) all[i].link = DedupStore::Link{rows.GetInt64(i, 3), rows.GetString(i, 4), rows.GetString(i, 5)};
      }
    }
    std::vector<DedupStore::KeyUpdate> keys;
    if (table_has_rows) {
      ASSIGN_OR_RETURN(std::string scan, all_scan());
      const std::string order = "(event_ts, event_id)";
      const std::string last_activity = " FILTER (WHERE NOT is_late AND session_event_index IS NOT NULL)";
      ASSIGN_OR_RETURN(auto rows, conn->Query(
          "WITH s AS (" + scan + ") SELECT user_key, max(epoch_us(event_ts)) FILTER (WHERE NOT is_late), "
          "arg_max(epoch_us(event_ts), " + order + ")" + last_activity + ", arg_max(event_id, " + order + ")" +
          last_activity + ", arg_max(session_id, " + order + ")" + last_activity + ", arg_max(session_event_index, " +
          order + ")" + last_activity + " FROM s WHERE user_key IS NOT NULL GROUP BY user_key"));
      keys.resize(rows.row_count());
      for (size_t i = 0; i < keys.size(); i++) {
        keys[i].user_key = rows.GetString(i, 0);
        keys[i].state = KeyStateFromRow(rows, i, 1);
      }
    }
    RETURN_IF_ERROR(state->BootstrapIdentity(all, keys));
    spdlog::info("silver merge: identity state initialized from silver.events ({} anonymous ids)", all.size());
  }
  ASSIGN_OR_RETURN(auto anons, conn->Query("SELECT anonymous_id FROM new_anons"));
  std::vector<std::string> ids(anons.row_count());
  for (size_t i = 0; i < ids.size(); i++) ids[i] = anons.GetString(i, 0);
  ASSIGN_OR_RETURN(std::vector<DedupStore::AnonState> found, state->LookupAnons(ids));
  RETURN_IF_ERROR(conn->Execute(
      "CREATE OR REPLACE TABLE state_anons (anonymous_id VARCHAR, user_id VARCHAR, event_ts TIMESTAMP, "
      "event_id VARCHAR, min_ts BIGINT, max_ts BIGINT)"));
  ASSIGN_OR_RETURN(auto app, conn->CreateAppender("", "state_anons"));
  for (size_t i = 0; i < ids.size(); i++) {
    const DedupStore::AnonState& a = found[i];
    if (!a.link && a.min_ts_us > a.max_ts_us) continue;
    RETURN_IF_ERROR(app->AppendString(ids[i]));
    if (a.link) {
      RETURN_IF_ERROR(app->AppendString(a.link->user_id));
      RETURN_IF_ERROR(app->AppendTimestampMicros(a.link->event_ts_us));
      RETURN_IF_ERROR(app->AppendString(a.link->event_id));
    } else {
      for (int k = 0; k < 3; k++) RETURN_IF_ERROR(app->AppendNull());
    }
    if (a.min_ts_us <= a.max_ts_us) {
      RETURN_IF_ERROR(app->AppendInt64(a.min_ts_us));
      RETURN_IF_ERROR(app->AppendInt64(a.max_ts_us));
    } else {
      RETURN_IF_ERROR(app->AppendNull());
      RETURN_IF_ERROR(app->AppendNull());
    }
    RETURN_IF_ERROR(app->EndRow());
  }
  return app->Close();
}

// Loads the session state of the keys in `change_at` into `key_state`
// (user_key, known, max_ts, seed_ts, seed_event_id, seed_sid, seed_idx, gone,
// fast): `gone` keys lose every row to a new link (anon:<id> keys of the ids
// that gained one), `fast` keys have no existing row at or after c_k, so none
// of their rows changes and their seed comes from the state.
Status LoadKeyState(engine::Connection* conn, DedupStore* state) {
  ASSIGN_OR_RETURN(auto keys, conn->Query("SELECT user_key FROM change_at WHERE user_key IS NOT NULL"));
  std::vector<std::string> ids(keys.row_count());
  for (size_t i = 0; i < ids.size(); i++) ids[i] = keys.GetString(i, 0);
  ASSIGN_OR_RETURN(auto found, state->LookupKeys(ids));
  RETURN_IF_ERROR(conn->Execute(
      "CREATE OR REPLACE TABLE key_state_raw (user_key VARCHAR, known BOOLEAN, max_ts BIGINT, seed_ts BIGINT, "
      "seed_event_id VARCHAR, seed_sid VARCHAR, seed_idx BIGINT)"));
  {
    ASSIGN_OR_RETURN(auto app, conn->CreateAppender("", "key_state_raw"));
    for (size_t i = 0; i < ids.size(); i++) {
      RETURN_IF_ERROR(app->AppendString(ids[i]));
      RETURN_IF_ERROR(app->AppendBool(found[i].has_value()));
      RETURN_IF_ERROR(found[i] ? app->AppendInt64(found[i]->max_ts_us) : app->AppendNull());
      if (found[i] && found[i]->has_seed) {
        RETURN_IF_ERROR(app->AppendInt64(found[i]->seed_ts_us));
        RETURN_IF_ERROR(app->AppendString(found[i]->seed_event_id));
        RETURN_IF_ERROR(app->AppendString(found[i]->seed_session_id));
        RETURN_IF_ERROR(app->AppendInt64(found[i]->seed_index));
      } else {
        for (int k = 0; k < 4; k++) RETURN_IF_ERROR(app->AppendNull());
      }
      RETURN_IF_ERROR(app->EndRow());
    }
    RETURN_IF_ERROR(app->Close());
  }
  return conn->Execute(
      "CREATE OR REPLACE TABLE gone_keys AS SELECT DISTINCT user_key FROM moved "
      "  WHERE user_key = 'anon:' || anonymous_id;"
      "CREATE OR REPLACE TABLE key_state AS SELECT k.*, g.user_key IS NOT NULL AS gone, "
      "  g.user_key IS NULL AND NOT (k.known AND k.max_ts >= epoch_us(ch.c)) AS fast "
      "FROM key_state_raw k JOIN change_at ch USING (user_key) LEFT JOIN gone_keys g USING (user_key) "
      "WHERE ch.c IS NOT NULL OR g.user_key IS NOT NULL");
}

// Persists the batch's identity changes: the new latest link of each anonymous
// id that gained one, the event_ts range of its new rows without user_id, and
// the session state of every key whose rows changed.
Status CommitIdentityState(engine::Connection* conn, DedupStore* state) {
  // Keys that keep some rows but lose others to a new link: their seed may
  // have moved, so they are read from the table from now on (max_ts = max).
  ASSIGN_OR_RETURN(auto key_rows, conn->Query(
      "WITH rmax AS (SELECT user_key, max(epoch_us(event_ts)) AS m FROM r WHERE seed_sid IS NULL GROUP BY user_key), "
      "last AS (SELECT user_key, arg_max(epoch_us(event_ts), (event_ts, event_id)) AS ts, "
      "  arg_max(event_id, (event_ts, event_id)) AS id, arg_max(session_id, (event_ts, event_id)) AS sid, "
      "  arg_max(idx, (event_ts, event_id)) AS idx FROM r_sess WHERE NOT is_seed GROUP BY user_key), "
      "losing AS (SELECT DISTINCT user_key FROM moved WHERE user_key <> 'anon:' || anonymous_id) "
      "SELECT ks.user_key, ks.gone, lo.user_key IS NOT NULL AS losing, "
      "  greatest(COALESCE(ks.max_ts, -9223372036854775808), COALESCE(rmax.m, -9223372036854775808)), "
      "  COALESCE(l.ts, epoch_us(sd.event_ts), ks.seed_ts), "
      "  CASE WHEN l.ts IS NOT NULL THEN l.id WHEN sd.event_ts IS NOT NULL THEN sd.event_id ELSE ks.seed_event_id END, "
      "  CASE WHEN l.ts IS NOT NULL THEN l.sid WHEN sd.event_ts IS NOT NULL THEN sd.session_id ELSE ks.seed_sid END, "
      "  CASE WHEN l.ts IS NOT NULL THEN l.idx WHEN sd.event_ts IS NOT NULL THEN sd.session_event_index "
      "    ELSE ks.seed_idx END "
      "FROM key_state ks LEFT JOIN rmax USING (user_key) LEFT JOIN last l USING (user_key) "
      "LEFT JOIN seeds sd USING (user_key) LEFT JOIN losing lo USING (user_key)"));
  std::vector<DedupStore::KeyUpdate> keys(key_rows.row_count());
  for (size_t i = 0; i < keys.size(); i++) {
    keys[i].user_key = key_rows.GetString(i, 0);
    if (key_rows.GetString(i, 1) == "true") continue;  // gone: no rows left
    if (key_rows.GetString(i, 2) == "true") {
      DedupStore::KeyState k;
      k.max_ts_us = INT64_MAX;
      keys[i].state = std::move(k);
    } else {
      keys[i].state = KeyStateFromRow(key_rows, i, 3);
    }
  }
  ASSIGN_OR_RETURN(auto rows, conn->Query(
      "WITH l AS (SELECT anonymous_id, epoch_us(event_ts) AS ts, event_id, user_id FROM ("
      "  SELECT *, row_number() OVER (PARTITION BY anonymous_id ORDER BY event_ts DESC, event_id DESC) AS rn "
      "  FROM link_rows) WHERE rn = 1 AND NOT old), "
      "r AS (SELECT anonymous_id, min(epoch_us(event_ts)) AS lo, max(epoch_us(event_ts)) AS hi FROM silver_batch "
      "  WHERE user_id IS NULL AND anonymous_id IS NOT NULL GROUP BY anonymous_id) "
      "SELECT COALESCE(l.anonymous_id, r.anonymous_id), l.ts, l.event_id, l.user_id, r.lo, r.hi "
      "FROM l FULL OUTER JOIN r ON l.anonymous_id = r.anonymous_id"));
  std::vector<DedupStore::AnonUpdate> updates(rows.row_count());
  for (size_t i = 0; i < updates.size(); i++) {
    updates[i].anonymous_id = rows.GetString(i, 0);
    if (!rows.IsNull(i, 3)) updates[i].link = DedupStore::Link{rows.GetInt64(i, 1), rows.GetString(i, 2), rows.GetString(i, 3)};
    if (!rows.IsNull(i, 4)) {
      updates[i].min_ts_us = rows.GetInt64(i, 4);
      updates[i].max_ts_us = rows.GetInt64(i, 5);
    }
  }
  return state->CommitIdentity(updates, keys);
}

// The slice of `ts_expr` (a TIMESTAMP): floor(epoch µs / kSilverFileBucketUs),
// also before 1970 (DuckDB's // truncates toward zero).
std::string BucketSql(const std::string& ts_expr) {
  const std::string us = "epoch_us(" + ts_expr + ")", w = std::to_string(kSilverFileBucketUs);
  return "((" + us + " - ((" + us + " % " + w + ") + " + w + ") % " + w + ") // " + w + ")";
}

}  // namespace

Result<SilverMerge> MergeIdentityAndSessions(engine::Connection* conn, const std::string& table_path,
                                             const delta::Snapshot& snapshot, int64_t session_timeout_us,
                                             DedupStore* state) {
  const std::string timeout = std::to_string(session_timeout_us);
  const std::string activity = kActivity;
  const std::vector<delta::AddFile> no_files;
  const std::vector<delta::AddFile>& all_files = snapshot.version < 0 ? no_files : snapshot.files;
  SilverMerge merge;
  Clock* clock = SystemClock();
  std::vector<std::pair<const char*, int64_t>> marks = {{"start", clock->MonotonicMicros()}};
  auto mark = [&](const char* what) { marks.emplace_back(what, clock->MonotonicMicros()); };
  RETURN_IF_ERROR(conn->Execute("SET TimeZone = 'UTC'"));
  // Every file's rows: read only without the identity state, or to initialize
  // it (building the scan reads every file's deletion vector: only on demand).
  std::string all_scan_sql;
  auto all_scan = [&]() -> Result<std::string> {
    if (all_scan_sql.empty()) {
      ASSIGN_OR_RETURN(all_scan_sql, ProjectionScan(table_path, snapshot, all_files));
    }
    return all_scan_sql;
  };
  ASSIGN_OR_RETURN(const std::string no_scan, ProjectionScan(table_path, snapshot, no_files));

  // 1. Links: the latest event carrying both ids, for the batch's anonymous ids,
  //    before and after this batch; anonymous ids whose link changed move.
  //    The links before come from the identity state (or, without one, a scan).
  RETURN_IF_ERROR(conn->Execute(
      "CREATE OR REPLACE TABLE new_anons AS "
      "SELECT DISTINCT anonymous_id FROM silver_batch WHERE anonymous_id IS NOT NULL"));
  std::string old_links;
  if (state) {
    RETURN_IF_ERROR(LoadIdentityState(conn, state, !all_files.empty(), all_scan));
    old_links = "SELECT anonymous_id, user_id, event_ts, event_id, true AS old FROM state_anons WHERE user_id IS NOT NULL";
  } else {
    ASSIGN_OR_RETURN(std::string scan, all_scan());
    old_links = "SELECT anonymous_id, user_id, event_ts, event_id, true AS old FROM (" + scan +
                ") WHERE user_id IS NOT NULL AND anonymous_id IN (SELECT anonymous_id FROM new_anons)";
  }
  RETURN_IF_ERROR(conn->Execute(
      "CREATE OR REPLACE TABLE link_rows AS " + old_links +
      " UNION ALL SELECT anonymous_id, user_id, CAST(event_ts AS TIMESTAMP), event_id, false FROM silver_batch "
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
  // 2. Existing rows that move to another key (any age, as a rebuild would):
  //    with the identity state, only the files whose event_ts range overlaps
  //    the rows of the anonymous ids that move are read.
  std::string moved_scan = no_scan;
  int64_t moved_files = 0;
  if (changed.GetInt64(0, 0) > 0 && !all_files.empty()) {
    if (state) {
      ASSIGN_OR_RETURN(auto ranges, conn->Query("SELECT s.min_ts, s.max_ts FROM state_anons s JOIN changed_anons c "
                                                "USING (anonymous_id) WHERE s.min_ts IS NOT NULL"));
      std::vector<std::pair<int64_t, int64_t>> intervals(ranges.row_count());
      for (size_t i = 0; i < intervals.size(); i++) intervals[i] = {ranges.GetInt64(i, 0), ranges.GetInt64(i, 1)};
      const std::vector<delta::AddFile> files = FilesOverlapping(all_files, std::move(intervals));
      moved_files = static_cast<int64_t>(files.size());
      ASSIGN_OR_RETURN(moved_scan, ProjectionScan(table_path, snapshot, files));
    } else {
      moved_files = static_cast<int64_t>(all_files.size());
      ASSIGN_OR_RETURN(moved_scan, all_scan());
    }
  }
  RETURN_IF_ERROR(conn->Execute(
      "CREATE OR REPLACE TABLE moved AS SELECT p.*, c.new_key FROM (" + moved_scan +
      ") p JOIN changed_anons c ON p.anonymous_id = c.anonymous_id "
      "WHERE p.user_id IS NULL AND p.user_key IS DISTINCT FROM c.new_key;"
      // 3. c_k per affected key: the earliest non-late change (NULL: late rows only).
      "CREATE OR REPLACE TABLE change_at AS SELECT user_key, min(event_ts) FILTER (WHERE NOT is_late) AS c FROM ("
      "  SELECT user_key, event_ts, COALESCE(is_late, false) AS is_late FROM nb "
      "  UNION ALL SELECT user_key, event_ts, is_late FROM moved "
      "  UNION ALL SELECT new_key, event_ts, is_late FROM moved) GROUP BY user_key;"));
  mark("moved");
  // 4. The keys' rows from one timeout before c_k on (not moving away). With
  //    the session state, only the keys whose existing rows reach c_k
  //    ("slow": out-of-order or late events, rows moving in from a user key)
  //    are read, from the files overlapping [c_k - timeout, their max_ts];
  //    the others continue from the seed the state holds.
  std::vector<delta::AddFile> recent;
  if (state) {
    RETURN_IF_ERROR(LoadKeyState(conn, state));
    ASSIGN_OR_RETURN(auto slow, conn->Query("SELECT epoch_us(ch.c) - " + timeout + ", ks.max_ts FROM change_at ch "
                                            "JOIN key_state ks USING (user_key) WHERE NOT ks.fast AND NOT ks.gone"));
    std::vector<std::pair<int64_t, int64_t>> intervals(slow.row_count());
    for (size_t i = 0; i < intervals.size(); i++) intervals[i] = {slow.GetInt64(i, 0), slow.GetInt64(i, 1)};
    if (!all_files.empty()) recent = FilesOverlapping(all_files, std::move(intervals));
  } else {
    ASSIGN_OR_RETURN(auto minc, conn->Query("SELECT epoch_us(min(c)) FROM change_at"));
    if (!minc.IsNull(0, 0) && !all_files.empty()) {
      const std::string from = FormatTimestampMicros(minc.GetInt64(0, 0) - session_timeout_us);
      recent = delta::PruneFiles(snapshot, {{"event_ts", ">=", from, "TIMESTAMP"}});
    }
  }
  merge.files_scanned = static_cast<int64_t>(recent.size());
  ASSIGN_OR_RETURN(const std::string recent_scan, ProjectionScan(table_path, snapshot, recent));
  const std::string slow_only = state ? " AND ch.user_key IN (SELECT user_key FROM key_state WHERE NOT fast AND NOT gone)" : "";
  const std::string state_seeds =
      state ? " UNION ALL SELECT ks.user_key, make_timestamp(ks.seed_ts), ks.seed_event_id, ks.seed_sid, ks.seed_idx "
              "FROM key_state ks JOIN change_at ch USING (user_key) WHERE ks.fast AND ks.seed_ts IS NOT NULL "
              "AND ks.seed_ts >= epoch_us(ch.c) - " + timeout + " AND ks.seed_ts < epoch_us(ch.c)"
            : "";
  RETURN_IF_ERROR(conn->Execute(
      "CREATE OR REPLACE TABLE cand AS SELECT p.*, ch.c FROM (" + recent_scan +
      ") p JOIN change_at ch ON p.user_key = ch.user_key "
      "WHERE ch.c IS NOT NULL AND epoch_us(p.event_ts) >= epoch_us(ch.c) - " + timeout + slow_only +
      " AND NOT EXISTS (SELECT 1 FROM moved m WHERE m.event_id = p.event_id AND m.log_partition = p.log_partition "
      "  AND m.log_offset = p.log_offset);"
      // The seed: each key's last non-late activity row before c_k.
      "CREATE OR REPLACE TABLE seeds AS SELECT user_key, event_ts, event_id, session_id, session_event_index FROM ("
      "  SELECT *, row_number() OVER (PARTITION BY user_key ORDER BY event_ts DESC, event_id DESC) AS rn "
      "  FROM cand WHERE event_ts < c AND NOT is_late AND event_type IN " + activity + ") WHERE rn = 1" +
      state_seeds + ";"
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
      "SELECT event_id, log_partition, log_offset, user_key, event_ts, s_start, s_end, seed_sid IS NOT NULL AS is_seed, "
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
      // 6. Existing rows whose values change, and where they are.
      "CREATE OR REPLACE TABLE changes AS "
      "SELECT u.*, o._delta_file, o._delta_row, o.user_key AS old_user_key, o.session_id AS old_session_id, "
      "  o.session_event_index AS old_session_event_index FROM upd u JOIN ("
      "  SELECT event_id, log_partition, log_offset, user_key, session_id, session_event_index, _delta_file, "
      "    _delta_row FROM cand "
      "  UNION ALL SELECT event_id, log_partition, log_offset, user_key, session_id, session_event_index, "
      "    _delta_file, _delta_row FROM moved) o "
      "  ON u.event_id = o.event_id AND u.log_partition = o.log_partition AND u.log_offset = o.log_offset "
      "WHERE u.user_key IS DISTINCT FROM o.user_key OR u.session_id IS DISTINCT FROM o.session_id "
      "  OR u.session_event_index IS DISTINCT FROM o.session_event_index;"));
  mark("sessions");
  // The state after this batch, persisted before the commit (dedup.h).
  if (state) RETURN_IF_ERROR(CommitIdentityState(conn, state));
  // 7. silver_out: the changed rows' new versions and the new rows. Only the
  //    files holding changed rows are read for their other columns.
  ASSIGN_OR_RETURN(auto files, conn->Query("SELECT DISTINCT _delta_file FROM changes"));
  std::set<std::string> changed_paths;
  for (size_t i = 0; i < files.row_count(); i++) changed_paths.insert(files.GetString(i, 0));
  std::vector<delta::AddFile> changed_files;
  for (const auto& f : all_files)
    if (changed_paths.count(f.path)) changed_files.push_back(f);
  if (changed_files.size() != changed_paths.size())
    return Status::Internal("silver merge: a changed row in a file the snapshot does not hold");
  merge.files_changed = static_cast<int64_t>(changed_files.size());
  merge.deleted_rows_query = "SELECT _delta_file, _delta_row FROM changes";
  std::string old_rows;
  if (changed_files.empty()) {
    old_rows = "SELECT * FROM silver_batch WHERE false";
  } else {
    delta::Snapshot part = snapshot;
    part.files = changed_files;
    delta::ScanOptions options;
    options.row_address = true;
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(table_path, part, options));
    old_rows =
        "SELECT o.* EXCLUDE (_delta_file, _delta_row) REPLACE (CAST(o.event_ts AS TIMESTAMP) AS event_ts, "
        "CAST(o.original_ts AS TIMESTAMP) AS original_ts, CAST(o.sent_at AS TIMESTAMP) AS sent_at, "
        "CAST(o.received_at AS TIMESTAMP) AS received_at, ch.user_key AS user_key, ch.session_id AS session_id, "
        "ch.session_event_index AS session_event_index) "
        "FROM (" + scan + ") o JOIN changes ch ON o._delta_file = ch._delta_file AND o._delta_row = ch._delta_row";
    // Materialized once: slicing, counting and writing all read it. DuckDB
    // estimates a Parquet scan with deletion vectors at a few hundred rows, so
    // left alone it builds the join's hash table on the scan (every row of the
    // changed files, all columns) instead of on `changes`; the join is kept as
    // written (probe the scan, build `changes`) for this one statement.
    RETURN_IF_ERROR(conn->Execute("SET disabled_optimizers = 'join_order,build_side_probe_side'"));
    Status made = conn->Execute("CREATE OR REPLACE TEMP TABLE silver_changed AS " + old_rows);
    RETURN_IF_ERROR(conn->Execute("RESET disabled_optimizers"));
    RETURN_IF_ERROR(made);
    old_rows = "SELECT * FROM silver_changed";
  }
  RETURN_IF_ERROR(conn->Execute(
      "CREATE OR REPLACE VIEW silver_out AS " + old_rows +
      " UNION ALL BY NAME "
      "SELECT b.* REPLACE (u.user_key AS user_key, u.session_id AS session_id, "
      "  u.session_event_index AS session_event_index) "
      "FROM silver_batch b JOIN upd u ON b.event_id = u.event_id AND b.log_partition = u.log_partition "
      "  AND b.log_offset = u.log_offset;"));
  ASSIGN_OR_RETURN(merge.slices, SilverSlicesOf(conn, "silver_out"));
  ASSIGN_OR_RETURN(auto counts, conn->Query("SELECT (SELECT count(*) FROM changes), (SELECT count(*) FROM silver_out) - "
                                            "(SELECT count(*) FROM silver_batch), (SELECT count(*) FROM nb), "
                                            "(SELECT count(*) FROM silver_out)"));
  mark("output");
  merge.rows_changed = counts.GetInt64(0, 0);
  if (counts.GetInt64(0, 1) != merge.rows_changed) {
    return Status::Internal("silver merge: " + std::to_string(merge.rows_changed) + " changed rows but " +
                            std::to_string(counts.GetInt64(0, 1)) + " of their old versions found");
  }
  std::string timing;
  for (size_t i = 1; i < marks.size(); i++)
    timing += fmt::format("{}{} {:.0f} ms", i > 1 ? ", " : "", marks[i].first,
                          (marks[i].second - marks[i - 1].second) / 1000.0);
  spdlog::info("silver merge: {} anonymous ids re-keyed ({} files read for their rows), {} of {} files scanned for "
               "sessions, {} rows changed in {} files; {}",
               changed.GetInt64(0, 0), moved_files, merge.files_scanned, all_files.size(), merge.rows_changed,
               merge.files_changed, timing);
  if (counts.GetInt64(0, 3) - counts.GetInt64(0, 1) != counts.GetInt64(0, 2)) {
    return Status::Internal("silver merge: " + std::to_string(counts.GetInt64(0, 2)) + " new rows but " +
                            std::to_string(counts.GetInt64(0, 3) - counts.GetInt64(0, 1)) + " in the output");
  }
  return merge;
}

Status MaterializeSilverChange(engine::Connection* conn, const std::string& columns, const std::string& removed_table,
                               const std::string& added_table) {
  // silver_changed (the changed rows' new versions, every other column as
  // read) exists when some row changed.
  ASSIGN_OR_RETURN(auto n, conn->Query("SELECT count(*) FROM changes"));
  const std::string old_versions =
      n.GetInt64(0, 0) == 0
          ? "SELECT * FROM silver_batch WHERE false"
          : "SELECT s.* REPLACE (ch.old_user_key AS user_key, ch.old_session_id AS session_id, "
            "ch.old_session_event_index AS session_event_index) FROM silver_changed s JOIN changes ch "
            "ON s.event_id = ch.event_id AND s.log_partition = ch.log_partition AND s.log_offset = ch.log_offset";
  RETURN_IF_ERROR(conn->Execute("CREATE OR REPLACE TABLE " + removed_table + " AS SELECT " + columns + " FROM (" +
                                old_versions + ")"));
  return conn->Execute("CREATE OR REPLACE TABLE " + added_table + " AS SELECT " + columns + " FROM silver_out");
}

Result<std::vector<delta::AddFile>> WriteSilverOut(delta::Transaction* txn, engine::Connection* conn,
                                                   const SilverMerge& merge) {
  return WriteSilverSlices(txn, conn, "silver_out", merge.slices);
}

bool ReadSilverFileRange(simdjson::dom::parser* parser, const delta::AddFile& file, SilverFileRange* out) {
  simdjson::dom::element st;
  std::string_view mn, mx;
  return !file.stats.empty() && !parser->parse(file.stats.data(), file.stats.size()).get(st) &&
         !st["numRecords"].get(out->rows) && !st["minValues"]["event_ts"].get(mn) &&
         !st["maxValues"]["event_ts"].get(mx) && ParseTimestampMicros(mn, &out->min_ts_us) &&
         ParseTimestampMicros(mx, &out->max_ts_us);
}

Result<std::vector<SilverMerge::Slice>> SilverSlicesOf(engine::Connection* conn, const std::string& view) {
  std::vector<SilverMerge::Slice> slices;
  ASSIGN_OR_RETURN(auto out_buckets,
                   conn->Query("SELECT b, min(event_date)::VARCHAR, count(DISTINCT event_date), count(*) FROM (SELECT " +
                               BucketSql("event_ts") + " AS b, event_date FROM " + view + ") GROUP BY b ORDER BY b"));
  for (size_t i = 0; i < out_buckets.row_count(); i++) {
    if (out_buckets.GetInt64(i, 2) != 1) return Status::Internal("silver: a 4-hour slice spans event dates");
    slices.push_back({out_buckets.GetInt64(i, 0), out_buckets.GetString(i, 1), out_buckets.GetInt64(i, 3)});
  }
  return slices;
}

Result<std::vector<delta::AddFile>> WriteSilverSlices(delta::Transaction* txn, engine::Connection* conn,
                                                      const std::string& view,
                                                      const std::vector<SilverMerge::Slice>& slices) {
  // The files: event_ts ranges [bounds[i], bounds[i + 1]) of one slice each,
  // written by one parallel COPY (delta::Transaction::WriteFileGroups).
  std::vector<int64_t> lower;  // each file's lower bound, ascending
  std::vector<int64_t> upper;
  std::vector<std::map<std::string, std::optional<std::string>>> groups;
  for (const SilverMerge::Slice& slice : slices) {
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
                                   "event_ts) AS rn FROM " + view + " WHERE event_ts >= make_timestamp(" +
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
  return txn->WriteFileGroups(conn, "SELECT * FROM " + view, group, groups);
}

}  // namespace clicklake::pipeline

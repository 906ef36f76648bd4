#include "pipeline/silver_sessions.h"

#include "engine/engine.h"

namespace clicklake::pipeline {

Result<SilverMerge> MergeIdentityAndSessions(engine::Connection* conn, const std::string& table_path,
                                             const delta::Snapshot& snapshot, int64_t session_timeout_us) {
  const std::string timeout = std::to_string(session_timeout_us);
  RETURN_IF_ERROR(conn->Execute("SET TimeZone = 'UTC'"));
  if (snapshot.version < 0) {
    RETURN_IF_ERROR(conn->Execute("CREATE OR REPLACE TABLE silver_old AS SELECT * FROM silver_batch WHERE false"));
  } else {
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(table_path, snapshot));
    // The existing rows, typed like silver_batch (naive UTC timestamps).
    RETURN_IF_ERROR(conn->Execute(
        "CREATE OR REPLACE TEMP VIEW silver_old AS SELECT * REPLACE (CAST(event_ts AS TIMESTAMP) AS event_ts, "
        "CAST(original_ts AS TIMESTAMP) AS original_ts, CAST(sent_at AS TIMESTAMP) AS sent_at, "
        "CAST(received_at AS TIMESTAMP) AS received_at) FROM (" +
        scan + ")"));
  }
  const std::string activity = "('track', 'page', 'screen')";
  RETURN_IF_ERROR(conn->Execute(
      // Anonymous ids of the new events: the only ones whose link can change.
      "CREATE OR REPLACE TABLE new_anons AS "
      "SELECT DISTINCT anonymous_id FROM silver_batch WHERE anonymous_id IS NOT NULL;"
      // Their current link: the latest event carrying both ids.
      "CREATE OR REPLACE TABLE links AS SELECT anonymous_id, user_id FROM ("
      "  SELECT anonymous_id, user_id, row_number() OVER (PARTITION BY anonymous_id "
      "    ORDER BY event_ts DESC, event_id DESC) AS rn FROM ("
      "    SELECT anonymous_id, user_id, event_ts, event_id FROM silver_old "
      "      WHERE user_id IS NOT NULL AND anonymous_id IN (SELECT anonymous_id FROM new_anons) "
      "    UNION ALL SELECT anonymous_id, user_id, event_ts, event_id FROM silver_batch "
      "      WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL)) WHERE rn = 1;"
      "CREATE OR REPLACE TABLE old_touched AS "
      "SELECT o.user_key AS old_key, COALESCE(o.user_id, l.user_id, 'anon:' || o.anonymous_id) AS new_key "
      "FROM silver_old o LEFT JOIN links l ON o.anonymous_id = l.anonymous_id "
      "WHERE o.anonymous_id IN (SELECT anonymous_id FROM new_anons);"
      "CREATE OR REPLACE TABLE affected_keys AS "
      "SELECT COALESCE(b.user_id, l.user_id, 'anon:' || b.anonymous_id) AS user_key "
      "FROM silver_batch b LEFT JOIN links l ON b.anonymous_id = l.anonymous_id "
      "UNION SELECT old_key FROM old_touched UNION SELECT new_key FROM old_touched;"
      // Every row of an affected key, re-keyed.
      "CREATE OR REPLACE TABLE r AS "
      "SELECT o.* REPLACE (CASE WHEN o.user_id IS NOT NULL THEN o.user_id "
      "  WHEN o.anonymous_id IN (SELECT anonymous_id FROM new_anons) THEN COALESCE(l.user_id, 'anon:' || o.anonymous_id) "
      "  ELSE o.user_key END AS user_key) "
      "FROM silver_old o LEFT JOIN links l ON o.anonymous_id = l.anonymous_id "
      "WHERE o.user_key IN (SELECT user_key FROM affected_keys) "
      "UNION ALL BY NAME "
      "SELECT b.* REPLACE (COALESCE(b.user_id, l.user_id, 'anon:' || b.anonymous_id) AS user_key) "
      "FROM silver_batch b LEFT JOIN links l ON b.anonymous_id = l.anonymous_id;"
      // Sessions over the activity events.
      "CREATE OR REPLACE TABLE r_sess AS "
      "WITH a AS (SELECT event_id, log_partition, log_offset, user_key, event_ts, epoch_us(event_ts) AS ts, "
      "    epoch_us(event_ts) - lag(epoch_us(event_ts)) OVER (PARTITION BY user_key ORDER BY event_ts, event_id) "
      "      AS gap FROM r WHERE event_type IN " + activity + "), "
      "b AS (SELECT *, sum(CASE WHEN gap IS NULL OR gap > " + timeout + " THEN 1 ELSE 0 END) OVER ("
      "    PARTITION BY user_key ORDER BY event_ts, event_id ROWS UNBOUNDED PRECEDING) AS sn FROM a), "
      "c AS (SELECT *, min(ts) OVER (PARTITION BY user_key, sn) AS s_start, "
      "    max(ts) OVER (PARTITION BY user_key, sn) AS s_end, "
      "    row_number() OVER (PARTITION BY user_key, sn ORDER BY event_ts, event_id) AS idx FROM b) "
      "SELECT event_id, log_partition, log_offset, user_key, s_start, s_end, idx, "
      "  left(sha256(user_key || '|' || s_start::VARCHAR), 32) AS session_id FROM c;"
      "CREATE OR REPLACE TABLE r_spans AS SELECT DISTINCT user_key, session_id, s_start, s_end FROM r_sess;"
      // identify/alias/group: the session whose [start, end + timeout] holds them.
      "CREATE OR REPLACE TABLE r_other AS "
      "SELECT r.event_id, r.log_partition, r.log_offset, sp.session_id FROM r JOIN r_spans sp "
      "  ON sp.user_key = r.user_key AND epoch_us(r.event_ts) >= sp.s_start "
      "  AND epoch_us(r.event_ts) <= sp.s_end + " + timeout + " WHERE r.event_type NOT IN " + activity + ";"
      "CREATE OR REPLACE TABLE r_out AS "
      "SELECT r.* REPLACE (COALESCE(s.session_id, x.session_id) AS session_id, "
      "  s.idx::BIGINT AS session_event_index) "
      "FROM r LEFT JOIN r_sess s ON r.event_id = s.event_id AND r.log_partition = s.log_partition "
      "  AND r.log_offset = s.log_offset "
      "LEFT JOIN r_other x ON r.event_id = x.event_id AND r.log_partition = x.log_partition "
      "  AND r.log_offset = x.log_offset;"
      // The rewritten partitions: recomputed rows plus the untouched rows of other keys.
      "CREATE OR REPLACE TABLE silver_out AS SELECT * FROM r_out UNION ALL BY NAME "
      "SELECT * FROM silver_old WHERE event_date IN (SELECT DISTINCT event_date FROM r_out) "
      "  AND user_key NOT IN (SELECT user_key FROM affected_keys);"));
  SilverMerge merge;
  ASSIGN_OR_RETURN(auto parts, conn->Query("SELECT DISTINCT strftime(event_date, '%Y-%m-%d') FROM r_out ORDER BY 1"));
  for (size_t i = 0; i < parts.row_count(); i++) merge.partitions.push_back(parts.GetString(i, 0));
  ASSIGN_OR_RETURN(auto counts, conn->Query("SELECT (SELECT count(*) FROM silver_out) - (SELECT count(*) FROM silver_batch)"));
  merge.rows_rewritten = counts.GetInt64(0, 0);
  return merge;
}

}  // namespace clicklake::pipeline

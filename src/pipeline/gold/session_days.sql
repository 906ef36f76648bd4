-- gold.session_days: per session and day it has activity on, the latest activity event_ts
-- of that day. Partitioned by session_date. The state the feature windows read their
-- session counts and point-in-time durations from (a session across midnight counts, on
-- its first day, only up to that day's last event), so features never rescan Silver.
--
-- Inputs:
--   sessions_scope      every silver.events row of the sessions being recomputed, and the
--                       new rows of the sessions that only grew
--   session_days_seeds  gold.session_days rows of the sessions that only grew (empty for a
--                       rebuild): their start, and the days their old rows cover
--
-- session_date / start_ts: date and event_ts of the session's first activity event
-- (session_event_index = 1); event_date: a date with activity events of the session;
-- last_ts: the latest activity event_ts on that date.
WITH starts AS (
  SELECT session_id, user_key, event_ts AS start_ts, event_date AS session_date
  FROM sessions_scope
  WHERE session_event_index = 1
  UNION ALL
  SELECT DISTINCT session_id, user_key, start_ts, session_date
  FROM session_days_seeds
),
days AS (
  SELECT session_id, event_date, max(last_ts) AS last_ts
  FROM (
    SELECT session_id, event_date, event_ts AS last_ts
    FROM sessions_scope
    WHERE session_event_index IS NOT NULL
    UNION ALL
    SELECT session_id, event_date, last_ts
    FROM session_days_seeds
  )
  GROUP BY session_id, event_date
)
SELECT s.session_date, s.session_id, s.user_key, s.start_ts, d.event_date, d.last_ts
FROM starts s
JOIN days d USING (session_id)
ORDER BY s.session_date, s.session_id, d.event_date

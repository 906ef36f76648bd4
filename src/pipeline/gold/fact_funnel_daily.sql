-- gold.fact_funnel_daily: per session date, funnel and step, the sessions (and
-- their distinct users) that reached the step. Partitioned by event_date (the
-- session date, i.e. the date of the session's start).
--
-- Inputs:
--   sessions_scope       every silver.events row of the sessions being rebuilt (all
--                        sessions starting on the dates being replaced)
--   funnel_steps         (funnel, step_index 1-based, step_name, event_name, n_filters)
--   funnel_step_filters  (funnel, step_index, json_path, value): a step's property
--                        filters; an event matches when json_extract_string(properties,
--                        json_path) = value for every filter of the step
--
-- A session reaches step k when it has events matching steps 1..k in order:
-- non-decreasing event_ts (an event at the same instant as the previous step's counts,
-- but not that event itself). Matching is greedy: step 1 is the session's first matching
-- event by (event_ts, event_id), step k the first matching event, by (event_ts, event_id),
-- at or after step k-1's event_ts.
-- Rows: every (session date with at least one session) x funnel x step, also when
-- no session reached the step (sessions = 0).
--   conversion_from_start     sessions(k) / sessions(1)   (NULL when sessions(1) = 0)
--   conversion_from_previous  sessions(k) / sessions(k-1) (step 1: sessions(1) / sessions(1))
WITH RECURSIVE
sess AS (
  SELECT session_id, user_key, CAST(event_ts AS DATE) AS session_date
  FROM sessions_scope
  WHERE session_event_index = 1
),
candidates AS (
  SELECT st.funnel, st.step_index, e.session_id, e.event_ts, e.event_id
  FROM funnel_steps st
  JOIN sessions_scope e ON e.event_name = st.event_name AND e.session_id IS NOT NULL
  WHERE st.n_filters = (
    SELECT count(*) FROM funnel_step_filters f
    WHERE f.funnel = st.funnel AND f.step_index = st.step_index
      AND json_extract_string(e.properties, f.json_path) = f.value)
),
reached(funnel, session_id, step_index, event_ts, event_id) AS (
  SELECT funnel, session_id, 1, min(event_ts), arg_min(event_id, (event_ts, event_id))
  FROM candidates
  WHERE step_index = 1
  GROUP BY funnel, session_id
  UNION ALL
  SELECT r.funnel, r.session_id, r.step_index + 1, min(c.event_ts), arg_min(c.event_id, (c.event_ts, c.event_id))
  FROM reached r
  JOIN candidates c
    ON c.funnel = r.funnel AND c.session_id = r.session_id AND c.step_index = r.step_index + 1
   AND c.event_ts >= r.event_ts AND c.event_id <> r.event_id
  GROUP BY r.funnel, r.session_id, r.step_index
),
counts AS (
  SELECT s.session_date, r.funnel, r.step_index, count(*) AS sessions, count(DISTINCT s.user_key) AS users
  FROM reached r JOIN sess s USING (session_id)
  GROUP BY s.session_date, r.funnel, r.step_index
),
grid AS (
  SELECT d.session_date, st.funnel, st.step_index, st.step_name
  FROM (SELECT DISTINCT session_date FROM sess) d CROSS JOIN funnel_steps st
),
filled AS (
  SELECT g.session_date, g.funnel, g.step_index, g.step_name,
         coalesce(c.sessions, 0) AS sessions, coalesce(c.users, 0) AS users
  FROM grid g LEFT JOIN counts c USING (session_date, funnel, step_index)
),
ratios AS (
  SELECT *,
    first_value(sessions) OVER (PARTITION BY session_date, funnel ORDER BY step_index) AS first_sessions,
    coalesce(lag(sessions) OVER (PARTITION BY session_date, funnel ORDER BY step_index), sessions) AS prev_sessions
  FROM filled
)
SELECT
  session_date AS event_date,
  funnel,
  step_index::INTEGER AS step_index,
  step_name,
  sessions::BIGINT AS sessions,
  users::BIGINT AS users,
  CASE WHEN first_sessions > 0 THEN sessions / first_sessions END::DOUBLE AS conversion_from_start,
  CASE WHEN prev_sessions > 0 THEN sessions / prev_sessions END::DOUBLE AS conversion_from_previous
FROM ratios
ORDER BY event_date, funnel, step_index

-- gold.fact_funnel_daily: per session date, funnel and step, the sessions (and
-- their distinct users) that reached the step. Partitioned by event_date (the
-- session date, i.e. the date of the session's start).
--
-- Inputs:
--   funnel_sessions  gold.session_funnels rows (session_date, session_id, user_key, funnel,
--                    steps_reached) of every session of the dates being rebuilt: one row
--                    per session and funnel (see session_funnels.sql for "reached")
--   funnel_steps     (funnel, step_index 1-based, step_name, event_name, n_filters)
--
-- Rows: every (session date with at least one session) x funnel x step, also when
-- no session reached the step (sessions = 0).
--   sessions                  sessions with steps_reached >= step_index
--   users                     their distinct user_key
--   conversion_from_start     sessions(k) / sessions(1)   (NULL when sessions(1) = 0)
--   conversion_from_previous  sessions(k) / sessions(k-1) (step 1: sessions(1) / sessions(1))
WITH grid AS (
  SELECT d.session_date, st.funnel, st.step_index, st.step_name
  FROM (SELECT DISTINCT session_date FROM funnel_sessions) d CROSS JOIN funnel_steps st
),
filled AS (
  SELECT g.session_date, g.funnel, g.step_index, g.step_name,
         count(s.session_id) AS sessions, count(DISTINCT s.user_key) AS users
  FROM grid g
  LEFT JOIN funnel_sessions s
    ON s.session_date = g.session_date AND s.funnel = g.funnel AND s.steps_reached >= g.step_index
  GROUP BY g.session_date, g.funnel, g.step_index, g.step_name
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

-- gold.session_funnels: per session and funnel, how far the session got. Partitioned by
-- session_date. The state fact_funnel_daily is computed from: a refresh recomputes only
-- the sessions it touched (from their Silver rows), then the daily rows of the affected
-- dates from this table (a read of those dates' sessions, never of their events).
--
-- Inputs:
--   sessions_scope       every silver.events row of the sessions being recomputed, and the
--                        new rows of the sessions that only grew (see funnel_seeds)
--   funnel_seeds         (session_date, session_id, user_key, funnel, steps_reached): for a
--                        session that only grew (every new event after its old ones), its row
--                        as Gold holds it; matching resumes at the next step over its new
--                        events in sessions_scope (an old event cannot match it: none did
--                        before, and the new ones come later). Empty for a rebuild.
--   funnel_steps         (funnel, step_index 1-based, step_name, event_name, n_filters)
--   funnel_step_filters  (funnel, step_index, json_path, value): a step's property
--                        filters; an event matches when json_extract_string(properties,
--                        json_path) = value for every filter of the step
--
-- One row per (session, funnel), also when the session reached no step (steps_reached = 0):
-- session_date (date of its first activity event), session_id, user_key, funnel,
-- steps_reached = the highest k such that the session reached step k.
-- A session reaches step k when it has events matching steps 1..k in order:
-- non-decreasing event_ts (an event at the same instant as the previous step's counts,
-- but not that event itself). Matching is greedy: step 1 is the session's first matching
-- event by (event_ts, event_id), step k the first matching event, by (event_ts, event_id),
-- at or after step k-1's event_ts.
WITH RECURSIVE
starts AS (
  SELECT CAST(e.event_ts AS DATE) AS session_date, e.session_id, e.user_key, f.funnel, 0 AS steps_reached
  FROM sessions_scope e
  CROSS JOIN (SELECT DISTINCT funnel FROM funnel_steps) f
  WHERE e.session_event_index = 1
  UNION ALL
  SELECT session_date, session_id, user_key, funnel, steps_reached FROM funnel_seeds
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
  SELECT funnel, session_id, steps_reached, NULL::TIMESTAMP, NULL::VARCHAR
  FROM starts
  UNION ALL
  SELECT r.funnel, r.session_id, r.step_index + 1, min(c.event_ts), arg_min(c.event_id, (c.event_ts, c.event_id))
  FROM reached r
  JOIN candidates c
    ON c.funnel = r.funnel AND c.session_id = r.session_id AND c.step_index = r.step_index + 1
   AND (r.event_ts IS NULL OR c.event_ts >= r.event_ts) AND c.event_id IS DISTINCT FROM r.event_id
  GROUP BY r.funnel, r.session_id, r.step_index
)
SELECT
  s.session_date,
  s.session_id,
  s.user_key,
  s.funnel,
  max(r.step_index)::INTEGER AS steps_reached
FROM starts s
JOIN reached r USING (funnel, session_id)
GROUP BY ALL
ORDER BY s.session_date, s.session_id, s.funnel

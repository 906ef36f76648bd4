-- gold.dim_user: SCD type 2 of the tracked identify traits.
--
-- Inputs:
--   identify_scope  silver.events identify rows (user_key, event_ts, event_id, properties)
--                   of the users being rebuilt; properties are the traits (PII ones hashed)
--   tracked_traits  (trait, position 1-based, json_path): the traits that make versions
--
-- Identify calls are ordered by (event_ts, event_id); calls carrying none of the tracked
-- traits are ignored. The merged trait state after a call: each tracked trait takes the
-- call's value when present (a JSON value other than null), else keeps its previous value
-- (Segment-style). Version 1 starts at the user's first identify that carries a tracked
-- trait; a new version starts at each identify that changes the merged state.
-- valid_from = that identify's event_ts; valid_to = the next version's valid_from
-- (NULL while current). trait_values lists the state in tracked_traits order (the C++
-- turns it into one column per trait).
WITH long AS (
  SELECT i.user_key, i.event_ts, i.event_id, t.position,
         json_extract_string(i.properties, t.json_path) AS value
  FROM identify_scope i CROSS JOIN tracked_traits t
),
merged AS (
  SELECT user_key, event_ts, event_id, position, value IS NOT NULL AS present,
         last_value(value IGNORE NULLS) OVER (
           PARTITION BY user_key, position ORDER BY event_ts, event_id
           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS value
  FROM long
),
states AS (
  SELECT user_key, event_ts, event_id, list(value ORDER BY position) AS trait_values
  FROM merged
  GROUP BY user_key, event_ts, event_id
  HAVING bool_or(present)
),
changes AS (
  SELECT *, lag(to_json(trait_values)::VARCHAR) OVER (PARTITION BY user_key ORDER BY event_ts, event_id) AS prev_state
  FROM states
  QUALIFY prev_state IS NULL OR prev_state <> to_json(trait_values)::VARCHAR
)
SELECT
  user_key,
  row_number() OVER (PARTITION BY user_key ORDER BY event_ts, event_id)::BIGINT AS version,
  trait_values,
  event_ts AS valid_from,
  lead(event_ts) OVER (PARTITION BY user_key ORDER BY event_ts, event_id) AS valid_to,
  lead(event_ts) OVER (PARTITION BY user_key ORDER BY event_ts, event_id) IS NULL AS is_current
FROM changes
ORDER BY user_key, version

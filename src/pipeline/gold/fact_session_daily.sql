-- gold.fact_session_daily: one row per session, partitioned by session_date.
--
-- Inputs:
--   sessions_scope  every silver.events row (all event types) of the sessions being
--                   rebuilt: all sessions whose start date is one of the partitions
--                   being replaced; and the new rows of the sessions that only grew.
--   session_seeds   gold.fact_session_daily rows of the sessions that only grew (every new
--                   activity event after the old ones; empty for a rebuild): a session's row
--                   folds its seed (the aggregate of its old rows) with its new rows.
--
-- Definitions (activity events = rows with a session_event_index, i.e. track/page/screen):
--   start_ts / end_ts  first / last activity event_ts; session_date = date(start_ts) (UTC)
--   duration_s         end_ts - start_ts in seconds
--   event_count        activity events; page_views: page and screen calls
--   entry_path / exit_path  page_path of the first / last activity event that has one
--   utm_*, referrer_host, platform, device_type, browser_family, os_family, geo_country:
--                      those of the first activity event (session_event_index = 1)
--   is_bounce          exactly one activity event
--   converted          the session has an order_completed event
--   revenue            sum of revenue over all the session's events (0 when none; summed exactly
--                      as DECIMAL(38, 6))
WITH activity AS (
  SELECT * FROM sessions_scope WHERE session_event_index IS NOT NULL
),
parts AS (
  -- per session: the seed (ord 0, its old rows) and the aggregate of the rows in scope (ord 1)
  SELECT
    session_id,
    1 AS ord,
    min(event_ts) AS start_ts,
    max(event_ts) AS end_ts,
    count(*) AS event_count,
    count(*) FILTER (WHERE event_type IN ('page', 'screen')) AS page_views,
    arg_min(page_path, session_event_index) FILTER (WHERE page_path IS NOT NULL) AS entry_path,
    arg_max(page_path, session_event_index) FILTER (WHERE page_path IS NOT NULL) AS exit_path,
    bool_or(event_name = 'order_completed') AS converted
  FROM activity
  GROUP BY session_id
  UNION ALL
  SELECT session_id, 0, start_ts, end_ts, event_count, page_views, entry_path, exit_path, converted
  FROM session_seeds
),
agg AS (
  SELECT
    session_id,
    min(start_ts) AS start_ts,
    max(end_ts) AS end_ts,
    sum(event_count)::BIGINT AS event_count,
    sum(page_views)::BIGINT AS page_views,
    arg_min(entry_path, ord) FILTER (WHERE entry_path IS NOT NULL) AS entry_path,
    arg_max(exit_path, ord) FILTER (WHERE exit_path IS NOT NULL) AS exit_path,
    bool_or(converted) AS converted
  FROM parts
  GROUP BY session_id
),
rev AS (
  -- summed as DECIMAL: exact, so the result does not depend on the order of the rows (a
  -- seed's DOUBLE holds a sum of at most 6 decimals exactly enough to round-trip)
  SELECT session_id, coalesce(sum(r), 0)::DOUBLE AS revenue
  FROM (
    SELECT session_id, revenue::DECIMAL(38, 6) AS r FROM sessions_scope
    UNION ALL
    SELECT session_id, revenue::DECIMAL(38, 6) FROM session_seeds
  )
  GROUP BY session_id
),
firsts AS (
  SELECT session_id, user_key, utm_source, utm_medium, utm_campaign, referrer_host, platform, device_type,
         browser_family, os_family, geo_country
  FROM activity
  WHERE session_event_index = 1
  UNION ALL
  SELECT session_id, user_key, utm_source, utm_medium, utm_campaign, referrer_host, platform, device_type,
         browser_family, os_family, geo_country
  FROM session_seeds
)
SELECT
  f.session_id,
  CAST(a.start_ts AS DATE) AS session_date,
  f.user_key,
  a.start_ts,
  a.end_ts,
  (epoch_us(a.end_ts) - epoch_us(a.start_ts)) / 1e6 AS duration_s,
  a.event_count,
  a.page_views,
  a.entry_path,
  a.exit_path,
  f.utm_source,
  f.utm_medium,
  f.utm_campaign,
  f.referrer_host,
  f.platform,
  f.device_type,
  f.browser_family,
  f.os_family,
  f.geo_country,
  a.event_count = 1 AS is_bounce,
  a.converted,
  r.revenue
FROM firsts f
JOIN agg a USING (session_id)
JOIN rev r USING (session_id)
ORDER BY session_date, a.start_ts, f.session_id

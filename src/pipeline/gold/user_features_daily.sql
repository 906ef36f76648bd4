-- gold.user_features_daily: point-in-time user features, one row per (user, feature_date)
-- for every user with at least one event in [feature_date - 29, feature_date].
--
-- Inputs:
--   feature_keys    (user_key, feature_date): the rows being recomputed; a key whose user
--                   has no event in [D - 29, D] yields no row
--   user_days       gold.user_activity_daily rows (user_key, event_date, events, page_views,
--                   product_views, add_to_cart, checkouts, purchases, revenue) of at least
--                   every (user, date in [D - 29, D]) of some key (user, D)
--   session_days    gold.session_days rows (session_date, session_id, user_key, start_ts,
--                   event_date, last_ts) of at least every session of a key's user that
--                   starts in [D - 6, D] (it may hold more rows; the model reads only those)
--
-- A row for day D reads only events with event_date <= D. Windows: 7d = event_date in
-- [D-6, D], 30d = [D-29, D]. Events are silver events of every type.
--   events_7d                 events in 7d
--   sessions_7d               sessions that started (session_event_index = 1 event) in 7d
--   active_days_7d            distinct event dates in 7d
--   page_views_7d             page and screen calls in 7d
--   product_views_7d          product_viewed events in 7d
--   add_to_cart_7d            product_added events in 7d
--   checkouts_7d              checkout_started events in 7d
--   purchases_30d             order_completed events in 30d
--   revenue_30d               sum of revenue in 30d (0 when none; summed exactly as DECIMAL(38, 6))
--   recency_days              D - the latest event date <= D (0..29)
--   frequency_30d             distinct event dates in 30d
--   avg_session_duration_7d   mean over the sessions counted in sessions_7d of
--                             (last activity event_ts with event_date <= D - start), in
--                             seconds; NULL when sessions_7d = 0
WITH activity AS (
  SELECT
    k.feature_date,
    k.user_key,
    sum(d.events) FILTER (WHERE d.event_date >= k.feature_date - 6) AS events_7d,
    count(*) FILTER (WHERE d.event_date >= k.feature_date - 6) AS active_days_7d,
    sum(d.page_views) FILTER (WHERE d.event_date >= k.feature_date - 6) AS page_views_7d,
    sum(d.product_views) FILTER (WHERE d.event_date >= k.feature_date - 6) AS product_views_7d,
    sum(d.add_to_cart) FILTER (WHERE d.event_date >= k.feature_date - 6) AS add_to_cart_7d,
    sum(d.checkouts) FILTER (WHERE d.event_date >= k.feature_date - 6) AS checkouts_7d,
    sum(d.purchases) AS purchases_30d,
    sum(d.revenue) AS revenue_30d,
    k.feature_date - max(d.event_date) AS recency_days,
    count(*) AS frequency_30d
  FROM feature_keys k
  JOIN user_days d ON d.user_key = k.user_key AND d.event_date BETWEEN k.feature_date - 29 AND k.feature_date
  GROUP BY k.feature_date, k.user_key
),
session_asof AS (
  SELECT k.feature_date, k.user_key, s.session_id,
         epoch_us(max(s.last_ts)) - epoch_us(min(s.start_ts)) AS duration_us
  FROM feature_keys k
  JOIN session_days s ON s.user_key = k.user_key
   AND s.session_date BETWEEN k.feature_date - 6 AND k.feature_date
   AND s.event_date <= k.feature_date
  GROUP BY k.feature_date, k.user_key, s.session_id
),
sessions AS (
  -- integer microseconds summed exactly: the mean does not depend on the order of the rows
  SELECT feature_date, user_key, count(*) AS sessions_7d,
         sum(duration_us)::DOUBLE / count(*) / 1e6 AS avg_session_duration_7d
  FROM session_asof
  GROUP BY feature_date, user_key
)
SELECT
  a.user_key,
  a.feature_date,
  coalesce(a.events_7d, 0)::BIGINT AS events_7d,
  coalesce(s.sessions_7d, 0)::BIGINT AS sessions_7d,
  a.active_days_7d::BIGINT AS active_days_7d,
  coalesce(a.page_views_7d, 0)::BIGINT AS page_views_7d,
  coalesce(a.product_views_7d, 0)::BIGINT AS product_views_7d,
  coalesce(a.add_to_cart_7d, 0)::BIGINT AS add_to_cart_7d,
  coalesce(a.checkouts_7d, 0)::BIGINT AS checkouts_7d,
  a.purchases_30d::BIGINT AS purchases_30d,
  a.revenue_30d::DOUBLE AS revenue_30d,
  a.recency_days::BIGINT AS recency_days,
  a.frequency_30d::BIGINT AS frequency_30d,
  s.avg_session_duration_7d::DOUBLE AS avg_session_duration_7d
FROM activity a
LEFT JOIN sessions s USING (feature_date, user_key)
ORDER BY a.feature_date, a.user_key

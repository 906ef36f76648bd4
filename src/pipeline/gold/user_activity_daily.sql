-- gold.user_activity_daily: per user and event date, the counts user_features_daily
-- windows over. Partitioned by event_date; a partition depends only on Silver's rows of
-- that date, so a refresh recomputes just the changed dates and the feature windows read
-- the other 29 days from here instead of re-aggregating Silver.
--
-- Inputs:
--   activity_scope  silver.events rows of the event_date partitions being rebuilt
--
-- events: every type; page_views: page and screen calls; product_views / add_to_cart /
-- checkouts / purchases: product_viewed / product_added / checkout_started /
-- order_completed events; revenue: sum of revenue, exact as DECIMAL(38, 6) (0 when none).
SELECT
  event_date,
  user_key,
  count(*)::BIGINT AS events,
  (count(*) FILTER (WHERE event_type IN ('page', 'screen')))::BIGINT AS page_views,
  (count(*) FILTER (WHERE event_name = 'product_viewed'))::BIGINT AS product_views,
  (count(*) FILTER (WHERE event_name = 'product_added'))::BIGINT AS add_to_cart,
  (count(*) FILTER (WHERE event_name = 'checkout_started'))::BIGINT AS checkouts,
  (count(*) FILTER (WHERE event_name = 'order_completed'))::BIGINT AS purchases,
  coalesce(sum(revenue::DECIMAL(38, 6)), 0)::DECIMAL(38, 6) AS revenue
FROM activity_scope
GROUP BY event_date, user_key
ORDER BY event_date, user_key

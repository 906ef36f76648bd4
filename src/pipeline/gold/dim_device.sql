-- gold.dim_device: one row per device profile (platform, device_type, device_family,
-- browser_family, os_family), keyed by gold_device_key() of those columns (macros.sql).
--
-- Inputs:
--   device_groups_scope  gold.device_groups rows (see device_groups.sql) of the profiles
--                        being rebuilt: every group of each
--
-- first_seen / last_seen: min / max event_ts; events: its events; users: distinct user_key.
-- The key is a function of the five columns, so it is computed once per profile, not per row.
SELECT
  gold_device_key(platform, device_type, device_family, browser_family, os_family) AS device_key,
  platform,
  device_type,
  device_family,
  browser_family,
  os_family,
  min(first_ts) AS first_seen,
  max(last_ts) AS last_seen,
  sum(events)::BIGINT AS events,
  count(DISTINCT user_key)::BIGINT AS users
FROM device_groups_scope
GROUP BY platform, device_type, device_family, browser_family, os_family
ORDER BY device_key

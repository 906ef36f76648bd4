-- gold.dim_device: one row per device profile (platform, device_type, device_family,
-- browser_family, os_family), keyed by gold_device_key() of those columns (macros.sql).
--
-- Inputs:
--   device_scope  silver.events rows (every event type) of the profiles being rebuilt
--
-- first_seen / last_seen: min / max event_ts; events: its events; users: distinct user_key.
-- The key is a function of the five columns, so it is computed once per group, not per row
-- (SHA-256 over every Silver row was most of this model's cost).
SELECT
  gold_device_key(platform, device_type, device_family, browser_family, os_family) AS device_key,
  platform,
  device_type,
  device_family,
  browser_family,
  os_family,
  min(event_ts) AS first_seen,
  max(event_ts) AS last_seen,
  count(*)::BIGINT AS events,
  count(DISTINCT user_key)::BIGINT AS users
FROM device_scope
GROUP BY platform, device_type, device_family, browser_family, os_family
ORDER BY device_key

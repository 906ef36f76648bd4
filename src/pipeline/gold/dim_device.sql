-- gold.dim_device: one row per device profile (platform, device_type, device_family,
-- browser_family, os_family), keyed by gold_device_key() of those columns (macros.sql).
--
-- Inputs:
--   device_scope  silver.events rows (every event type) whose device_key is one being
--                 rebuilt, with a device_key column
--
-- first_seen / last_seen: min / max event_ts; events: its events; users: distinct user_key.
SELECT
  device_key,
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
GROUP BY device_key, platform, device_type, device_family, browser_family, os_family
ORDER BY device_key

-- gold.device_groups: the state gold.dim_device is folded from (as campaign_groups
-- for dim_campaign). One row per (device profile, user_key, session_id) of the Silver
-- rows, and one per sessionless event (session_id NULL, event_id set).
--
-- Inputs:
--   group_scope  every silver.events row of the sessions being recomputed, and the
--                sessionless rows being recomputed
--
-- events: rows; first_ts / last_ts: min / max event_ts.
SELECT
  platform,
  device_type,
  device_family,
  browser_family,
  os_family,
  user_key,
  session_id,
  CASE WHEN session_id IS NULL THEN event_id END AS event_id,
  count(*)::BIGINT AS events,
  min(event_ts) AS first_ts,
  max(event_ts) AS last_ts
FROM group_scope
GROUP BY platform, device_type, device_family, browser_family, os_family, user_key, session_id,
         CASE WHEN session_id IS NULL THEN event_id END
ORDER BY user_key, session_id, event_id

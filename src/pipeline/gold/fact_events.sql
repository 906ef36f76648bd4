-- gold.fact_events: silver events with dimension keys, narrow, for BI.
--
-- Inputs (views the C++ sets up; timestamps are naive TIMESTAMPs in UTC):
--   silver_scope  silver.events rows of the event_date partitions being rebuilt
--                 (event_id, event_type, event_name, event_ts, event_date, user_key,
--                 session_id, session_event_index, page_path, campaign_id, platform,
--                 device_type, device_family, browser_family, os_family, geo_country,
--                 revenue, currency, source, log_partition, log_offset, ...)
--   dim_user_all  gold.dim_user as of this refresh (user_key, version, valid_from, valid_to)
--
-- user_version: the dim_user version whose [valid_from, valid_to) holds event_ts
-- (NULL before the user's first version, or for users without one).
SELECT
  e.event_date,
  e.event_ts,
  e.event_id,
  e.event_type,
  e.event_name,
  e.user_key,
  u.version AS user_version,
  e.session_id,
  e.session_event_index,
  gold_device_key(e.platform, e.device_type, e.device_family, e.browser_family, e.os_family) AS device_key,
  e.campaign_id,
  e.platform,
  e.page_path,
  e.geo_country,
  e.revenue,
  e.currency,
  e.source,
  e.log_partition,
  e.log_offset
FROM silver_scope e
LEFT JOIN dim_user_all u
  ON u.user_key = e.user_key
 AND e.event_ts >= u.valid_from
 AND e.event_ts < coalesce(u.valid_to, 'infinity'::TIMESTAMP)  -- not an OR: keeps it a hash join
ORDER BY e.event_date, e.event_ts, e.event_id

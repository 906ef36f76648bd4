-- gold.campaign_groups: the state gold.dim_campaign is folded from, so a refresh
-- never rescans Silver for a campaign. One row per (campaign_id, user_key,
-- session_id) of the Silver rows with a campaign_id, and one per sessionless
-- event (session_id NULL, event_id set): a group lies inside one session (or is
-- one event), so a refresh recomputes exactly the groups of the sessions and
-- sessionless events it touched.
--
-- Inputs:
--   group_scope  every silver.events row of the sessions being recomputed, and the
--                sessionless rows being recomputed
--
-- events: rows; first_ts / last_ts: min / max event_ts; utm_x: the value of the group's
-- first row by (event_ts, event_id) that has one, and utm_x_at that row's
-- "event_ts|event_id" (fixed-width timestamp text: sorts as (event_ts, event_id)), so
-- dim_campaign takes the campaign's first exactly as over its events.
SELECT
  campaign_id,
  user_key,
  session_id,
  CASE WHEN session_id IS NULL THEN event_id END AS event_id,
  count(*)::BIGINT AS events,
  min(event_ts) AS first_ts,
  max(event_ts) AS last_ts,
  arg_min(utm_source, (event_ts, event_id)) AS utm_source,
  min(strftime(event_ts, '%Y-%m-%d %H:%M:%S.%f') || '|' || event_id) FILTER (WHERE utm_source IS NOT NULL)
    AS utm_source_at,
  arg_min(utm_medium, (event_ts, event_id)) AS utm_medium,
  min(strftime(event_ts, '%Y-%m-%d %H:%M:%S.%f') || '|' || event_id) FILTER (WHERE utm_medium IS NOT NULL)
    AS utm_medium_at,
  arg_min(utm_campaign, (event_ts, event_id)) AS utm_campaign,
  min(strftime(event_ts, '%Y-%m-%d %H:%M:%S.%f') || '|' || event_id) FILTER (WHERE utm_campaign IS NOT NULL)
    AS utm_campaign_at
FROM group_scope
WHERE campaign_id IS NOT NULL
GROUP BY campaign_id, user_key, session_id, CASE WHEN session_id IS NULL THEN event_id END
ORDER BY campaign_id, user_key, session_id, event_id

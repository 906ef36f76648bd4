-- gold.dim_campaign: one row per campaign (silver's campaign_id = hash of the
-- normalised utm_source|utm_medium|utm_campaign).
--
-- Inputs:
--   campaign_groups_scope  gold.campaign_groups rows (see campaign_groups.sql) of the
--                          campaigns being rebuilt: every group of each
--
-- utm_source / utm_medium / utm_campaign: as on the campaign's first event (by
-- event_ts, event_id) that has one; first_seen / last_seen: min / max event_ts; events: its events;
-- sessions / users: distinct session_id / user_key. Each is exact from the groups:
-- the campaign's first row with a value is the first of its groups' ones (utm_x_at),
-- a session or user counts once.
SELECT
  campaign_id,
  arg_min(utm_source, utm_source_at) AS utm_source,
  arg_min(utm_medium, utm_medium_at) AS utm_medium,
  arg_min(utm_campaign, utm_campaign_at) AS utm_campaign,
  min(first_ts) AS first_seen,
  max(last_ts) AS last_seen,
  sum(events)::BIGINT AS events,
  count(DISTINCT session_id)::BIGINT AS sessions,
  count(DISTINCT user_key)::BIGINT AS users
FROM campaign_groups_scope
WHERE campaign_id IS NOT NULL
GROUP BY campaign_id
ORDER BY campaign_id

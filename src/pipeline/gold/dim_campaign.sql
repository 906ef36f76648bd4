-- gold.dim_campaign: one row per campaign (silver's campaign_id = hash of the
-- normalised utm_source|utm_medium|utm_campaign).
--
-- Inputs:
--   campaign_scope  silver.events rows whose campaign_id is one being rebuilt
--
-- utm_source / utm_medium / utm_campaign: as on the campaign's first event (by
-- event_ts, event_id) that has them; first_seen / last_seen: min / max event_ts;
-- events: its events; sessions / users: distinct session_id / user_key.
SELECT
  campaign_id,
  arg_min(utm_source, (event_ts, event_id)) AS utm_source,
  arg_min(utm_medium, (event_ts, event_id)) AS utm_medium,
  arg_min(utm_campaign, (event_ts, event_id)) AS utm_campaign,
  min(event_ts) AS first_seen,
  max(event_ts) AS last_seen,
  count(*)::BIGINT AS events,
  count(DISTINCT session_id)::BIGINT AS sessions,
  count(DISTINCT user_key)::BIGINT AS users
FROM campaign_scope
WHERE campaign_id IS NOT NULL
GROUP BY campaign_id
ORDER BY campaign_id

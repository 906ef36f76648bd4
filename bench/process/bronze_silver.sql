-- The DuckDB baseline for "the same job as Bronze + Silver" (DESIGN.md §6, §8),
-- over the same envelopes clicklake's log holds (received_at, source, protocol,
-- client IP, user agent, payload), one JSON object per line in log order:
--   1. Bronze: the raw payload copied, partitioned by the date received;
--   2. parse the Segment fields; contract failures → quarantine (no type or an
--      unknown one, no identity, track without event, unparseable timestamp);
--   3. event time by the Segment rule: received_at − (sentAt − originalTimestamp);
--   4. dedup by messageId, the first received wins; late = older than 72 h behind
--      the newest event time seen before it;
--   5. identity: user_key = userId, else the userId of the latest event (by event
--      time) carrying both ids, else 'anon:' || anonymousId;
--   6. sessions per user_key over activity events (track, page, screen), 30-minute
--      gap, id from (user_key, start); identify/group/alias take the session whose
--      [start, end + 30 min] holds them; a late activity event is a session of its own;
--   7. Silver: Parquet partitioned by event_date.
-- What it does not do that clicklake's Silver does: user-agent parsing, IP geo, PII
-- hashing, prop_ flattening, Delta commits, state for the next batch. See README.md.
-- @ENVELOPES@ and @OUT@ are replaced by run.sh.
SET TimeZone = 'UTC';
CREATE TABLE raw AS
SELECT row_number() OVER () AS rn, make_timestamp(received_at_us) AS received_at, source, protocol, client_ip,
       user_agent, payload
FROM read_json('@ENVELOPES@', format = 'newline_delimited',
               columns = {received_at_us: 'BIGINT', source: 'VARCHAR', protocol: 'VARCHAR', client_ip: 'VARCHAR',
                          user_agent: 'VARCHAR', payload: 'JSON'});

-- 1. Bronze.
COPY (SELECT rn AS log_offset, received_at, CAST(received_at AS DATE) AS event_date, source, protocol, client_ip,
             user_agent, CAST(payload AS VARCHAR) AS payload
      FROM raw)
TO '@OUT@/bronze' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (event_date));

-- 2. Parse (one JSON parse per payload for all paths).
CREATE TABLE parsed AS
SELECT rn, received_at, source, client_ip, user_agent,
       j[1] AS message_id, lower(j[2]) AS event_type, j[3] AS event, j[4] AS user_id,
       coalesce(j[5], CASE WHEN lower(j[2]) = 'alias' THEN j[6] END) AS anonymous_id,
       j[7] AS ts_text, j[8] AS orig_text, j[9] AS sent_text,
       j[10] AS page_url, j[11] AS page_path, j[12] AS page_title, j[13] AS referrer_url,
       j[14] AS utm_source, j[15] AS utm_medium, j[16] AS utm_campaign, j[17] AS utm_term, j[18] AS utm_content,
       try_cast(coalesce(j[19], j[20]) AS DOUBLE) AS revenue, j[21] AS currency, j[22] AS library,
       j[23] AS device_type, j[24] AS locale, properties
FROM (SELECT rn, received_at, source, client_ip, user_agent,
             json_extract_string(payload, ['$.messageId', '$.type', '$.event', '$.userId', '$.anonymousId',
                                           '$.previousId', '$.timestamp', '$.originalTimestamp', '$.sentAt',
                                           '$.context.page.url', '$.context.page.path', '$.context.page.title',
                                           '$.context.page.referrer', '$.context.campaign.source',
                                           '$.context.campaign.medium', '$.context.campaign.name',
                                           '$.context.campaign.term', '$.context.campaign.content',
                                           '$.properties.revenue', '$.properties.total', '$.properties.currency',
                                           '$.context.library.name', '$.context.device.type',
                                           '$.context.locale']) AS j,
             coalesce(json_extract(payload, '$.properties'), json_extract(payload, '$.traits')) AS properties
      FROM raw);

CREATE TABLE checked AS
SELECT *,
       CASE WHEN event_type IS NULL THEN 'missing_type'
            WHEN event_type NOT IN ('track', 'page', 'screen', 'identify', 'group', 'alias') THEN 'unknown_type'
            WHEN event_type = 'track' AND coalesce(trim(event), '') = '' THEN 'missing_event'
            WHEN (ts_text IS NOT NULL AND ts IS NULL) OR (orig_text IS NOT NULL AND orig IS NULL)
              OR (sent_text IS NOT NULL AND sent IS NULL) THEN 'bad_timestamp'
            WHEN user_id IS NULL AND anonymous_id IS NULL THEN 'no_identity' END AS error_code
FROM (SELECT *, CAST(try_cast(ts_text AS TIMESTAMPTZ) AS TIMESTAMP) AS ts,
             CAST(try_cast(orig_text AS TIMESTAMPTZ) AS TIMESTAMP) AS orig,
             CAST(try_cast(sent_text AS TIMESTAMPTZ) AS TIMESTAMP) AS sent
      FROM parsed);

COPY (SELECT rn AS log_offset, received_at, CAST(received_at AS DATE) AS received_date, error_code, message_id,
             event_type, user_id, anonymous_id
      FROM checked WHERE error_code IS NOT NULL)
TO '@OUT@/quarantine' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (received_date));

-- 3 + 4. Event time, dedup (first received wins), late.
CREATE TABLE dedup AS
SELECT *,
       coalesce(event_ts < max(event_ts) OVER (ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                           - INTERVAL 72 HOUR, false) AS is_late
FROM (SELECT * EXCLUDE (ts_text, orig_text, sent_text, error_code, message_id),
             coalesce(message_id, 'ingest:' || rn) AS event_id,
             coalesce(orig, ts) AS original_ts, sent AS sent_at,
             CASE WHEN coalesce(orig, ts) IS NOT NULL AND sent IS NOT NULL THEN received_at - (sent - coalesce(orig, ts))
                  ELSE coalesce(orig, ts, received_at) END AS event_ts
      FROM checked WHERE error_code IS NULL
      QUALIFY row_number() OVER (PARTITION BY coalesce(message_id, 'ingest:' || rn) ORDER BY rn) = 1);

-- 5. Identity: the latest link by event time.
CREATE TABLE links AS
SELECT anonymous_id, arg_max(user_id, event_ts) AS linked_user_id
FROM dedup WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL GROUP BY anonymous_id;
CREATE TABLE keyed AS
SELECT d.*, coalesce(d.user_id, l.linked_user_id, 'anon:' || d.anonymous_id) AS user_key
FROM dedup d LEFT JOIN links l ON d.anonymous_id = l.anonymous_id;

-- 6. Sessions over the stitched key.
CREATE TABLE act AS
WITH a AS (
  SELECT rn, user_key, event_ts, event_id, epoch_us(event_ts) AS ts,
         epoch_us(event_ts) - lag(epoch_us(event_ts)) OVER (PARTITION BY user_key ORDER BY event_ts, event_id) AS gap
  FROM keyed WHERE event_type IN ('track', 'page', 'screen') AND NOT is_late),
b AS (
  SELECT *, sum(CASE WHEN gap IS NULL OR gap > 1800000000 THEN 1 ELSE 0 END)
              OVER (PARTITION BY user_key ORDER BY event_ts, event_id ROWS UNBOUNDED PRECEDING) AS sn
  FROM a)
SELECT rn, user_key, min(ts) OVER (PARTITION BY user_key, sn) AS s_start, max(ts) OVER (PARTITION BY user_key, sn) AS s_end,
       row_number() OVER (PARTITION BY user_key, sn ORDER BY event_ts, event_id) AS session_event_index
FROM b;
CREATE TABLE spans AS
SELECT DISTINCT user_key, s_start, s_end, left(sha256(user_key || '|' || s_start::VARCHAR), 32) AS session_id FROM act;
CREATE TABLE other AS  -- identify, group, alias: the session whose span (+ timeout) holds them
SELECT k.rn, CASE WHEN epoch_us(k.event_ts) <= sp.s_end + 1800000000 THEN sp.session_id END AS session_id
FROM (SELECT rn, user_key, event_ts FROM keyed WHERE event_type NOT IN ('track', 'page', 'screen') AND NOT is_late) k
ASOF LEFT JOIN spans sp ON k.user_key = sp.user_key AND epoch_us(k.event_ts) >= sp.s_start;

-- 7. Silver.
CREATE TABLE silver_events AS
SELECT k.event_id, k.event_type,
       CASE k.event_type WHEN 'page' THEN 'page_viewed' WHEN 'screen' THEN 'screen_viewed'
            WHEN 'track' THEN trim(regexp_replace(lower(k.event), '[^a-z0-9]+', '_', 'g'), '_') ELSE k.event_type END
         AS event_name,
       k.event_ts, k.original_ts, k.sent_at, k.received_at, CAST(k.event_ts AS DATE) AS event_date, k.user_id,
       k.anonymous_id, k.user_key,
       CASE WHEN k.is_late AND k.event_type IN ('track', 'page', 'screen')
              THEN left(sha256(k.user_key || '|' || epoch_us(k.event_ts)::VARCHAR), 32)
            ELSE coalesce(sp.session_id, o.session_id) END AS session_id,
       CASE WHEN k.is_late AND k.event_type IN ('track', 'page', 'screen') THEN 1 ELSE a.session_event_index END
         AS session_event_index,
       k.page_url, k.page_path, k.page_title, k.referrer_url, k.utm_source, k.utm_medium, k.utm_campaign, k.utm_term,
       k.utm_content, k.revenue, k.currency, k.library, k.device_type, k.locale, k.client_ip, k.user_agent,
       k.properties, k.source, k.is_late, k.rn AS log_offset
FROM keyed k
LEFT JOIN act a ON a.rn = k.rn
LEFT JOIN spans sp ON sp.user_key = a.user_key AND sp.s_start = a.s_start
LEFT JOIN other o ON o.rn = k.rn;
COPY silver_events TO '@OUT@/silver' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (event_date));

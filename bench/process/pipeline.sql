-- The DuckDB baseline: read_json of the simulated events → dedup by messageId
-- (first received wins) → sessionize (30-minute gap) with window functions →
-- Parquet partitioned by event_date. @EVENTS@ and @OUT@ are replaced by run.sh.
SET TimeZone = 'UTC';
CREATE TABLE raw AS
SELECT row_number() OVER () AS rn, *
FROM read_json('@EVENTS@', format = 'newline_delimited',
               columns = {messageId: 'VARCHAR', type: 'VARCHAR', event: 'VARCHAR', userId: 'VARCHAR',
                          anonymousId: 'VARCHAR', "timestamp": 'VARCHAR', sentAt: 'VARCHAR',
                          properties: 'JSON', context: 'JSON'});
CREATE TABLE dedup AS
SELECT * FROM raw
WHERE type IS NOT NULL AND coalesce(userId, anonymousId) IS NOT NULL
  AND try_cast("timestamp" AS TIMESTAMPTZ) IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY messageId ORDER BY rn) = 1;
CREATE TABLE sessions AS
WITH t AS (
  SELECT *, coalesce(userId, 'anon:' || anonymousId) AS user_key,
         CAST(try_cast("timestamp" AS TIMESTAMPTZ) AS TIMESTAMP) AS event_ts
  FROM dedup),
g AS (
  SELECT *, CASE WHEN lag(event_ts) OVER w IS NULL
                   OR event_ts - lag(event_ts) OVER w > INTERVAL 30 MINUTE THEN 1 ELSE 0 END AS new_session
  FROM t WINDOW w AS (PARTITION BY user_key ORDER BY event_ts, messageId))
SELECT * EXCLUDE (new_session),
       md5(user_key || ':' || sum(new_session) OVER (PARTITION BY user_key ORDER BY event_ts, messageId
                                                     ROWS UNBOUNDED PRECEDING)) AS session_id,
       row_number() OVER (PARTITION BY user_key ORDER BY event_ts, messageId) AS user_event_index,
       CAST(event_ts AS DATE) AS event_date
FROM g;
COPY (SELECT * EXCLUDE (rn) FROM sessions) TO '@OUT@' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (event_date));

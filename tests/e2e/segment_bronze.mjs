// The real Segment Node client sends identify/track/page calls to `clicklake up`;
// exactly those events must land in bronze.events. A wrong write key gets 401,
// a body that is not JSON gets 400, and neither reaches the log.
import { Analytics } from '@segment/analytics-node';
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempLake, removeLake, startService, stopService, sql, check } from './lib.mjs';

const lake = tempLake();
const service = await startService('up', ['--lake', lake, '--trigger', '1s', '--write-key', 'e2e-key=web']);
const host = `http://127.0.0.1:${service.port}`;
try {
  const analytics = new Analytics({ writeKey: 'e2e-key', host, maxEventsInBatch: 7, flushInterval: 200 });
  const errors = [];
  analytics.on('error', (e) => errors.push(e));
  const sent = [];
  const userIds = ['u-1', 'u-2', 'u-3'];
  for (let i = 0; i < 40; i++) {
    const userId = userIds[i % 3];
    const messageId = randomUUID();
    sent.push(messageId);
    if (i % 10 === 0) {
      analytics.identify({ userId, messageId, traits: { plan: i % 20 ? 'pro' : 'free', email: `${userId}@example.com` } });
    } else if (i % 3 === 0) {
      analytics.page({ userId, messageId, name: 'Home', properties: { url: 'https://shop.example/', path: '/' } });
    } else {
      analytics.track({ userId, messageId, event: 'Product Viewed', properties: { product_id: `p-${i}`, price: 9.99 } });
    }
  }
  await analytics.closeAndFlush({ timeout: 20000 });
  check(errors.length === 0, 'client errors: ' + errors.map(String).join('; '));

  const auth = (key) => 'Basic ' + Buffer.from(key + ':').toString('base64');
  const bad = await fetch(`${host}/v1/batch`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: auth('wrong-key') },
    body: JSON.stringify({ batch: [{ type: 'track', event: 'Nope', userId: 'x', messageId: 'bad-key-event' }] }),
  });
  check(bad.status === 401, `wrong write key: expected 401, got ${bad.status}`);
  const notJson = await fetch(`${host}/v1/batch`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: auth('e2e-key') },
    body: '{"batch": [ this is not json',
  });
  check(notJson.status === 400, `invalid JSON: expected 400, got ${notJson.status}`);

  await stopService(service);  // the processor drains what the collector acknowledged

  const rows = sql(lake, `SELECT json_extract_string(payload, '$.messageId') AS id, protocol, source
                          FROM bronze.events ORDER BY id`);
  const got = rows.map((r) => r.id);
  const want = [...sent].sort();
  check(got.length === want.length, `bronze.events has ${got.length} rows, sent ${want.length}`);
  check(JSON.stringify(got) === JSON.stringify(want), 'bronze.events messageIds differ from those sent');
  check(rows.every((r) => r.protocol === 'segment' && r.source === 'web'), 'protocol/source columns');
  // The table's first commit: commitInfo first, protocol 3/7 with deletion vectors (DESIGN.md §5),
  // metaData with a Spark-style schemaString and delta.enableDeletionVectors.
  const log0 = readFileSync(join(lake, 'bronze/events/_delta_log/00000000000000000000.json'), 'utf8')
    .trim().split('\n').map((l) => JSON.parse(l));
  check(Object.keys(log0[0])[0] === 'commitInfo', 'first action of version 0 is commitInfo');
  const protocol = log0.find((a) => a.protocol)?.protocol;
  check(protocol && protocol.minReaderVersion === 3 && protocol.minWriterVersion === 7 &&
    JSON.stringify(protocol.readerFeatures) === '["deletionVectors"]' &&
    JSON.stringify(protocol.writerFeatures) === '["deletionVectors"]', 'protocol 3/7 with deletionVectors');
  const meta = log0.find((a) => a.metaData)?.metaData;
  check(meta && meta.configuration['delta.enableDeletionVectors'] === 'true', 'delta.enableDeletionVectors');
  check(meta && typeof meta.schemaString === 'string', 'metaData.schemaString is a string');
  const schema = JSON.parse(meta.schemaString);
  check(schema.type === 'struct', 'schemaString is a struct');
  const types = Object.fromEntries(schema.fields.map((f) => [f.name, f.type]));
  for (const [name, type] of Object.entries({ ingest_id: 'string', received_at: 'timestamp', event_date: 'date',
    source: 'string', protocol: 'string', client_ip: 'string', user_agent: 'string', payload: 'string',
    log_partition: 'integer', log_offset: 'long' })) {
    check(types[name] === type, `bronze.events column ${name}: ${types[name]} (want ${type})`);
  }
  check(schema.fields.every((f) => typeof f.nullable === 'boolean' && typeof f.metadata === 'object'), 'field shape');
  check(JSON.stringify(meta.partitionColumns) === '["event_date"]', 'partitioned by event_date');
  // Each micro-batch commit reports what it wrote, in Spark's metric names.
  const logDir = join(lake, 'bronze/events/_delta_log');
  const commits = readdirSync(logDir).filter((f) => /^\d{20}\.json$/.test(f))
    .map((f) => readFileSync(join(logDir, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l))[0].commitInfo);
  const streamed = commits.filter((c) => c.operation === 'STREAMING UPDATE');
  check(streamed.length >= 1, 'streaming commits');
  const rowsReported = streamed.reduce((n, c) => n + Number(c.operationMetrics.numOutputRows), 0);
  check(rowsReported === sent.length, `operationMetrics.numOutputRows adds up to ${rowsReported}`);
  check(streamed.every((c) => Number(c.operationMetrics.numFiles) >= 1 && Number(c.operationMetrics.numOutputBytes) > 0),
    'numFiles and numOutputBytes');
  // The data files are plain Parquet: DuckDB reads them directly, without the Delta log.
  const plain = sql(lake, `SELECT count(*) AS n FROM read_parquet('${lake}/bronze/events/**/*.parquet')`);
  check(plain[0].n === sent.length, `plain read_parquet sees ${plain[0].n} rows`);
  console.log(`ok: ${got.length} events sent by @segment/analytics-node are in bronze.events exactly once`);
} catch (e) {
  service.child.kill('SIGKILL');
  throw e;
} finally {
  removeLake(lake);
}

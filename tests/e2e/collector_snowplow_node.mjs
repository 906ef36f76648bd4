// E2E: @snowplow/node-tracker → collector (POST tp2 and GET /i) → log. Every
// event the tracker emitted (identified by its eid) must be in the log exactly
// once, with protocol "snowplow" and the source mapped from its app id.
import { newTracker, buildPageView, buildStructEvent, buildSelfDescribingEvent, buildPagePing } from '@snowplow/node-tracker';
import { runE2E, readLog, checkExactlyOnce } from './collector_harness.mjs';

const args = ['--set', 'collector.snowplow_app_ids.e2e-node-post=node-app', '--set',
              'collector.snowplow_app_ids.e2e-node-get=node-app-get'];

await runE2E('collector_snowplow_node', args, async (server) => {
  const failures = [];
  const emitter = (method) => ({
    endpoint: '127.0.0.1', protocol: 'http', port: server.port, eventMethod: method, bufferSize: method === 'post' ? 10 : 1,
    // The tracker gives up on a request after 5 s by default and sends it again: on a loaded
    // machine a durable ack can take that long, and the stored first copy is then doubled.
    connectionTimeout: 20000,
    onRequestFailure: (f) => failures.push(`${method}: ${JSON.stringify(f).slice(0, 300)}`),
  });
  const post = newTracker({ namespace: 'e2e-post', appId: 'e2e-node-post', encodeBase64: false }, emitter('post'));
  const get = newTracker({ namespace: 'e2e-get', appId: 'e2e-node-get', encodeBase64: true }, emitter('get'));
  const ids = [];
  const keep = (payload) => { if (payload && payload.eid) ids.push(payload.eid); };
  for (const tracker of [post, get]) {
    tracker.setDomainUserId('duid-e2e');
    for (let i = 0; i < 12; i++) {
      keep(tracker.track(buildPageView({ pageUrl: `https://shop.example/p/${i}?q=a+b&x=%C3%A9`, pageTitle: `Product ${i}` })));
      keep(tracker.track(buildStructEvent({ category: 'shop', action: 'add-to-basket', label: `sku-${i}`, value: i })));
    }
    keep(tracker.track(buildSelfDescribingEvent({
      event: { schema: 'iglu:com.example/checkout/jsonschema/1-0-0', data: { total: 42.5, currency: 'EUR', note: 'ünïcode "quoted"' } },
    })));
    keep(tracker.track(buildPagePing({ pageUrl: 'https://shop.example/', minXOffset: 0, maxXOffset: 10, minYOffset: 0, maxYOffset: 400 })));
  }
  // The emitters send asynchronously; flush until everything is acknowledged (or 30 s pass).
  let records = [];
  let problems = [];
  const deadline = Date.now() + 30000;
  do {
    await post.flush();
    await get.flush();
    await new Promise((r) => setTimeout(r, 100));
    records = readLog(server);
    problems = checkExactlyOnce(records, ids, (r) => r.payload.eid);
  } while (problems.length && Date.now() < deadline);
  const metrics = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  const requests = metrics.split('\n').filter((l) => l.startsWith('clicklake_collector_requests_total'));
  problems.push(...failures);
  for (const r of records) {
    const expected = r.payload.aid === 'e2e-node-post' ? 'node-app' : 'node-app-get';
    if (r.protocol !== 'snowplow' || r.source !== expected) problems.push(`bad record ${JSON.stringify(r).slice(0, 300)}`);
    for (const [k, v] of Object.entries(r.payload)) {
      if (typeof v !== 'string') problems.push(`non-string value ${k} in ${r.payload.eid}`);
    }
  }
  const viaGet = records.filter((r) => r.payload.aid === 'e2e-node-get').length;
  console.log(`collector_snowplow_node: sent ${ids.length}, stored ${records.length} (${viaGet} via GET /i)`);
  if (problems.length) console.log(requests.join('\n'));
  if (ids.length !== 52) problems.push(`expected 52 tracked events, the tracker returned ${ids.length} payloads`);
  return problems.slice(0, 20);
});

// E2E: @segment/analytics-node → collector → log. Every event the SDK sent
// (track, page, screen, identify, group, alias; flushed in batches) must be in
// the log exactly once, with protocol "segment" and the write key's source.
import { Analytics } from '@segment/analytics-node';
import { runE2E, readLog, checkExactlyOnce } from './collector_harness.mjs';

await runE2E('collector_segment', ['--write-key', 'wk_e2e_segment=node-server'], async (server) => {
  const analytics = new Analytics({
    writeKey: 'wk_e2e_segment',
    host: `http://127.0.0.1:${server.port}`,
    flushAt: 15,
    flushInterval: 200,
    maxRetries: 5,
  });
  const errors = [];
  analytics.on('error', (e) => errors.push(e));
  const ids = [];
  const id = (kind, i) => { const m = `seg-${kind}-${i}`; ids.push(m); return m; };
  for (let i = 0; i < 60; i++) {
    analytics.track({ userId: `user-${i % 7}`, event: 'Product Viewed', messageId: id('track', i),
                      properties: { sku: `SKU-${i}`, price: 9.99 + i, e2e: true } });
  }
  for (let i = 0; i < 10; i++) {
    analytics.page({ anonymousId: `anon-${i}`, name: 'Home', messageId: id('page', i), properties: { path: '/' } });
    analytics.screen({ userId: `user-${i}`, name: 'Cart', messageId: id('screen', i) });
    analytics.identify({ userId: `user-${i}`, traits: { plan: 'pro' }, messageId: id('identify', i) });
  }
  analytics.group({ userId: 'user-1', groupId: 'acme', messageId: id('group', 0) });
  analytics.alias({ userId: 'user-1', previousId: 'anon-1', messageId: id('alias', 0) });
  await analytics.closeAndFlush({ timeout: 30000 });

  const records = readLog(server);
  const problems = checkExactlyOnce(records, ids, (r) => r.payload.messageId);
  if (errors.length) problems.push(`SDK errors: ${errors.map((e) => JSON.stringify(e)).join('; ')}`);
  for (const r of records) {
    if (r.protocol !== 'segment' || r.source !== 'node-server') problems.push(`bad record ${JSON.stringify(r)}`);
    if (!r.payload.context || !r.payload.context.library) problems.push(`no merged context in ${r.payload.messageId}`);
    if (!r.payload.sentAt && !r.payload.timestamp) problems.push(`no client time in ${r.payload.messageId}`);
  }
  console.log(`collector_segment: sent ${ids.length}, stored ${records.length}`);
  return problems.slice(0, 20);
});

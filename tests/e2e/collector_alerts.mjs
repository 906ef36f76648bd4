// E2E: the collector's own alerts when it runs alone (`clicklake collect`, no processor):
// ClicklakeCollectorShedding fires when it sheds events and resolves at the next evaluation
// without any, and so does ClicklakeCollector5xx (the shedding answer is a 503);
// ClicklakeDiskNearlyFull fires below alerts.disk_free_ratio. Both reach a local
// webhook (Alertmanager format) that answers 500 first (the notification is retried) and are
// recorded in system.alerts.
import http from 'node:http';
import { tempLake, removeLake, startService, stopService, sql, check } from './lib.mjs';

// The webhook receiver: 127.0.0.1 only, the first POST answered 500.
const posts = [];
let requests = 0;
const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    requests++;
    if (requests === 1) { res.writeHead(500); res.end(); return; }
    posts.push(JSON.parse(body));
    res.writeHead(200); res.end('{}');
  });
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const hook = `http://127.0.0.1:${server.address().port}/hook`;

const notified = (name, status) => posts.some((p) => p.status === status && p.alerts.some((a) => a.labels.alertname === name));
async function waitFor(what, cond, ms = 20000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; received: ${JSON.stringify(posts)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const work = tempLake();
try {
  const collector = await startService('collect', ['--lake', `${work}/lake`, '--write-key', 'al-key=web',
    '--set', `alerts.webhook.url=${hook}`, '--set', 'alerts.interval=500ms', '--set', 'alerts.backoff=100ms',
    // Every file system has less than 100% free: the disk alert fires.
    '--set', 'alerts.disk_free_ratio=1.0',
    // Low-priority events (debug, heartbeats) are shed from the first one on.
    '--set', 'collector.queue_high_water=0']);
  try {
    await waitFor('ClicklakeDiskNearlyFull firing', () => notified('ClicklakeDiskNearlyFull', 'firing'));
    check(!notified('ClicklakeCollectorShedding', 'firing'), 'no shedding alert before anything was shed');
    const now = new Date().toISOString();
    const res = await fetch(`http://127.0.0.1:${collector.port}/v1/batch`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Basic ' + Buffer.from('al-key:').toString('base64') },
      body: JSON.stringify({ batch: [
        { type: 'track', event: 'Debug Heartbeat', userId: 'u1', messageId: 'al-1', timestamp: now },
        { type: 'track', event: 'Product Viewed', userId: 'u1', messageId: 'al-2', timestamp: now },
      ] }),
    });
    // The collector stores the product view and answers 503 for the shed debug event.
    const answer = await res.text();
    check(res.status === 503 && answer.includes('1 low-priority events shed'), `shed: ${res.status} ${answer}`);
    await waitFor('ClicklakeCollectorShedding firing', () => notified('ClicklakeCollectorShedding', 'firing'));
    await waitFor('ClicklakeCollectorShedding resolved', () => notified('ClicklakeCollectorShedding', 'resolved'));
    await waitFor('ClicklakeCollector5xx resolved', () => notified('ClicklakeCollector5xx', 'resolved'));
  } finally {
    await stopService(collector);
  }
  check(requests > posts.length, `the webhook's 500 was retried (${requests} requests, ${posts.length} accepted)`);
  const shed = posts.find((p) => p.alerts.some((a) => a.labels.alertname === 'ClicklakeCollectorShedding'));
  check(shed.version === '4' && shed.alerts[0].labels.severity === 'warning' &&
        shed.alerts[0].annotations.runbook_url.includes('collector-down-or-shedding'),
    `Alertmanager shape: ${JSON.stringify(shed)}`);
  const rows = sql(`${work}/lake`, 'SELECT alertname, status FROM system.alerts ORDER BY notified_at');
  const seen = new Set(rows.map((r) => `${r.alertname}:${r.status}`));
  for (const want of ['ClicklakeDiskNearlyFull:firing', 'ClicklakeCollectorShedding:firing', 'ClicklakeCollectorShedding:resolved',
                      'ClicklakeCollector5xx:firing', 'ClicklakeCollector5xx:resolved'])
    check(seen.has(want), `system.alerts has ${want}: ${JSON.stringify(rows)}`);
  console.log(`collector_alerts: ${posts.length} notifications (${requests} requests): ${[...seen].join(", ")}`);
} finally {
  server.close();
  removeLake(work);
}

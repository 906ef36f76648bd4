// E2E: @snowplow/browser-tracker in headless Debian chromium (driven by
// playwright-core) → collector → log. A page served on a different loopback
// origin loads the tracker's self-contained UMD bundle (dist/index.umd.min.js,
// no bundler) and sends events with two trackers: POST tp2 (CORS preflight +
// credentials) and GET /i (pixel). Every event must be stored exactly once.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import { runE2E, readLog, checkExactlyOnce } from './collector_harness.mjs';

const require = createRequire(import.meta.url);
const trackerDir = dirname(dirname(require.resolve('@snowplow/browser-tracker/package.json')));
const bundle = readFileSync(join(trackerDir, 'browser-tracker', 'dist', 'index.umd.min.js'));

const N = 8;  // page views and structured events per tracker

function page(collectorPort) {
  return `<!doctype html><html><head><title>clicklake e2e</title><script src="/sp.js"></script></head><body>
<script>
  const sp = window.snowplowBrowserTracking;
  const endpoint = 'http://127.0.0.1:${collectorPort}';
  sp.newTracker('post', endpoint, { appId: 'e2e-browser', eventMethod: 'post', bufferSize: 1, encodeBase64: false,
                                     platform: 'web', stateStorageStrategy: 'none' });
  sp.newTracker('get', endpoint, { appId: 'e2e-browser-get', eventMethod: 'get', encodeBase64: true,
                                    platform: 'web', stateStorageStrategy: 'none' });
  for (const t of ['post', 'get']) {
    for (let i = 0; i < ${N}; i++) {
      sp.trackPageView({ title: t + '-pv-' + i }, [t]);
      sp.trackStructEvent({ category: 'shop', action: 'add-to-basket', label: t + '-se-' + i, value: i }, [t]);
    }
    sp.trackSelfDescribingEvent({ event: { schema: 'iglu:com.example/checkout/jsonschema/1-0-0',
                                           data: { id: t + '-ue-0', total: 42.5, note: 'ünïcode' } } }, [t]);
  }
  window.e2eDone = true;
</script></body></html>`;
}

function idOf(record) {
  const p = record.payload;
  if (p.e === 'pv') return p.page;
  if (p.e === 'se') return p.se_la;
  if (p.e === 'ue') {
    const text = p.ue_pr || Buffer.from((p.ue_px || '').replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
    try { return JSON.parse(text).data.data.id; } catch { return `unparseable ue: ${text.slice(0, 80)}`; }
  }
  return `unexpected event type ${p.e}`;
}

const args = ['--set', 'collector.snowplow_app_ids.e2e-browser=browser', '--set',
              'collector.snowplow_app_ids.e2e-browser-get=browser-get'];

await runE2E('collector_snowplow_browser', args, async (server) => {
  const site = createServer((req, res) => {
    if (req.url === '/sp.js') {
      res.writeHead(200, { 'Content-Type': 'application/javascript' });
      res.end(bundle);
    } else if (req.url === '/' || req.url.startsWith('/?')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(page(server.port));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  const sitePort = site.address().port;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--no-first-run'],
  });
  const ids = [];
  for (const t of ['post', 'get']) {
    for (let i = 0; i < N; i++) ids.push(`${t}-pv-${i}`, `${t}-se-${i}`);
    ids.push(`${t}-ue-0`);
  }
  const consoleErrors = [];
  let records = [];
  let problems = [];
  try {
    const tab = await browser.newPage();
    tab.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    await tab.goto(`http://127.0.0.1:${sitePort}/`);
    await tab.waitForFunction(() => window.e2eDone === true, null, { timeout: 20000 });
    // The trackers send asynchronously: wait until everything is acknowledged (or 30 s pass).
    const deadline = Date.now() + 30000;
    do {
      await new Promise((r) => setTimeout(r, 200));
      records = readLog(server);
      problems = checkExactlyOnce(records, ids, idOf);
    } while (problems.length && Date.now() < deadline);
    // Let late duplicates (retries) show up before the final count.
    await new Promise((r) => setTimeout(r, 500));
    records = readLog(server);
    problems = checkExactlyOnce(records, ids, idOf);
  } finally {
    await browser.close();
    site.close();
  }
  for (const r of records) {
    const expected = r.payload.aid === 'e2e-browser' ? 'browser' : 'browser-get';
    if (r.protocol !== 'snowplow' || r.source !== expected) problems.push(`bad record ${JSON.stringify(r).slice(0, 300)}`);
    if (!r.user_agent.includes('Chrome')) problems.push(`no browser user agent: ${r.user_agent}`);
  }
  if (problems.length && consoleErrors.length) problems.push(`browser console: ${consoleErrors.slice(0, 5).join(' | ')}`);
  const viaGet = records.filter((r) => r.payload.aid === 'e2e-browser-get').length;
  console.log(`collector_snowplow_browser: sent ${ids.length}, stored ${records.length} (${viaGet} via GET /i)`);
  return problems.slice(0, 20);
});

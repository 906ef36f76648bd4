// E2E: the status page (`clicklake up --api-port`, GET /status) in headless Chromium.
//
// A dataset's badge, as a user watching the page sees it (the page reloads itself):
//   UNKNOWN before any event → READY once events are processed → LATE after the processor is
//   stopped past the SLA (the page is then served by `clicklake collect`, which has no
//   processor) → FAILED after an error-severity check fails (`up` again, a broken event) →
//   READY again with the next good batch.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { bin, check, removeLake, tempLake } from './lib.mjs';

const SLA_SECONDS = 15;
const lake = tempLake();
const configPath = join(lake, '..', `${lake.split('/').pop()}.toml`);
writeFileSync(configPath, `
[quality]
defaults = false
max_lag = "${SLA_SECONDS}s"

[[quality.checks]]
name = "no_broken_orders"
type = "sql"
severity = "error"
sql = "SELECT event_id FROM batch_events WHERE event_name = 'broken_order'"
`);

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

// Starts `clicklake <mode>` and resolves with the collector's port once both servers listen.
function start(mode, apiPort) {
  return new Promise((resolve, reject) => {
    const args = [mode, '--lake', lake, '--config', configPath, '--port', '0', '--api-port', String(apiPort),
                  '--write-key', 'wk=web', '--set', 'api.status_refresh=1'];
    if (mode === 'up') args.push('--trigger', '1s');
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${mode} did not start:\n${output}`)); }, 30000);
    const onData = (d) => {
      output += d.toString();
      const m = output.match(/collector listening on port (\d+)/);
      if (m && output.includes('api server listening')) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), output: () => output });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${mode} exited (${code}):\n${output}`)); });
  });
}

function stop(service) {
  return new Promise((resolve, reject) => {
    service.child.removeAllListeners('exit');
    const timer = setTimeout(() => { service.child.kill('SIGKILL'); reject(new Error('did not stop')); }, 60000);
    service.child.on('exit', (code) => {
      clearTimeout(timer);
      code === 0 ? resolve() : reject(new Error(`exited with ${code}:\n${service.output()}`));
    });
    service.child.kill('SIGTERM');
  });
}

let seq = 0;
async function send(collectorPort, eventName) {
  const batch = [];
  for (let i = 0; i < 3; i++) {
    batch.push({ type: 'track', event: eventName, userId: `u${i}`, messageId: `m-${seq++}`,
                 properties: { revenue: 10 } });
  }
  const res = await fetch(`http://127.0.0.1:${collectorPort}/v1/batch`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Basic ' + Buffer.from('wk:').toString('base64') },
    body: JSON.stringify({ batch }),
  });
  check(res.status === 200, `collector answered ${res.status}`);
}

// Keeps good events flowing (so freshness stays within the SLA) until stopped.
function heartbeat(collectorPort) {
  const timer = setInterval(() => { send(collectorPort, 'Product Viewed').catch(() => {}); }, 1500);
  return () => clearInterval(timer);
}

// page.goto, again when it races the page's own reload (net::ERR_ABORTED) or a server that just started.
async function open(page, url) {
  for (let attempt = 1; ; attempt++) {
    try {
      await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 10000 });
      return;
    } catch (e) {
      if (attempt >= 5) throw e;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

async function badge(page, dataset, status, timeout) {
  const row = `tr[data-dataset="${dataset}"][data-status="${status}"]`;
  try {
    await page.waitForSelector(row, { timeout });
  } catch (e) {
    const now = await page.locator(`tr[data-dataset="${dataset}"]`).first().textContent().catch(() => '(no row)');
    throw new Error(`${dataset} did not become ${status} within ${timeout} ms; the page shows: ${now}`);
  }
  return page.locator(row).first().textContent();
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--no-first-run'],
});
let service;
try {
  const apiPort = await freePort();
  const statusUrl = `http://127.0.0.1:${apiPort}/status`;
  service = await start('up', apiPort);
  const page = await browser.newPage();
  await open(page, statusUrl);
  check((await page.title()).startsWith('clicklake status'), 'page title');
  await badge(page, 'silver.events', 'UNKNOWN', 10000);

  // READY: events processed; the open page updates by itself.
  let stopBeat = heartbeat(service.port);
  await send(service.port, 'Product Viewed');
  let text = await badge(page, 'silver.events', 'READY', 60000);
  check(text.includes(`max lag ${SLA_SECONDS}s`) || text.includes('max lag'), `SLA shown: ${text}`);
  // The charts (the page reloads every second: wait for each rather than count once).
  for (const sel of ['svg#chart-events_per_minute polyline', 'svg#chart-batch_duration polyline',
                     'svg#chart-lag', 'svg#chart-quarantine_rate polyline']) {
    await page.waitForSelector(sel, { state: 'attached', timeout: 15000 }).catch(() => { throw new Error(`no ${sel} on the page`); });
  }

  // LATE: the processor stops; the collector (and the page) keep running.
  stopBeat();
  await stop(service);
  service = await start('collect', apiPort);
  await open(page, statusUrl);
  text = await badge(page, 'silver.events', 'LATE', (SLA_SECONDS + 30) * 1000);
  check(/exceeds the SLA/.test(text), `LATE gives the reason: ${text}`);
  await page.waitForSelector('#overall.LATE', { timeout: 5000 }).catch(() => { throw new Error('overall badge not LATE'); });

  // FAILED: the processor is back and a batch breaks the error-severity check.
  await stop(service);
  service = await start('up', apiPort);
  await open(page, statusUrl);
  await send(service.port, 'Broken Order');
  text = await badge(page, 'silver.events', 'FAILED', 60000);
  check(text.includes('no_broken_orders'), `FAILED names the check: ${text}`);

  // READY again: the next batches pass the check and keep freshness within the SLA.
  stopBeat = heartbeat(service.port);
  await badge(page, 'silver.events', 'READY', 60000);
  stopBeat();
  await stop(service);
  service = null;
  console.log('status page: UNKNOWN → READY → LATE → FAILED → READY');
} finally {
  await browser.close();
  if (service) await stop(service).catch(() => {});
  removeLake(lake);
  removeLake(configPath);
}

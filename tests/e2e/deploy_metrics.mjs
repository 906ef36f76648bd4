// E2E: every clicklake metric that deploy/ uses — in the Prometheus alerting rules and in the
// Grafana dashboard's PromQL — exists in the /metrics of a real `clicklake up` (collector port and
// API port) after a few micro-batches. A renamed metric fails here instead of leaving an alert
// that can never fire or a panel that stays empty.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, check, removeLake, tempLake } from './lib.mjs';

const root = join(process.cwd(), '..', '..');
const rules = readFileSync(join(root, 'deploy/prometheus/clicklake-alerts.yml'), 'utf8');
const dashboard = JSON.parse(readFileSync(join(root, 'deploy/grafana/clicklake-dashboard.json'), 'utf8'));
const exprs = [];
for (const panel of dashboard.panels) for (const t of panel.targets) exprs.push(t.expr);
for (const v of dashboard.templating.list) if (v.query && v.query.query) exprs.push(v.query.query);
check(exprs.length >= 10, 'the dashboard has its queries');
const used = new Set();
for (const text of [rules, ...exprs]) for (const m of text.matchAll(/\bclicklake_[a-z0-9_]+/g)) used.add(m[0]);
check(used.size >= 10, `metric names found in deploy/: ${[...used]}`);

const lake = tempLake();
const child = spawn(bin, ['up', '--lake', lake, '--port', '0', '--api-port', '0', '--trigger', '1s',
                          '--write-key', 'wk=web'], { stdio: ['ignore', 'pipe', 'pipe'] });
let output = '';
child.stdout.on('data', (d) => { output += d; });
child.stderr.on('data', (d) => { output += d; });
try {
  const deadline = Date.now() + 30000;
  while (!(/collector listening on port (\d+)/.test(output) && /api server listening on http:\/\/[0-9.]+:(\d+)/.test(output))) {
    check(Date.now() < deadline, 'clicklake up did not start:\n' + output);
    await new Promise((r) => setTimeout(r, 100));
  }
  const collectorPort = Number(output.match(/collector listening on port (\d+)/)[1]);
  const apiPort = Number(output.match(/api server listening on http:\/\/[0-9.]+:(\d+)/)[1]);
  const auth = 'Basic ' + Buffer.from('wk:').toString('base64');
  for (let b = 0; b < 3; b++) {
    const batch = [];
    for (let i = 0; i < 20; i++) batch.push({ type: 'track', event: 'Product Viewed', userId: `u${i}`, messageId: `m${b}-${i}` });
    const res = await fetch(`http://127.0.0.1:${collectorPort}/v1/batch`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: auth }, body: JSON.stringify({ batch }) });
    check(res.status === 200, `collector answered ${res.status}`);
    await new Promise((r) => setTimeout(r, 1500));
  }
  // Wait until the processor has committed batches (its metrics appear with the first one).
  let exposed = new Set();
  const until = Date.now() + 60000;
  while (true) {
    const texts = await Promise.all([collectorPort, apiPort].map(async (p) => (await fetch(`http://127.0.0.1:${p}/metrics`)).text()));
    exposed = new Set();
    for (const t of texts) for (const line of t.split('\n')) {
      const m = line.match(/^(?:# TYPE )?(clicklake_[a-z0-9_]+)/);
      if (m) exposed.add(m[1]);
    }
    const missing = [...used].filter((n) => !exposed.has(n));
    if (missing.length === 0) break;
    check(Date.now() < until, `metrics used in deploy/ but not exposed by clicklake: ${missing.join(', ')}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  console.log(`deploy/ uses ${used.size} clicklake metrics, all exposed: ${[...used].sort().join(', ')}`);
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  removeLake(lake);
}

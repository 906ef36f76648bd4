// Governed access as a user meets it: `clicklake sql --as/--token/--user` under the policy file beside
// the config, `clicklake audit verify`, and POST /api/v1/query with node's fetch against
// `clicklake up --api-port 0`.
import { spawnSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, tempLake, removeLake, startService, stopService, sql, check } from './lib.mjs';

const run = (...args) => spawnSync(bin, args, { encoding: 'utf8' });
const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const dir = tempLake();
try {
  const cfg = join(dir, 'clicklake.toml');
  const lake = join(dir, 'lake');
  let r = run('init', '--config', cfg, '--key-file', join(dir, 'pii.key'));
  check(r.status === 0, 'init: ' + r.stderr);
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('dir = "./lake"', `dir = "${lake}"`));
  // A user with a password: its verifier from `clicklake access password`.
  r = spawnSync(bin, ['access', 'password'], { encoding: 'utf8', input: 'pa:ss word\n' });
  check(r.status === 0 && r.stdout.startsWith('password = "SCRAM-SHA-256$4096:'), 'access password: ' + r.stdout + r.stderr);
  const verifier = r.stdout.trim();
  writeFileSync(join(dir, 'policy.toml'), `
[[principals]]
name = "ria"
role = "marketing"
${verifier}
attributes = { regions = "US" }

[[principals]]
name = "old"
role = "marketing"
disabled = true
${verifier}

[[principals]]
name = "mia"
role = "marketing"
token_sha256 = ["${sha256('tok-mia')}"]
attributes = { regions = "US" }

[[principals]]
name = "gone"
role = "analyst"
disabled = true
token_sha256 = ["${sha256('tok-gone')}"]

[[rules]]
role = "marketing"
table = "silver.events"
columns = ["event_id", "event_name", "user_id", "platform"]
masks = { user_id = "email_sha256" }
row_filter = "platform IN ('web')"

[[rules]]
role = "analyst"
table = "silver.events"
masks = { user_id = "redact" }
`);

  // A few events through collect + process --once.
  const collector = await startService('collect', ['--config', cfg, '--write-key', 'k1=app']);
  const batch = [];
  for (let i = 0; i < 12; i++) {
    batch.push({ type: 'track', event: 'Tapped', userId: `U${i % 3}`, messageId: `m${i}`,
      platform: i % 2 ? 'ios' : 'web' });
  }
  const resp = await fetch(`http://127.0.0.1:${collector.port}/v1/batch`, {
    method: 'POST', body: JSON.stringify({ batch }),
    headers: { 'content-type': 'application/json', authorization: 'Basic ' + Buffer.from('k1:').toString('base64') },
  });
  check(resp.status === 200, `collected (${resp.status})`);
  await stopService(collector);
  r = run('process', '--once', '--config', cfg);
  check(r.status === 0, 'process --once: ' + r.stderr);
  const all = sql(lake, 'SELECT platform, count(*) AS n FROM silver.events GROUP BY 1 ORDER BY 1');
  const web = all.filter((x) => x.platform === 'web').reduce((a, x) => a + x.n, 0);
  check(web > 0 && web < 12, 'silver.events has web and other rows: ' + JSON.stringify(all));

  // --as: masks and the row filter, below the user's SQL.
  r = run('sql', '--config', cfg, '--as', 'marketing', '--format', 'json',
    'SELECT * FROM silver.events ORDER BY event_id');
  check(r.status === 0, '--as marketing: ' + r.stderr);
  const rows = JSON.parse(r.stdout);
  check(rows.length === web, `marketing sees the web rows only (${rows.length} vs ${web})`);
  check(rows.every((x) => Object.keys(x).join(',') === 'event_id,event_name,user_id,platform'), 'granted columns');
  const expected = sha256('u0');
  check(rows.some((x) => x.user_id === expected), 'user_id as email_sha256 (lower-cased)');
  r = run('sql', '--config', cfg, '--as', 'marketing', '--format', 'csv',
    "SELECT count(*) AS n FROM silver.events WHERE user_id IN ('U0', 'U1', 'U2')");
  check(r.status === 0 && r.stdout === 'n\r\n0\r\n', 'a filter on a masked column sees masked values: ' + r.stdout);

  // --token: the policy file's principal; refusals are one line, exit 1, nothing printed.
  r = run('sql', '--config', cfg, '--token', 'tok-mia', '--format', 'csv', 'SELECT count(*) AS n FROM silver.events');
  check(r.status === 0 && r.stdout === `n\r\n${web}\r\n`, '--token tok-mia: ' + r.stdout + r.stderr);
  r = run('sql', '--config', cfg, '--token', 'tok-gone', 'SELECT 1');
  check(r.status === 1 && r.stderr.includes('revoked'), 'revoked token: ' + r.stderr);
  r = run('sql', '--config', cfg, '--as', 'marketing', "SELECT * FROM read_csv('/etc/passwd')");
  check(r.status === 1 && r.stdout === '' && r.stderr.includes('permission denied') &&
    r.stderr.trim().split('\n').length === 1, 'read_csv refused: ' + r.stderr);
  r = run('sql', '--config', cfg, '--as', 'marketing', 'SELECT * FROM bronze.events');
  check(r.status === 1 && r.stderr.includes('may not read bronze.events'), 'table not granted: ' + r.stderr);

  // --user: the password from CLICKLAKE_PASSWORD (no terminal here).
  const asUser = (user, password, query) => spawnSync(bin, ['sql', '--config', cfg, '--user', user, '--format', 'csv', query],
    { encoding: 'utf8', env: { ...process.env, CLICKLAKE_PASSWORD: password } });
  r = asUser('ria', 'pa:ss word', 'SELECT count(*) AS n FROM silver.events');
  check(r.status === 0 && r.stdout === `n\r\n${web}\r\n`, '--user ria: ' + r.stdout + r.stderr);
  r = asUser('ria', 'pa:ss', 'SELECT 1');
  check(r.status === 1 && r.stderr.includes('wrong user name or password'), 'wrong password: ' + r.stderr);
  r = asUser('nobody', 'pa:ss word', 'SELECT 1');
  check(r.status === 1 && r.stderr.includes('wrong user name or password'), 'unknown user: ' + r.stderr);
  r = asUser('old', 'pa:ss word', 'SELECT 1');
  check(r.status === 1 && r.stderr.includes('revoked'), 'revoked user: ' + r.stderr);
  const noPassword = { ...process.env };
  delete noPassword.CLICKLAKE_PASSWORD;
  r = spawnSync(bin, ['sql', '--config', cfg, '--user', 'ria', 'SELECT 1'],
    { encoding: 'utf8', env: noPassword, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  check(r.status === 1 && r.stderr.includes('CLICKLAKE_PASSWORD'), 'no password and no terminal: ' + r.stderr);
  // DESCRIBE / SHOW TABLES under the role: its grants only, masks shown.
  r = run('sql', '--config', cfg, '--as', 'marketing', '--format', 'csv', 'SHOW TABLES');
  check(r.status === 0 && r.stdout === 'schema,name\r\nsilver,events\r\n', 'SHOW TABLES as marketing: ' + r.stdout + r.stderr);
  r = run('sql', '--config', cfg, '--as', 'marketing', '--format', 'csv', 'DESCRIBE silver.events');
  check(r.status === 0 && r.stdout === 'column_name,column_type,null,mask\r\nevent_id,VARCHAR,NO,\r\n' +
    'event_name,VARCHAR,NO,\r\nuser_id,VARCHAR,YES,email_sha256\r\nplatform,VARCHAR,YES,\r\n', 'DESCRIBE: ' + r.stdout + r.stderr);

  // The API: bearer tokens, JSON and CSV, refusals as JSON errors.
  const up = await new Promise((resolve, reject) => {
    const child = spawn(bin, ['up', '--config', cfg, '--port', '0', '--api-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('no API port:\n' + out)); }, 20000);
    const onData = (d) => {
      out += d.toString();
      const m = out.match(/API server listening on port (\d+)/);
      if (m) { clearTimeout(timer); resolve({ child, port: Number(m[1]), output: () => out }); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
  });
  try {
    const url = `http://127.0.0.1:${up.port}/api/v1/query`;
    const post = (token, body) => fetch(url, {
      method: 'POST', body: JSON.stringify(body),
      headers: token ? { authorization: `Bearer ${token}`, 'content-type': 'application/json' } : {},
    });
    let res = await post(null, { sql: 'SELECT 1' });
    check(res.status === 401 && (await res.json()).error.code === 'missing_token', 'no token: 401');
    res = await post('tok-nope', { sql: 'SELECT 1' });
    check(res.status === 401 && (await res.json()).error.code === 'invalid_token', 'wrong token: 401');
    res = await post('tok-gone', { sql: 'SELECT 1' });
    check(res.status === 401 && (await res.json()).error.code === 'token_revoked', 'revoked token: 401');
    res = await post('tok-mia', { sql: 'SELECT platform, count(*) AS n FROM silver.events GROUP BY 1' });
    check(res.status === 200, 'query: ' + res.status);
    const json = await res.json();
    check(json.row_count === 1 && json.rows[0].platform === 'web' && json.rows[0].n === web, JSON.stringify(json));
    res = await post('tok-mia', { sql: 'SELECT event_id FROM silver.events ORDER BY 1', format: 'csv' });
    const csv = await res.text();
    check(res.headers.get('content-type').startsWith('text/csv') && csv.split('\r\n')[0] === 'event_id' &&
      csv.split('\r\n').length === web + 2, 'csv: ' + csv);
    const basic = (user, password) => fetch(url, {
      method: 'POST', body: JSON.stringify({ sql: 'SELECT count(*) AS n FROM silver.events' }),
      headers: { authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64'), 'content-type': 'application/json' },
    });
    res = await basic('ria', 'pa:ss word');
    check(res.status === 200 && (await res.json()).rows[0].n === web, 'basic auth: ' + res.status);
    res = await basic('ria', 'nope');
    check(res.status === 401 && (await res.json()).error.code === 'invalid_credentials', 'basic, wrong password: 401');
    res = await basic('nobody', 'pa:ss word');
    check(res.status === 401 && (await res.json()).error.code === 'invalid_credentials', 'basic, unknown user: 401');
    res = await basic('old', 'pa:ss word');
    check(res.status === 401 && (await res.json()).error.code === 'user_revoked', 'basic, revoked user: 401');
    res = await post('tok-mia', { sql: "COPY (SELECT 1) TO '/tmp/x.csv'" });
    check(res.status === 403 && (await res.json()).error.code === 'permission_denied', 'COPY refused: 403');
  } finally {
    await stopService(up);
  }

  // Everything above is in the audit chain, intact.
  r = run('audit', '--config', cfg, 'verify');
  check(r.status === 0 && /records, hash chain intact/.test(r.stdout), 'audit verify: ' + r.stdout + r.stderr);
  const audit = sql(lake, "SELECT role, outcome, count(*) AS n FROM system.audit GROUP BY ALL ORDER BY ALL");
  check(audit.some((x) => x.role === 'marketing' && x.outcome === 'denied'), 'denials audited: ' + JSON.stringify(audit));
  check(audit.some((x) => x.role === 'marketing' && x.outcome === 'ok'), 'queries audited');
  const logins = sql(lake, "SELECT principal, count(*) AS n FROM system.audit WHERE action = 'login' GROUP BY 1 ORDER BY 1");
  check(logins.map((x) => x.principal).join(',') === 'nobody,old,ria', 'failed logins audited: ' + JSON.stringify(logins));
  console.log('ok: access');
} finally {
  removeLake(dir);
}

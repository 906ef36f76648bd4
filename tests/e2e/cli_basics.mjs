// The command line's contract: init writes a parseable config and a 0600 key outside the lake;
// errors are one clear line and a non-zero exit; `process --once` on an empty lake is a no-op;
// `collect` then `process --once` on the same lake work together with no other setting.
import { spawnSync } from 'node:child_process';
import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, tempLake, removeLake, startService, stopService, sql, check } from './lib.mjs';

const run = (...args) => spawnSync(bin, args, { encoding: 'utf8' });
const dir = tempLake();
try {
  const cfg = join(dir, 'clicklake.toml');
  const key = join(dir, 'secrets', 'pii.key');
  let r = run('init', '--config', cfg, '--key-file', key);
  check(r.status === 0, 'init: ' + r.stderr);
  check((statSync(key).mode & 0o777) === 0o600, 'key file is 0600');
  check(/^[0-9a-f]{64}\n$/.test(readFileSync(key, 'utf8')), 'key is 32 random bytes in hex');
  check(readFileSync(cfg, 'utf8').includes('[collector.write_keys]'), 'config lists write keys');
  check(readFileSync(cfg, 'utf8').includes(`key_file = "${key}"`), 'config points at the key file');
  r = run('init', '--config', cfg, '--key-file', key);
  check(r.status !== 0 && r.stderr.includes('--force'), 'init refuses to overwrite without --force');

  r = run('sql', '--lake', dir, 'SELEKT 1');
  check(r.status === 1 && r.stderr.trim().split('\n').length === 1 && r.stderr.includes('syntax error'),
    'bad SQL: one line, exit 1: ' + r.stderr);
  r = run('sql', '--lake', dir, '--format', 'xml', 'SELECT 1');
  check(r.status === 2, 'unknown format is a usage error');
  r = run('process', '--once', '--lake', dir, '--set', 'no-equals-sign');
  check(r.status === 2 && r.stderr.includes('--set expects KEY=VALUE'), '--set without = is a usage error: ' + r.stderr);
  r = run('up', '--lake', dir, '--trigger', 'soon');
  check(r.status === 2 && r.stderr.includes('--trigger soon'), 'a bad duration is a usage error: ' + r.stderr);
  r = run('frobnicate');
  check(r.status === 2 && r.stderr.includes('unknown command'), 'unknown command');

  r = run('sql', '--lake', dir, '--format', 'csv', 'SELECT 1 AS a, \'x,y\' AS b');
  check(r.status === 0 && r.stdout === 'a,b\r\n1,"x,y"\r\n', 'csv is RFC 4180: ' + JSON.stringify(r.stdout));

  // tools parse-ua: one JSON object per input line with exactly the documented keys.
  const uas = ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
    'curl/8.4.0', ''];
  r = spawnSync(bin, ['tools', 'parse-ua'], { input: uas.join('\n') + '\n', encoding: 'utf8' });
  check(r.status === 0, 'parse-ua: ' + r.stderr);
  const parsed = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  check(parsed.length === 3, `parse-ua answers one line per input line (${parsed.length})`);
  const keys = 'ua_family ua_major ua_minor ua_patch os_family os_major os_minor os_patch os_patch_minor device_family device_brand device_model';
  check(parsed.every((o) => Object.keys(o).join(' ') === keys), 'parse-ua keys: ' + Object.keys(parsed[0]).join(' '));
  check(parsed[0].ua_family === 'Chrome' && parsed[0].ua_major === '120' && parsed[0].os_family === 'Windows',
    'parse-ua Chrome on Windows: ' + JSON.stringify(parsed[0]));
  check(parsed[0].device_brand === null && parsed[2].ua_family === 'Other', 'nulls and Other');

  const lake = join(dir, 'lake');
  r = run('process', '--once', '--lake', lake);
  check(r.status === 0, 'process --once on an empty lake: ' + r.stderr);

  // collect alone, then process --once later on the same lake.
  const collector = await startService('collect', ['--lake', lake, '--write-key', 'k1=app']);
  const body = { batch: [1, 2, 3].map((i) => ({ type: 'track', event: 'Tapped', userId: `u${i}`, messageId: `m${i}` })) };
  const resp = await fetch(`http://127.0.0.1:${collector.port}/v1/batch`, {
    method: 'POST', body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', authorization: 'Basic ' + Buffer.from('k1:').toString('base64') },
  });
  check(resp.status === 200, `collect accepted the batch (${resp.status})`);
  await stopService(collector);
  r = run('process', '--once', '--lake', lake);
  check(r.status === 0, 'process --once: ' + r.stderr);
  const rows = sql(lake, 'SELECT source, count(*) AS n FROM bronze.events GROUP BY source');
  check(rows.length === 1 && rows[0].source === 'app' && rows[0].n === 3, 'collect + process --once: ' + JSON.stringify(rows));
  r = run('process', '--once', '--lake', lake);
  check(sql(lake, 'SELECT count(*) AS n FROM bronze.events')[0].n === 3, 'a second --once adds nothing');
  const batches = sql(lake, 'SELECT batch_id, events FROM system.batches');
  check(batches.length === 1 && batches[0].events === 3, 'system.batches: ' + JSON.stringify(batches));
  console.log('ok: cli basics');
} finally {
  removeLake(dir);
}

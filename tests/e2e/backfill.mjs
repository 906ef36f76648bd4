// `clicklake backfill` rebuilds silver.events and silver.quarantine from bronze.events:
// after an incremental run (`clicklake process --once` in small batches), a backfill of
// every date leaves both tables with exactly the same rows, in one BACKFILL commit per
// table, printing progress while it runs; bad dates are refused with exit code 2.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, tempLake, removeLake, startService, stopService, sql, check } from './lib.mjs';

const work = tempLake();
const lake = join(work, 'lake');
const config = join(work, 'clicklake.toml');
writeFileSync(config, `[privacy]\nkey_file = "${join(work, 'pii.key')}"\n\n[silver]\nquarantine_min_batch = 1000000\n`);
try {
  const collector = await startService('collect', ['--lake', lake, '--config', config, '--write-key', 'bf-key=web']);
  try {
    execFileSync(bin, ['simulate', '--url', `http://127.0.0.1:${collector.port}`, '--write-key', 'bf-key',
      '--users', '20', '--rate', '600', '--duration', '1', '--seed', '5', '--duplicate-rate', '0.05',
      '--late-rate', '0.05', '--out-of-order-rate', '0.05', '--malformed-rate', '0.03'], { stdio: 'ignore' });
  } finally {
    await stopService(collector);
  }
  execFileSync(bin, ['process', '--lake', lake, '--config', config, '--once', '--log-level', 'warn',
    '--set', 'processor.max_batch_events=50'], { stdio: 'ignore' });
  const rowsSql = 'SELECT md5(t::VARCHAR) AS r FROM silver.events t ORDER BY 1';
  const quarantineSql = 'SELECT md5(q::VARCHAR) AS r FROM silver.quarantine q ORDER BY 1';
  const before = sql(lake, rowsSql).map((r) => r.r);
  const beforeQ = sql(lake, quarantineSql).map((r) => r.r);
  check(before.length > 300, `silver.events has ${before.length} rows`);
  check(beforeQ.length > 0, 'silver.quarantine has rows');
  const dates = sql(lake, `SELECT min(d)::VARCHAR AS lo, max(d)::VARCHAR AS hi FROM (
    SELECT event_date AS d FROM silver.events UNION ALL SELECT received_date FROM silver.quarantine)`)[0];

  const run = spawnSync(bin, ['backfill', '--lake', lake, '--config', config, '--from', dates.lo, '--to', dates.hi,
    '--layers', 'silver'], { encoding: 'utf8' });
  check(run.status === 0, `backfill exited ${run.status}: ${run.stderr}`);
  check(/backfill: read \d+ bronze rows/.test(run.stderr), 'progress: bronze rows read\n' + run.stderr);
  check(/backfill: rebuilt Silver/.test(run.stderr), 'progress: Silver rebuilt\n' + run.stderr);
  check(run.stdout.includes(`${before.length} silver.events rows`), 'summary: ' + run.stdout);

  const after = sql(lake, rowsSql).map((r) => r.r);
  const afterQ = sql(lake, quarantineSql).map((r) => r.r);
  check(JSON.stringify(after) === JSON.stringify(before), 'silver.events differs after the backfill');
  check(JSON.stringify(afterQ) === JSON.stringify(beforeQ), 'silver.quarantine differs after the backfill');
  for (const table of ['silver/events', 'silver/quarantine']) {
    const logDir = join(lake, table, '_delta_log');
    const commits = readdirSync(logDir).filter((f) => /^\d{20}\.json$/.test(f)).sort().reverse();
    const op = (f) => readFileSync(join(logDir, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
      .find((a) => a.commitInfo).commitInfo.operation;
    check(op(commits[0]) === 'BACKFILL', `${table}: newest commit is ${op(commits[0])}`);
    check(op(commits[1]) !== 'BACKFILL', `${table}: exactly one BACKFILL commit`);
  }

  const bad = spawnSync(bin, ['backfill', '--lake', lake, '--config', config, '--from', '2026-13', '--to', dates.hi],
    { encoding: 'utf8' });
  check(bad.status === 2 && bad.stderr.includes('expect dates'), `bad date: ${bad.status} ${bad.stderr}`);
  console.log(`ok: backfill ${dates.lo}..${dates.hi} reproduced ${before.length} silver rows and ` +
    `${beforeQ.length} quarantine rows`);
} finally {
  removeLake(work);
}

// E2E: the OpenLineage events the real `clicklake` writes to the lake, through every path —
// `process --once` (micro-batches, Gold models with column lineage, quality checks as test runs),
// `backfill` and `table optimize` — are valid against the OpenLineage JSON Schemas
// (../shared/data/openlineage, validated by python3-jsonschema) and pair START with COMPLETE.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, tempLake, removeLake, startService, stopService, sql, check } from './lib.mjs';

const root = join(process.cwd(), '..', '..');
const shared = process.env.CLICKLAKE_SHARED_DIR || join(root, '..', 'shared');
const work = tempLake();
const lake = join(work, 'lake');
const config = join(work, 'clicklake.toml');
writeFileSync(config, `[privacy]\nkey_file = "${join(work, 'pii.key')}"\n\n[silver]\nquarantine_min_batch = 1000000\n`);
try {
  const collector = await startService('collect', ['--lake', lake, '--config', config, '--write-key', 'ln-key=web']);
  try {
    execFileSync(bin, ['simulate', '--url', `http://127.0.0.1:${collector.port}`, '--write-key', 'ln-key',
      '--users', '20', '--rate', '400', '--duration', '1', '--seed', '9', '--malformed-rate', '0.02'], { stdio: 'ignore' });
  } finally {
    await stopService(collector);
  }
  execFileSync(bin, ['process', '--lake', lake, '--config', config, '--once', '--log-level', 'warn',
    '--set', 'processor.max_batch_events=150'], { stdio: 'ignore' });
  const dates = sql(lake, 'SELECT min(event_date)::VARCHAR AS lo, max(event_date)::VARCHAR AS hi FROM silver.events')[0];
  const bf = spawnSync(bin, ['backfill', '--lake', lake, '--config', config, '--from', dates.lo, '--to', dates.hi,
    '--layers', 'silver,gold', '--log-level', 'warn'], { encoding: 'utf8' });
  check(bf.status === 0, `backfill exited ${bf.status}: ${bf.stderr}`);
  const opt = spawnSync(bin, ['table', 'optimize', 'silver.events', '--lake', lake], { encoding: 'utf8' });
  check(opt.status === 0, `table optimize exited ${opt.status}: ${opt.stderr}`);

  const file = join(lake, '_clicklake', 'lineage', 'events.jsonl');
  const v = spawnSync('python3', [join(root, 'src/governance/lineage/validate_openlineage.py'),
    join(shared, 'data', 'openlineage'), file], { encoding: 'utf8' });
  check(v.status === 0, `OpenLineage validation failed:\n${v.stdout}\n${v.stderr.slice(0, 4000)}`);

  const events = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const runs = new Map();
  for (const e of events) {
    if (!runs.has(e.run.runId)) runs.set(e.run.runId, []);
    runs.get(e.run.runId).push(e);
  }
  const jobs = new Set();
  for (const [id, evs] of runs) {
    check(evs.length === 2 && evs[0].eventType === 'START' && ['COMPLETE', 'FAIL'].includes(evs[1].eventType),
      `run ${id} (${evs[0].job.name}): ${evs.map((e) => e.eventType)}`);
    jobs.add(evs[0].job.name);
  }
  for (const job of ['microbatch', 'gold.fact_session_daily', 'gold.fact_funnel_daily',
                     'quality.silver.events.unique_event_id', 'quality.silver.events.null_spike',
                     'quality.gold.fact_events.revenue_consistency', 'backfill', 'maintenance.optimize.silver.events']) {
    check(jobs.has(job), `no ${job} run; jobs: ${[...jobs].sort().join(', ')}`);
  }
  const batches = sql(lake, 'SELECT count(*) AS n FROM system.batches')[0].n;
  const micro = [...runs.values()].filter((r) => r[0].job.name === 'microbatch').length;
  check(micro === Number(batches), `${micro} microbatch runs for ${batches} batches`);
  const backfill = [...runs.values()].find((r) => r[0].job.name === 'backfill')[1];
  const silverOut = backfill.outputs.find((d) => d.name === 'silver.events');
  check(silverOut && silverOut.facets.version && silverOut.outputFacets.outputStatistics.rowCount > 0,
    'backfill output silver.events has its version and row count');
  // Each quality check run is its own test job: one per (batch, dataset, check) of system.quality_results,
  // whose assertions are that check's results only.
  const tests = [...runs.values()].filter((r) => r[0].job.name.startsWith('quality.')).map((r) => r[1]);
  const checkRuns = sql(lake, 'SELECT count(*) AS n FROM (SELECT DISTINCT batch_id, dataset, check_name FROM system.quality_results)')[0].n;
  check(tests.length === Number(checkRuns), `${tests.length} quality test runs for ${checkRuns} check runs in system.quality_results`);
  for (const t of tests) {
    const check_ = t.job.name.slice(`quality.${t.inputs[0].name}.`.length);
    check(t.job.facets.jobType.jobType === 'TEST', `${t.job.name} is a TEST job`);
    const assertions = t.inputs[0].facets.dataQualityAssertions.assertions;
    check(assertions.length > 0 && assertions.every((a) => a.name === check_ || a.name.startsWith(`${check_} [`)),
      `${t.job.name}: its assertions are its own check's: ${assertions.map((a) => a.name).join(', ')}`);
    check(t.inputs[0].inputFacets.dataQualityMetrics, `${t.job.name} has dataQualityMetrics`);
  }
  console.log(`lineage: ${events.length} valid events, ${runs.size} runs, jobs: ${[...jobs].sort().join(', ')}`);
} finally {
  removeLake(work);
}

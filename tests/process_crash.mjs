// Crash test of the processor (DESIGN.md §6, issue 6): `clicklake process` is killed
// with SIGKILL at random moments over many micro-batches (mid-read, mid-Silver,
// mid-commit), restarted each time, and finally drained with `--once`. Afterwards:
//  - every acknowledged event copy is in bronze.events exactly once;
//  - every unique valid messageId is in silver.events exactly once;
//  - every malformed copy is in silver.quarantine (once, with its reason) and no
//    event is in both tables;
//  - system.batches has batch ids 0..N-1 once each, contiguous offset ranges, and
//    row counts that add up to the tables' contents.
// The log is filled first by `clicklake collect` + `clicklake simulate --out` with
// duplicates, late, malformed and out-of-order events. Bounded to about 60 s.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, tempLake, removeLake, startService, stopService, sql, check } from './e2e/lib.mjs';

const KILL_PHASE_MS = 32000;  // time spent killing and restarting the processor
const MIN_KILLS = 15;
const MIN_BATCHES = 10;  // committed while being killed

// A deterministic PRNG so a failure can be replayed with the same seed.
const seed = Number(process.env.CRASH_SEED ?? Date.now() % 100000);
let state = seed || 1;
function random() {
  state = (state * 1103515245 + 12345) % 2147483648;
  return state / 2147483648;
}

const work = tempLake();
const lake = join(work, 'lake');
const sentPath = join(work, 'sent.jsonl');
const configPath = join(work, 'clicklake.toml');
writeFileSync(configPath, `[privacy]
key_file = "${join(work, 'pii.key')}"

[silver]
quarantine_min_batch = 1000000

[[contracts]]
event = "product_added"
version = 1
schema = '''{"properties":{"product_id":{"type":"string"},"price":{"type":"number"},"quantity":{"type":"integer"}}}'''
`);

const malformedCodes = {
  'malformed:no_identity': 'no_identity',
  'malformed:missing_event': 'missing_event',
  'malformed:bad_timestamp': 'bad_timestamp',
  'malformed:wrong_types': 'schema_violation',
};

function runProcessor(extra) {
  return spawn(bin, ['process', '--lake', lake, '--config', configPath, '--log-level', 'warn',
    '--set', 'processor.max_batch_events=60', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function exited(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.on('exit', (code, signal) => resolve({ code, signal }));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();
let ok = false;
try {
  // 1. Fill the embedded log with simulated traffic with faults.
  const collector = await startService('collect', ['--lake', lake, '--config', configPath, '--write-key', 'crash-key=web']);
  try {
    execFileSync(bin, ['simulate', '--url', `http://127.0.0.1:${collector.port}`, '--write-key', 'crash-key',
      '--users', '40', '--rate', '1200', '--duration', '2', '--seed', String(seed), '--concurrency', '2',
      '--duplicate-rate', '0.05', '--late-rate', '0.02', '--out-of-order-rate', '0.05', '--malformed-rate', '0.02',
      '--out', sentPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  } finally {
    await stopService(collector);
  }
  const sent = readFileSync(sentPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  check(sent.length > 1000, `simulator acknowledged ${sent.length} events`);

  // 2. Start the processor, SIGKILL it at a random moment, repeat.
  let kills = 0;
  // Until the kill phase is over and there were enough kills and committed batches
  // (a slow machine gets up to 20 s more).
  const batchCount = () => {
    try {
      return sql(lake, 'SELECT count(*) AS n FROM system.batches')[0].n;
    } catch {
      return 0;  // no batch committed yet
    }
  };
  const enough = () => Date.now() - started >= KILL_PHASE_MS && kills >= MIN_KILLS &&
    (Date.now() - started >= KILL_PHASE_MS + 20000 || batchCount() >= MIN_BATCHES);
  while (!enough()) {
    const child = runProcessor(['--trigger', '100ms']);
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d.toString(); });
    // Mostly short lives (start-up, recovery, the first commit), sometimes several batches.
    const life = random() < 0.4 ? 200 + random() * 1000 : 1200 + random() * 2300;
    const done = exited(child);
    const result = await Promise.race([done, sleep(life).then(() => null)]);
    if (result === null) {
      child.kill('SIGKILL');
      const r = await done;
      check(r.signal === 'SIGKILL', `processor ended with ${JSON.stringify(r)} instead of SIGKILL`);
      kills++;
    } else {
      throw new Error(`processor exited on its own (${JSON.stringify(result)}):\n${stderr}`);
    }
  }
  check(kills >= MIN_KILLS, `only ${kills} kills`);
  const batchesBeforeDrain = sql(lake, 'SELECT count(*) AS n FROM system.batches')[0].n;

  // 3. Drain what is left.
  execFileSync(bin, ['process', '--lake', lake, '--config', configPath, '--log-level', 'warn', '--once',
    '--set', 'processor.max_batch_events=60'], { stdio: ['ignore', 'ignore', 'inherit'] });

  // 4. Expected results from the simulator's record.
  const count = (arr) => { const m = new Map(); for (const x of arr) m.set(x, (m.get(x) ?? 0) + 1); return m; };
  const sameCounts = (a, b, what) => {
    check(a.size === b.size, `${what}: ${a.size} distinct ids, expected ${b.size}`);
    for (const [k, n] of b) check(a.get(k) === n, `${what}: ${k} appears ${a.get(k) ?? 0} times, expected ${n}`);
  };
  const malformed = sent.filter((r) => r.fault.some((f) => f in malformedCodes));
  const valid = new Set(sent.filter((r) => !r.fault.some((f) => f in malformedCodes)).map((r) => r.messageId));
  check(malformed.length > 0, 'the simulator sent malformed events');
  check(sent.some((r) => r.duplicate_of), 'the simulator sent duplicates');

  const bronze = sql(lake, `SELECT json_extract_string(payload, '$.messageId') AS id, log_partition AS p, log_offset AS o
                            FROM bronze.events`);
  check(bronze.length === sent.length, `bronze.events has ${bronze.length} rows, ${sent.length} acknowledged`);
  sameCounts(count(bronze.map((r) => r.id)), count(sent.map((r) => r.messageId)), 'bronze.events');
  check(new Set(bronze.map((r) => `${r.p}:${r.o}`)).size === bronze.length, 'bronze.events log positions are unique');

  const silver = sql(lake, 'SELECT event_id FROM silver.events').map((r) => r.event_id);
  sameCounts(count(silver), count([...valid]), 'silver.events');

  const quarantine = sql(lake, `SELECT json_extract_string(payload, '$.messageId') AS id, error_code
                                FROM silver.quarantine`);
  sameCounts(count(quarantine.map((r) => r.id)), count(malformed.map((r) => r.messageId)), 'silver.quarantine');
  const codeOf = new Map(malformed.map((r) => [r.messageId, malformedCodes[r.fault.find((f) => f in malformedCodes)]]));
  for (const q of quarantine) check(q.error_code === codeOf.get(q.id), `quarantine ${q.id}: ${q.error_code}`);
  const silverSet = new Set(silver);
  check(quarantine.every((q) => !silverSet.has(q.id)), 'an event is in both silver.events and silver.quarantine');

  // 5. system.batches: each batch once, contiguous offsets, sums match the tables.
  const batches = sql(lake, `SELECT batch_id, offsets, bronze_rows, silver_rows, quarantined
                             FROM system.batches ORDER BY batch_id`);
  batches.forEach((b, i) => check(b.batch_id === i, `system.batches row ${i} has batch_id ${b.batch_id}`));
  const nextStart = {};
  for (const b of batches) {
    for (const [p, range] of Object.entries(JSON.parse(b.offsets))) {
      check((nextStart[p] ?? 0) === range.start, `batch ${b.batch_id} partition ${p} starts at ${range.start}`);
      nextStart[p] = range.end;
    }
  }
  const sum = (k) => batches.reduce((s, b) => s + b[k], 0);
  check(sum('bronze_rows') === bronze.length, `sum(bronze_rows) ${sum('bronze_rows')} != ${bronze.length}`);
  check(sum('silver_rows') === silver.length, `sum(silver_rows) ${sum('silver_rows')} != ${silver.length}`);
  check(sum('quarantined') === quarantine.length, `sum(quarantined) ${sum('quarantined')} != ${quarantine.length}`);
  check(batchesBeforeDrain >= 5, `only ${batchesBeforeDrain} batches committed while being killed`);
  console.log(`ok (seed ${seed}): ${kills} kills over ${batchesBeforeDrain} batches (${batches.length} in all), ` +
    `${sent.length} events acknowledged, ${valid.size} in silver, ${quarantine.length} quarantined, ` +
    `${((Date.now() - started) / 1000).toFixed(1)} s`);
  ok = true;
} finally {
  if (ok || !process.env.CRASH_KEEP) removeLake(work);
  else console.error(`kept ${work}`);
}

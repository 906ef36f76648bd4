// Shared helpers for the collector's end-to-end tests with real tracker SDKs:
// start collector_e2e_server (ephemeral loopback port, file-backed log), stop it
// (SIGTERM → drain), read its log and check that every sent event is stored
// exactly once.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

// CLICKLAKE_E2E_MODE=pipeline: serverBin is the clicklake binary; the server is
// `clicklake up` on a fresh lake and the "log" is read back from bronze.events.
const pipelineMode = process.env.CLICKLAKE_E2E_MODE === 'pipeline';

async function startPipeline(clicklakeBin, extraArgs) {
  const dir = mkdtempSync(join(tmpdir(), 'clicklake-e2e-'));
  const lake = join(dir, 'lake');
  const proc = spawn(clicklakeBin, ['up', '--lake', lake, '--port', '0', '--trigger', '1s', ...extraArgs],
                     { stdio: ['ignore', 'inherit', 'pipe'] });
  let output = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('clicklake up did not start:\n' + output)), 20000);
    proc.stderr.on('data', (d) => {
      output += d.toString();
      const m = /collector listening on port (\d+)/.exec(output);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => reject(new Error(`clicklake up exited early with ${code}:\n${output}`)));
  });
  return { proc, port, dir, lake, bin: clicklakeBin };
}

export async function startServer(serverBin, extraArgs = []) {
  if (pipelineMode) return startPipeline(serverBin, extraArgs);
  const dir = mkdtempSync(join(tmpdir(), 'clicklake-e2e-'));
  const out = join(dir, 'events.jsonl');
  const proc = spawn(serverBin, ['--out', out, ...extraArgs], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not print its port')), 15000);
    const rl = createInterface({ input: proc.stdout });
    rl.on('line', (line) => {
      const m = /^PORT (\d+)$/.exec(line);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => reject(new Error(`server exited early with ${code}`)));
  });
  return { proc, port, out, dir };
}

export async function stopServer(server) {
  if (server.proc.exitCode !== null) return server.proc.exitCode;
  const exited = new Promise((resolve) => server.proc.on('exit', (code) => resolve(code)));
  server.proc.kill('SIGTERM');
  const timer = setTimeout(() => server.proc.kill('SIGKILL'), 20000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

// Pipeline mode: blocks until the processor has committed every event the collector
// stored (both counters are in the same process's /metrics), or 30 s pass.
function waitForProcessor(server) {
  if (server.proc.exitCode !== null) return;  // stopped: its final drain already ran
  const sum = (text, name) => text.split('\n').filter((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'))
    .reduce((acc, l) => acc + Number(l.split(' ').pop()), 0);
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    let text = '';
    try {
      text = execFileSync('curl', ['-s', `http://127.0.0.1:${server.port}/metrics`], { encoding: 'utf8' });
    } catch { return; }
    if (sum(text, 'clicklake_processor_events_total') >= sum(text, 'clicklake_collector_events_total')) return;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
  }
}

export function readLog(server) {
  if (pipelineMode) {
    waitForProcessor(server);
    if (!existsSync(join(server.lake, 'bronze', 'events', '_delta_log'))) return [];
    const out = execFileSync(server.bin, ['sql', '--lake', server.lake, '--format', 'json',
      'SELECT protocol, source, client_ip, user_agent, payload FROM bronze.events'], { encoding: 'utf8' });
    return JSON.parse(out).map((r) => ({ ...r, payload: JSON.parse(r.payload) }));
  }
  if (!existsSync(server.out)) return [];
  return readFileSync(server.out, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
}

export function cleanup(server) {
  rmSync(server.dir, { recursive: true, force: true });
}

// ids: the ids sent; idOf(record) → the id stored in a log record (or undefined).
export function checkExactlyOnce(records, ids, idOf) {
  const counts = new Map();
  for (const r of records) {
    const id = idOf(r);
    if (id === undefined) continue;
    counts.set(id, (counts.get(id) || 0) + 1);
  }
  const missing = ids.filter((id) => !counts.has(id));
  const duplicated = ids.filter((id) => (counts.get(id) || 0) > 1);
  const unexpected = [...counts.keys()].filter((id) => !ids.includes(id));
  const problems = [];
  if (missing.length) problems.push(`missing ${missing.length}: ${missing.slice(0, 5).join(', ')}`);
  if (duplicated.length) problems.push(`duplicated ${duplicated.length}: ${duplicated.slice(0, 5).join(', ')}`);
  if (unexpected.length) problems.push(`unexpected ${unexpected.length}: ${unexpected.slice(0, 5).join(', ')}`);
  return problems;
}

// Runs main(server) against a fresh server; exits non-zero on any failure.
export async function runE2E(name, extraArgs, main) {
  const serverBin = process.argv[2];
  if (!serverBin) {
    console.error(`usage: node ${name}.mjs <collector_e2e_server>`);
    process.exit(2);
  }
  const server = await startServer(serverBin, extraArgs);
  let failed = false;
  try {
    const problems = await main(server);
    const code = await stopServer(server);
    if (code !== 0) problems.push(`server exited with ${code}`);
    if (problems.length) {
      failed = true;
      console.error(`${name}: FAILED\n  ` + problems.join('\n  '));
    } else {
      console.log(`${name}: OK`);
    }
  } catch (e) {
    failed = true;
    console.error(`${name}: FAILED with`, e);
    await stopServer(server);
  } finally {
    cleanup(server);
  }
  process.exit(failed ? 1 : 0);
}

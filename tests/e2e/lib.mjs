// Helpers for end-to-end tests: run clicklake services on loopback and query the lake.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const bin = process.env.CLICKLAKE_BIN;
if (!bin) throw new Error('CLICKLAKE_BIN is not set (ctest sets it)');

export function tempLake() {
  return mkdtempSync(join(tmpdir(), 'clicklake-e2e-'));
}

export function removeLake(dir) {
  rmSync(dir, { recursive: true, force: true });
}

// Starts `clicklake <mode> --port 0 ...` and resolves once the collector reports its port.
export function startService(mode, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [mode, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('service did not start:\n' + output)); }, 20000);
    const onData = (d) => {
      output += d.toString();
      const m = output.match(/collector listening on port (\d+)/);
      if (m) { clearTimeout(timer); resolve({ child, port: Number(m[1]), output: () => output }); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`service exited (${code}):\n${output}`)); });
  });
}

// Sends SIGTERM and waits for a clean exit.
export function stopService(service) {
  return new Promise((resolve, reject) => {
    service.child.removeAllListeners('exit');
    const timer = setTimeout(() => { service.child.kill('SIGKILL'); reject(new Error('service did not stop')); }, 60000);
    service.child.on('exit', (code) => {
      clearTimeout(timer);
      code === 0 ? resolve() : reject(new Error(`service exited with ${code}:\n${service.output()}`));
    });
    service.child.kill('SIGTERM');
  });
}

export function sql(lake, query) {
  const out = execFileSync(bin, ['sql', '--lake', lake, '--format', 'json', query], { encoding: 'utf8' });
  return JSON.parse(out);
}

export function check(cond, message) {
  if (!cond) throw new Error('check failed: ' + message);
}

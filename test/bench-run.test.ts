import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runCli, tempDir } from './support.js';

const ROWS = 3000;

interface BenchJson {
  results: {
    rows: number;
    mode: string;
    client: { wallSeconds: number; cpuSeconds: number; peakRssMiB: number };
    server?: { cpuSeconds: number; peakRssMiB: number };
    phases: { name: string; count: number; wallSeconds: number; cpuSeconds: number }[];
    sha256: string;
    expectedSha256?: string;
    resultsFile?: string;
  }[];
}

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'dist/bench/run-bench.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c;
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('bench:run measures a whole run against a separate serve, and fails when the results differ from main', async (t) => {
  const dir = tempDir('bp-run-bench-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const checksums = path.join(dir, 'checksums.json');
  const wrong = 'f'.repeat(64);
  writeFileSync(checksums, JSON.stringify({ [`rows=${ROWS} seed=1 generator=v1`]: wrong }));
  const bench = await runBench([
    '--sizes',
    String(ROWS),
    '--skip-local',
    '--keep',
    '--json',
    '--dir',
    dir,
    '--checksums',
    checksums,
  ]);
  assert.equal(bench.code, 1, bench.stderr);
  assert.match(bench.stderr, new RegExp(`DIFFERS from main's ${wrong}`));
  const [run] = (JSON.parse(bench.stdout) as BenchJson).results;
  assert.ok(run);
  assert.deepEqual([run.rows, run.mode, run.expectedSha256], [ROWS, 'serve', wrong]);
  // The checksum is of the results file the run wrote, which is what `results` writes from its ledger.
  const file = readFileSync(run.resultsFile!);
  assert.equal(run.sha256, createHash('sha256').update(file).digest('hex'));
  const again = await runCli(['results', '--ledger', path.join(path.dirname(run.resultsFile!), 'run.db')]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, file.toString('utf8'));
  // Both processes were measured, and the client's time is split at its events.
  assert.ok(run.client.cpuSeconds > 0 && run.client.peakRssMiB > 10);
  assert.ok(run.server && run.server.cpuSeconds > 0 && run.server.peakRssMiB > 10);
  const phase = (name: string) => run.phases.find((p) => p.name === name);
  for (const name of ['prepare', 'upload', 'create', 'poll (+ wait)', 'download + apply', 'results']) {
    assert.ok(phase(name), `phase ${name}`);
  }
  assert.deepEqual(
    [phase('upload')!.count, phase('create')!.count, phase('download + apply')!.count],
    [1, 1, 1],
  );
  const cpu = run.phases.reduce((t, p) => t + p.cpuSeconds, 0);
  assert.ok(cpu <= run.client.cpuSeconds + 0.01 && cpu >= run.client.cpuSeconds * 0.8, `${cpu}`);
  // The client's CPU as a share of the server's, the yardstick across machine speeds.
  const share = (run.client.cpuSeconds / run.server.cpuSeconds).toFixed(3);
  assert.ok(
    bench.stderr.includes(`client CPU / server CPU at ${ROWS.toLocaleString('en-US')} rows: ${share} `),
    bench.stderr,
  );
});

/**
 * The direct path (`run --mode direct`) against `batchpipe serve` in its own process:
 * - throughput: direct requests per second with no rate limit, and the client's peak RSS (measure.ts)
 *   at each size given (flat as the run grows: the direct path holds a file's ids and its calls in
 *   flight, never the input);
 * - under a limit: N requests against `serve --rpm R` (default 5,000 at 600: about 8½ minutes): none
 *   may fail; reports the 429s the server logged and the steady rate against the limit.
 *
 *   npx tsc -p . && node dist/bench/direct-bench.js [--sizes 10000,100000] [--limited 5000] [--rpm 600]
 *   node dist/bench/direct-bench.js --sizes 20000 --limited 0      # throughput only
 *
 * `npm run bench:direct` runs the defaults.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { measure } from './measure.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin', 'batchpipe.js');

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000' },
    limited: { type: 'string', default: '5000' },
    rpm: { type: 'string', default: '600' },
    concurrency: { type: 'string', default: '32' },
  },
});
const sizes = values.sizes
  .split(',')
  .filter((s) => s !== '')
  .map(Number);
const limited = Number(values.limited);
const rpm = Number(values.rpm);
const concurrency = values.concurrency;

interface LogLine {
  at: number;
  status: number;
}

async function startServe(data: string, extra: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(BIN, ['serve', '--port', '0', '--data', data, ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+\/v1)/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  return { url, child };
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

function inputCsv(dir: string, rows: number): string {
  const file = path.join(dir, 'in.csv');
  const lines = ['id,text'];
  for (let i = 0; i < rows; i++)
    lines.push(`r${i},"Row ${i}: the seat was fine, the food ${i % 7 ? 'cold' : 'good'}"`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function syncLog(data: string): LogLine[] {
  return readFileSync(path.join(data, 'sync-requests.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogLine);
}

async function directRun(rows: number, serveArgs: string[]) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bp-direct-bench-'));
  try {
    const data = path.join(dir, 'serve');
    const serve = await startServe(data, serveArgs);
    const input = inputCsv(dir, rows);
    process.env.OPENAI_API_KEY ??= 'local-bench';
    // The bin itself, as a user runs it: its shebang sets the heap and malloc settings measured here.
    const run = await measure(
      BIN,
      [
        'run',
        input,
        '--ledger',
        path.join(dir, 'l.db'),
        '--base-url',
        serve.url,
        '--model',
        'gpt-4o-mini',
        '--id-column',
        'id',
        '--prompt',
        'Classify: {{text}}',
        '--mode',
        'direct',
        '--concurrency',
        concurrency,
        '--results',
        path.join(dir, 'out.csv'),
        '-q',
      ],
      { cwd: ROOT },
    );
    await stop(serve.child);
    if (run.exitCode !== 0) throw new Error(`run exited ${run.exitCode}: ${run.stderrTail}`);
    const calls = syncLog(data);
    return { run, calls };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The client's CPU, user + sys, and per request (absent without /usr/bin/time). */
function cpu(run: Awaited<ReturnType<typeof measure>>): string {
  if (run.userSeconds === undefined || run.systemSeconds === undefined) return 'unknown';
  return `${run.userSeconds.toFixed(1)} u + ${run.systemSeconds.toFixed(1)} s`;
}

for (const rows of sizes) {
  const { run, calls } = await directRun(rows, []);
  const ok = calls.filter((c) => c.status === 200).length;
  console.log(
    `direct, no limit: ${rows} requests in ${run.seconds.toFixed(1)} s (run, prepare included): ` +
      `${(rows / run.seconds).toFixed(0)} requests/s; ${ok} answered 200; client peak RSS ${(run.peakRssKiB / 1024).toFixed(0)} MiB, ` +
      `CPU ${cpu(run)}`,
  );
}

if (limited > 0) {
  const { run, calls } = await directRun(limited, ['--rpm', String(rpm)]);
  const ok = calls.filter((c) => c.status === 200);
  const refused = calls.filter((c) => c.status === 429).length;
  // The steady rate leaves out the first second, when the server's bucket starts full.
  const start = Math.min(...ok.map((c) => c.at)) + 1000;
  const steady = ok.filter((c) => c.at >= start);
  const span = Math.max(...steady.map((c) => c.at)) - Math.min(...steady.map((c) => c.at));
  const perMinute = ((steady.length - 1) / span) * 60_000;
  console.log(
    `direct, serve --rpm ${rpm}: ${limited} requests, ${ok.length} succeeded, ${refused} answered 429 ` +
      `(${((refused / calls.length) * 100).toFixed(2)}% of calls); steady ${perMinute.toFixed(1)} requests/min ` +
      `(${((perMinute / rpm) * 100).toFixed(1)}% of the limit); ${run.seconds.toFixed(0)} s; client peak RSS ${(run.peakRssKiB / 1024).toFixed(0)} MiB`,
  );
}

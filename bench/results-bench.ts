/**
 * The rejoin benchmark: `batchpipe ingest` of N shuffled output lines plus `batchpipe results --format
 * csv`, against a straightforward Python standard-library script (bench/results_baseline.py) that
 * loads the output into a dict by custom_id, walks the input CSV and writes the joined CSV.
 *
 * For each size: the synthetic feedback CSV (bench/generate.ts) is prepared once (untimed) into a
 * pristine ledger, and N output lines are synthesised once: one `chat.completion` line per request,
 * the local server's shape, in a seeded shuffled order. Each timed batchpipe run starts from a copy
 * of the pristine ledger. Both tools' CSVs must be identical (batchpipe's input cells are the
 * csv-parse → csv-stringify round trip, Python's csv module writes the same text for this data), and
 * batchpipe's must hold every row in input order, so the two programs are known to do the same work.
 *
 * @example
 * ```sh
 * npx tsc -p . && node dist/bench/results-bench.js                    # 250,000 and 1,000,000 rows
 * node dist/bench/results-bench.js --sizes 100000 --skip-python       # quick look
 * node dist/bench/results-bench.js --repeat 3 --wait-quiet 60 --json > results-bench.json
 * ```
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { SCHEMA_VERSION } from '../src/ledger/schema.js';
import { createRng, GENERATOR_VERSION, writeFeedbackCsv } from './generate.js';
import { type Measurement, measure, waitForQuiet } from './measure.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'batchpipe.js');
const BASELINE = join(ROOT, 'bench', 'results_baseline.py');
const TARGET_SPEEDUP = 2;
const TARGET_PEAK_MIB = 200;
const FLAT_GROWTH_RATIO = 0.1;
const FLAT_GROWTH_MIB = 10;
const QUIET_CORES = 0.15;
/** Bump when the synthesised output lines change, so cached ones are made again. */
const OUTPUT_VERSION = 1;

const USAGE = `usage: node dist/bench/results-bench.js [--sizes 250000,1000000] [--seed 1] [--repeat 1]
  [--dir DIR] [--python python3] [--skip-python] [--wait-quiet SECONDS] [--keep] [--json] [--check]
`;

interface Options {
  sizes: number[];
  seed: string;
  repeat: number;
  dir: string;
  python: string;
  skipPython: boolean;
  waitQuiet: number;
  keep: boolean;
  json: boolean;
  check: boolean;
}

/** One measured process. */
interface Step {
  seconds: number;
  cpuSeconds?: number;
  peakRssKiB: number;
  otherCores?: number;
  rssTimeline: [number, number][];
}

/** One timed run of a tool: batchpipe is two steps (ingest, results), python one. */
interface Run {
  seconds: number;
  cpuSeconds?: number;
  peakRssKiB: number;
  otherCores?: number;
  steps: Record<string, Step>;
}

interface Result {
  tool: 'batchpipe' | 'python';
  rows: number;
  runs: Run[];
  /** The median run (by wall time). */
  seconds: number;
  rowsPerSecond: number;
  cpuSeconds?: number;
  peakRssMiB: number;
  otherCores?: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: 'string', default: '250000,1000000' },
      seed: { type: 'string', default: '1' },
      repeat: { type: 'string', default: '1' },
      dir: { type: 'string', default: join(tmpdir(), 'batchpipe-results-bench') },
      python: { type: 'string', default: 'python3' },
      'skip-python': { type: 'boolean', default: false },
      'wait-quiet': { type: 'string', default: '0' },
      keep: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const sizes = values.sizes.split(',').map((s) => Number(s.replace(/_/g, '')));
  if (sizes.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new Error(`bad --sizes ${values.sizes}`);
  return {
    sizes,
    seed: values.seed,
    repeat: Math.max(1, Number(values.repeat)),
    dir: values.dir,
    python: values.python,
    skipPython: values['skip-python'],
    waitQuiet: Number(values['wait-quiet']),
    keep: values.keep,
    json: values.json,
    check: values.check,
  };
}

const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);

/** The input CSV, the pristine prepared ledger and the shuffled output lines of one size (cached). */
async function fixtures(
  opts: Options,
  rows: number,
): Promise<{ csv: string; ledger: string; output: string }> {
  const base = join(opts.dir, `n${rows}-seed${opts.seed}-g${GENERATOR_VERSION}`);
  mkdirSync(base, { recursive: true });
  const csv = join(base, 'feedback.csv');
  if (!existsSync(csv)) {
    await writeFeedbackCsv(`${csv}.part`, { rows, seed: opts.seed });
    renameSync(`${csv}.part`, csv);
    log(`generated ${fmtInt(rows)} rows → ${csv}`);
  }
  // Named by schema version: a ledger from an older build would be migrated inside the timed run.
  const ledger = join(base, `prepared-s${SCHEMA_VERSION}.db`);
  if (!existsSync(ledger)) {
    const work = join(base, 'prepare-work');
    rmSync(work, { recursive: true, force: true });
    const argv = [BIN, 'prepare', csv, '--ledger', join(work, 'ledger.db'), '--out', join(work, 'out')];
    argv.push('--model', 'gpt-4o-mini', '--id-column', 'id', '--prompt', 'Classify this feedback: {{text}}');
    const run = spawnSync(process.execPath, argv, { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`prepare failed: ${run.stderr}`);
    checkpoint(join(work, 'ledger.db'));
    renameSync(join(work, 'ledger.db'), ledger);
    rmSync(work, { recursive: true, force: true });
    log(`prepared ${fmtInt(rows)} rows → ${ledger}`);
  }
  const output = join(base, `output-v${OUTPUT_VERSION}.jsonl`);
  if (!existsSync(output)) {
    await writeOutputLines(ledger, `${output}.part`, opts.seed);
    renameSync(`${output}.part`, output);
    log(`synthesised ${fmtInt(rows)} shuffled output lines → ${output}`);
  }
  return { csv, ledger, output };
}

/** Folds the WAL into the database file, so a plain file copy is the whole ledger. */
function checkpoint(path: string): void {
  const db = new Database(path);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.pragma('journal_mode = DELETE');
  db.close();
}

const WORDS = [
  'delayed',
  'friendly',
  'refund',
  'crew',
  'late',
  'excellent',
  'rude',
  'helpful',
  'parcel',
  'broken',
];
const SENTIMENTS = ['positive', 'negative', 'mixed'];

/**
 * One `chat.completion` output line per request of the ledger, in a seeded shuffled order (output
 * files are in completion order, not input order), shaped like the local server's lines.
 */
async function writeOutputLines(ledgerPath: string, path: string, seed: string): Promise<void> {
  const db = new Database(ledgerPath, { readonly: true });
  const ids = db.prepare<[], string>('SELECT custom_id FROM requests ORDER BY seq').pluck().all();
  db.close();
  const rng = createRng(`outputs-${seed}`);
  const order = new Int32Array(ids.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const out = createWriteStream(path);
  let buffer = '';
  for (const seq of order) {
    const hex = (Math.imul(seq + 1, 2654435761) >>> 0).toString(16).padStart(8, '0').repeat(4);
    const words = [0, 7, 3].map((k) => WORDS[(seq * k + k) % WORDS.length]).join(' ');
    const content = `Noted: ${words}; sentiment ${SENTIMENTS[seq % 3]}.`;
    const prompt = 40 + (seq % 60);
    const line = {
      id: `batch_req_${hex}`,
      custom_id: ids[seq],
      response: {
        status_code: 200,
        request_id: `req_${hex}`,
        body: {
          id: `chatcmpl-${hex}`,
          object: 'chat.completion',
          created: 1_764_000_000,
          model: 'gpt-4o-mini',
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content, refusal: null, annotations: [] },
              logprobs: null,
              finish_reason: 'stop',
            },
          ],
          usage: {
            prompt_tokens: prompt,
            completion_tokens: 14,
            total_tokens: prompt + 14,
            prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
            completion_tokens_details: {
              reasoning_tokens: 0,
              audio_tokens: 0,
              accepted_prediction_tokens: 0,
              rejected_prediction_tokens: 0,
            },
          },
          service_tier: 'default',
          system_fingerprint: 'fp_batchpipe_local',
        },
      },
      error: null,
    };
    buffer += `${JSON.stringify(line)}\n`;
    if (buffer.length >= 1 << 20) {
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  }
  out.end(buffer);
  await once(out, 'finish');
}

async function step(cmd: string, args: string[], cwd: string, what: string): Promise<Step> {
  spawnSync('sync'); // the previous step's writeback is not billed to this one
  const m: Measurement = await measure(cmd, args, { cwd });
  if (m.exitCode !== 0) {
    throw new Error(
      `${what} failed (exit ${m.exitCode ?? m.signal}):\n${m.stderrTail.split('\n').slice(-15).join('\n')}`,
    );
  }
  const s: Step = { seconds: m.seconds, peakRssKiB: m.peakRssKiB, rssTimeline: m.sampled.timeline };
  if (m.userSeconds !== undefined && m.systemSeconds !== undefined)
    s.cpuSeconds = m.userSeconds + m.systemSeconds;
  if (m.otherCores !== undefined) s.otherCores = m.otherCores;
  return s;
}

/** Runs a command with its stdout sent to `out` (`sh -c 'exec … > out'`: the measured process is the command). */
function redirected(cmd: string, args: string[], out: string): [string, string[]] {
  return ['/bin/sh', ['-c', 'out="$1"; shift; exec "$@" > "$out"', 'sh', out, cmd, ...args]];
}

function combine(steps: Record<string, Step>): Run {
  const list = Object.values(steps);
  const run: Run = {
    seconds: list.reduce((t, s) => t + s.seconds, 0),
    peakRssKiB: Math.max(...list.map((s) => s.peakRssKiB)),
    steps,
  };
  if (list.every((s) => s.cpuSeconds !== undefined))
    run.cpuSeconds = list.reduce((t, s) => t + s.cpuSeconds!, 0);
  const other = list.flatMap((s) => (s.otherCores === undefined ? [] : [s.otherCores * s.seconds]));
  if (other.length === list.length) run.otherCores = other.reduce((a, b) => a + b, 0) / run.seconds;
  return run;
}

async function batchpipeRun(
  opts: Options,
  rows: number,
  f: Awaited<ReturnType<typeof fixtures>>,
  attempt: number,
) {
  const dir = join(opts.dir, 'runs', `batchpipe-${rows}-${attempt}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const ledger = join(dir, 'ledger.db');
  copyFileSync(f.ledger, ledger);
  const csv = join(dir, 'results.csv');
  await quiet(opts);
  const ingest = await step(BIN, ['ingest', '--ledger', ledger, f.output], dir, 'batchpipe ingest');
  await quiet(opts);
  const [cmd, args] = redirected(BIN, ['results', '--ledger', ledger, '--format', 'csv'], csv);
  const results = await step(cmd, args, dir, 'batchpipe results');
  return { run: combine({ ingest, results }), csv, dir };
}

async function pythonRun(
  opts: Options,
  rows: number,
  f: Awaited<ReturnType<typeof fixtures>>,
  attempt: number,
) {
  const dir = join(opts.dir, 'runs', `python-${rows}-${attempt}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const csv = join(dir, 'results.csv');
  await quiet(opts);
  const join_ = await step(opts.python, [BASELINE, f.csv, csv, '--id-column', 'id', f.output], dir, 'python');
  return { run: combine({ join: join_ }), csv, dir };
}

async function quiet(opts: Options): Promise<void> {
  if (opts.waitQuiet <= 0) return;
  const load = await waitForQuiet(QUIET_CORES, opts.waitQuiet);
  if (load !== undefined && load >= QUIET_CORES)
    log(`machine still busy (${load.toFixed(2)} cores); running anyway`);
}

/** Whether two files hold the same bytes, read in chunks. */
async function sameBytes(a: string, b: string): Promise<boolean> {
  if (statSync(a).size !== statSync(b).size) return false;
  const ia = createReadStream(a, { highWaterMark: 1 << 20 })[Symbol.asyncIterator]();
  const ib = createReadStream(b, { highWaterMark: 1 << 20 })[Symbol.asyncIterator]();
  let ra: Buffer = Buffer.alloc(0);
  let rb: Buffer = Buffer.alloc(0);
  for (;;) {
    if (ra.length === 0) {
      const n = await ia.next();
      ra = n.done ? Buffer.alloc(0) : (n.value as Buffer);
    }
    if (rb.length === 0) {
      const n = await ib.next();
      rb = n.done ? Buffer.alloc(0) : (n.value as Buffer);
    }
    if (ra.length === 0 || rb.length === 0) return ra.length === rb.length;
    const k = Math.min(ra.length, rb.length);
    if (!ra.subarray(0, k).equals(rb.subarray(0, k))) return false;
    ra = ra.subarray(k);
    rb = rb.subarray(k);
  }
}

/** batchpipe's CSV without Python's to compare with: one line per row (none of this data's cells hold a newline after the last column), all `succeeded`. */
function checkAlone(csv: string, rows: number): void {
  const count = Number(
    execFileSync('sh', ['-c', 'grep -c ",succeeded,$" "$0"', csv], { encoding: 'utf8' }).trim(),
  );
  if (count !== rows) throw new Error(`batchpipe's results hold ${count} succeeded rows, expected ${rows}`);
}

function summarise(tool: Result['tool'], rows: number, runs: Run[]): Result {
  const sorted = [...runs].sort((a, b) => a.seconds - b.seconds);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  const r: Result = {
    tool,
    rows,
    runs,
    seconds: median.seconds,
    rowsPerSecond: rows / median.seconds,
    peakRssMiB: Math.max(...runs.map((x) => x.peakRssKiB)) / 1024,
  };
  if (median.cpuSeconds !== undefined) r.cpuSeconds = median.cpuSeconds;
  const other = runs.flatMap((x) => (x.otherCores === undefined ? [] : [x.otherCores]));
  if (other.length > 0) r.otherCores = Math.max(...other);
  return r;
}

function rssProfile(timeline: [number, number][], seconds: number): string {
  if (timeline.length === 0) return '-';
  const out: string[] = [];
  for (let k = 1; k <= 10; k++) {
    let best = timeline[0]!;
    for (const p of timeline) if (p[0] <= (seconds * k) / 10) best = p;
    out.push(String(Math.round(best[1] / 1024)));
  }
  return out.join(' ');
}

function report(results: Result[], opts: Options): { text: string; pass: boolean } {
  const head = ['rows', 'tool', 'seconds', 'rows/s', 'CPU s', 'peak RSS MiB', 'other', 'steps (s, MiB)'];
  const body = results.map((r) => {
    const median = [...r.runs].sort((a, b) => a.seconds - b.seconds)[Math.floor((r.runs.length - 1) / 2)]!;
    const steps = Object.entries(median.steps)
      .map(([name, s]) => `${name} ${s.seconds.toFixed(2)} s ${(s.peakRssKiB / 1024).toFixed(0)}`)
      .join(', ');
    return [
      fmtInt(r.rows),
      r.tool,
      r.seconds.toFixed(2),
      fmtInt(r.rowsPerSecond),
      r.cpuSeconds === undefined ? '-' : r.cpuSeconds.toFixed(2),
      r.peakRssMiB.toFixed(1),
      r.otherCores === undefined ? '-' : r.otherCores.toFixed(2),
      steps,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const fmt = (row: string[]) =>
    row.map((c, i) => (i === 1 || i === 7 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const lines = [fmt(head), ...body.map(fmt), ''];
  lines.push(
    'batchpipe = `ingest` + `results --format csv` (two processes: seconds and CPU s add up, peak RSS is the larger); ' +
      'CPU s = user + sys; other = cores used by other processes meanwhile.',
  );
  let pass = true;
  const find = (tool: Result['tool'], rows: number) =>
    results.find((r) => r.tool === tool && r.rows === rows);
  const ratios = opts.sizes.flatMap((rows) => {
    const b = find('batchpipe', rows);
    const p = find('python', rows);
    return b && p
      ? [{ rows, wall: b.rowsPerSecond / p.rowsPerSecond, cpu: (p.cpuSeconds ?? 0) / (b.cpuSeconds ?? 1) }]
      : [];
  });
  if (ratios.length > 0) {
    const last = ratios.at(-1)!;
    const ok = last.wall >= TARGET_SPEEDUP;
    pass &&= ok;
    lines.push(
      `speed-up over python (rows/s): ${ratios.map((r) => `${fmtInt(r.rows)} rows ${r.wall.toFixed(2)}x (CPU s ${r.cpu.toFixed(2)}x)`).join(', ')}` +
        `  (target ≥ ${TARGET_SPEEDUP}x at the largest size: ${ok ? 'PASS' : 'FAIL'})`,
    );
  }
  const bp = results.filter((r) => r.tool === 'batchpipe');
  if (bp.length > 0) {
    const peak = Math.max(...bp.map((r) => r.peakRssMiB));
    const ok = peak <= TARGET_PEAK_MIB;
    pass &&= ok;
    lines.push(
      `batchpipe peak RSS ≤ ${TARGET_PEAK_MIB} MiB at every size: ${ok ? 'PASS' : 'FAIL'} (${peak.toFixed(1)} MiB)`,
    );
    const first = bp[0]!;
    const last = bp.at(-1)!;
    if (last.rows > first.rows) {
      const growth = last.peakRssMiB - first.peakRssMiB;
      const flat = growth <= Math.max(FLAT_GROWTH_RATIO * first.peakRssMiB, FLAT_GROWTH_MIB);
      pass &&= flat;
      lines.push(
        `memory: ${first.peakRssMiB.toFixed(1)} MiB at ${fmtInt(first.rows)} rows → ${last.peakRssMiB.toFixed(1)} MiB at ${fmtInt(last.rows)} rows: ` +
          `${flat ? 'flat' : 'GROWS'} (flat = growth ≤ max(${FLAT_GROWTH_RATIO * 100}%, ${FLAT_GROWTH_MIB} MiB))`,
      );
    }
  }
  const busy = results.filter((r) => (r.otherCores ?? 0) >= QUIET_CORES);
  if (busy.length > 0) {
    lines.push(
      `WARNING: other processes used up to ${Math.max(...busy.map((r) => r.otherCores ?? 0)).toFixed(2)} cores during ` +
        `${busy.length} of ${results.length} measurements: wall times are unreliable; compare CPU s, or rerun with --wait-quiet 60.`,
    );
  }
  return { text: `${lines.join('\n')}\n`, pass };
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(argv: string[]): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`results-bench: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!opts.skipPython) {
    opts.python = execFileSync(opts.python, ['-c', 'import sys; print(sys.executable)'], {
      encoding: 'utf8',
    }).trim();
  }
  log(`sizes ${opts.sizes.map(fmtInt).join(', ')}; ${opts.repeat} run(s) each; data in ${opts.dir}`);
  const results: Result[] = [];
  for (const rows of opts.sizes) {
    const f = await fixtures(opts, rows);
    const bpRuns: Run[] = [];
    const pyRuns: Run[] = [];
    for (let attempt = 0; attempt < opts.repeat; attempt++) {
      const bp = await batchpipeRun(opts, rows, f, attempt);
      bpRuns.push(bp.run);
      log(
        `batchpipe ${fmtInt(rows)}: ${bp.run.seconds.toFixed(2)} s (ingest ${bp.run.steps.ingest!.seconds.toFixed(2)} s, results ${bp.run.steps.results!.seconds.toFixed(2)} s), ` +
          `peak ${(bp.run.peakRssKiB / 1024).toFixed(1)} MiB; RSS by tenths (MiB): ingest ${rssProfile(bp.run.steps.ingest!.rssTimeline, bp.run.steps.ingest!.seconds)} | ` +
          `results ${rssProfile(bp.run.steps.results!.rssTimeline, bp.run.steps.results!.seconds)}`,
      );
      if (!opts.skipPython) {
        const py = await pythonRun(opts, rows, f, attempt);
        pyRuns.push(py.run);
        log(
          `python ${fmtInt(rows)}: ${py.run.seconds.toFixed(2)} s, peak ${(py.run.peakRssKiB / 1024).toFixed(1)} MiB`,
        );
        if (!(await sameBytes(bp.csv, py.csv))) throw new Error(`the two CSVs differ: ${bp.csv} ${py.csv}`);
        if (!opts.keep) rmSync(py.dir, { recursive: true, force: true });
      } else {
        checkAlone(bp.csv, rows);
      }
      if (!opts.keep) rmSync(bp.dir, { recursive: true, force: true });
    }
    results.push(summarise('batchpipe', rows, bpRuns));
    if (pyRuns.length > 0) results.push(summarise('python', rows, pyRuns));
  }
  const { text, pass } = report(results, opts);
  process.stderr.write(`\n${text}`);
  if (opts.json) {
    const meta = {
      date: new Date().toISOString(),
      node: process.version,
      cpu: cpus()[0]?.model,
      cores: availableParallelism(),
    };
    process.stdout.write(`${JSON.stringify({ meta, results }, null, 1)}\n`);
  }
  return opts.check && !pass ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`results-bench: ${err instanceof Error ? err.message : err}\n`);
      process.exitCode = 1;
    },
  );
}

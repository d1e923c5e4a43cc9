/**
 * `npm run bench`: `batchpipe prepare` against the Python standard-library baseline (bench/baseline.py)
 * on the same deterministic synthetic feedback CSV, at two sizes for the memory-flatness check.
 *
 * For each size: generate the data once (cached by rows + seed + generator version), then run each
 * tool as a child process with a fresh ledger and output directory, measuring wall time and peak RSS
 * (see measure.ts), and check its output (see verify.ts) before reporting it. Before any timed run, a
 * small preflight input is checked record by record against the source for both tools, so the
 * comparison is between two programs that do the same work.
 *
 * @example
 * ```sh
 * npm run bench                                   # 250,000 and 1,000,000 rows
 * npm run bench -- --rows 200000 --skip-python    # quick look: 50,000 and 200,000 rows
 * node dist/bench/bench.js --sizes 1000000 --repeat 3 --json > bench.json
 * ```
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GENERATOR_VERSION, writeFeedbackCsv } from './generate.js';
import { type Measurement, measure, waitForQuiet } from './measure.js';
import { verifyContent, verifyCounts } from './verify.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'batchpipe.js');
const BASELINE = join(ROOT, 'bench', 'baseline.py');

const MODEL = 'gpt-4o-mini';
const SYSTEM = 'You are a classifier.';
const PROMPT_PREFIX = 'Classify this feedback: ';
const MAX_LINES = 50_000;
const PREFLIGHT_ROWS = 2_000;
const PREFLIGHT_MAX_LINES = 700;

/** Targets from issue 2. */
const TARGET_SPEEDUP = 2;
const TARGET_PEAK_MIB = 200;
/** "Flat": the largest size's peak RSS is at most this much above the smallest's (the larger of the two). */
const FLAT_GROWTH_RATIO = 0.1;
const FLAT_GROWTH_MIB = 10;
/** A run during which the rest of the machine used more CPU than this (in cores) is flagged as shared. */
const QUIET_CORES = 0.15;

type Tool = 'batchpipe' | 'python';

interface Options {
  sizes: number[];
  seed: string;
  repeat: number;
  skipPython: boolean;
  skipBatchpipe: boolean;
  keep: boolean;
  json: boolean;
  check: boolean;
  dir: string;
  python: string;
  waitQuiet: number;
  /** Run batchpipe from the checkout itself instead of a snapshot of its build. */
  inPlace: boolean;
  /** The batchpipe bin that runs: a snapshot's, or the checkout's with --in-place. */
  bin: string;
}

interface RunRecord {
  seconds: number;
  peakRssKiB: number;
  userSeconds?: number;
  systemSeconds?: number;
  /** CPU used by everything else on the machine during the run, in cores. */
  otherCores?: number;
  sampledHwmKiB: number;
  /** ru_maxrss from /usr/bin/time, KiB. */
  timeMaxRssKiB?: number;
  sampledTreeRssKiB: number;
  processes: number;
  threads: number;
  samples: number;
  /** RSS over time, [seconds, KiB], ≤ 10 points a second (see measure.ts). */
  rssTimeline: [number, number][];
  outputBytes: number;
  files: number;
}

interface Result {
  tool: Tool;
  rows: number;
  bytesIn: number;
  runs: RunRecord[];
  /** Median over runs. */
  seconds: number;
  /** Fastest run: the least disturbed by other load on the machine. */
  bestSeconds: number;
  rowsPerSecond: number;
  /** Max over runs. */
  peakRssMiB: number;
  /** user + sys CPU of the median run (the faster middle one for an even count), when known. */
  cpuSeconds?: number;
  /** cpuSeconds / wall of that run: how many cores the tool kept busy. */
  cores?: number;
  /** Max over runs of the CPU other processes used meanwhile, in cores. */
  otherCores?: number;
}

const USAGE = `usage: node dist/bench/bench.js [options]
  --rows N          the main size (default 1000000); sizes are N/4 and N unless --sizes is given
  --sizes A,B,...   explicit sizes (memory flatness compares the smallest and the largest)
  --seed S          generator seed (default 1)
  --repeat R        timed runs per tool and size; the median time and the max RSS are reported (default 1)
  --skip-python     do not run the Python baseline
  --skip-batchpipe  run only the Python baseline (and the generator)
  --keep            keep each run's ledger and request files (generated data is always cached)
  --json            print the results as JSON on stdout (the table goes to stderr)
  --check           exit 1 when a target is missed (speed-up >= ${TARGET_SPEEDUP}x, peak <= ${TARGET_PEAK_MIB} MiB, flat memory)
  --dir DIR         where data and runs go (default: $TMPDIR/batchpipe-bench)
  --python BIN      Python interpreter (default python3)
  --in-place        run bin/batchpipe.js from the checkout (default: from a snapshot of bin/ and dist/src/
                    taken at start, so a rebuild of dist/ by someone else mid-bench cannot mix builds)
  --wait-quiet S    before each timed run, wait up to S seconds for other processes to use < ${QUIET_CORES} cores
                    (default 0: don't wait; runs that shared the machine are flagged either way)
`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      rows: { type: 'string' },
      sizes: { type: 'string' },
      seed: { type: 'string', default: '1' },
      repeat: { type: 'string', default: '1' },
      'skip-python': { type: 'boolean', default: false },
      'skip-batchpipe': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      dir: { type: 'string', default: join(tmpdir(), 'batchpipe-bench') },
      python: { type: 'string', default: 'python3' },
      'wait-quiet': { type: 'string', default: '0' },
      'in-place': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const count = (text: string, what: string): number => {
    const n = Number(text.replaceAll('_', ''));
    if (!Number.isSafeInteger(n) || n < 1)
      throw new UsageError(`${what} must be a positive integer, got '${text}'`);
    return n;
  };
  let sizes: number[];
  if (values.sizes !== undefined) {
    sizes = values.sizes.split(',').map((s) => count(s.trim(), '--sizes'));
  } else {
    const rows = count(values.rows ?? '1000000', '--rows');
    sizes = rows >= 4 ? [Math.round(rows / 4), rows] : [rows];
  }
  sizes = [...new Set(sizes)].sort((a, b) => a - b);
  const options: Options = {
    sizes,
    seed: values.seed,
    repeat: count(values.repeat, '--repeat'),
    skipPython: values['skip-python'],
    skipBatchpipe: values['skip-batchpipe'],
    keep: values.keep,
    json: values.json,
    check: values.check,
    dir: resolve(values.dir),
    python: values.python,
    waitQuiet: values['wait-quiet'] === '0' ? 0 : count(values['wait-quiet'], '--wait-quiet'),
    inPlace: values['in-place'],
    bin: BIN,
  };
  if (options.skipPython && options.skipBatchpipe) throw new UsageError('nothing to run: both tools skipped');
  return options;
}

class UsageError extends Error {}

const log = (msg: string): void => {
  process.stderr.write(`bench: ${msg}\n`);
};

/** The cached data file for a size, generated (to a temporary name, then renamed) if missing. */
async function dataFile(opts: Options, rows: number): Promise<{ path: string; bytes: number }> {
  const path = join(opts.dir, `feedback-${rows}-seed${opts.seed}-v${GENERATOR_VERSION}.csv`);
  if (existsSync(path)) return { path, bytes: statSync(path).size };
  const part = `${path}.${process.pid}.part`;
  const started = performance.now();
  const { bytes } = await writeFeedbackCsv(part, { rows, seed: opts.seed });
  renameSync(part, path);
  log(
    `generated ${fmtInt(rows)} rows, ${fmtMB(bytes)} MB in ${((performance.now() - started) / 1000).toFixed(1)} s → ${path}`,
  );
  return { path, bytes };
}

function commandFor(
  tool: Tool,
  opts: Options,
  csv: string,
  ledger: string,
  outDir: string,
  maxLines: number,
): [string, string[]] {
  const common = [
    '--ledger',
    ledger,
    '--out',
    outDir,
    '--model',
    MODEL,
    '--id-column',
    'id',
    '--system',
    SYSTEM,
  ];
  const limit = maxLines === MAX_LINES ? [] : ['--max-lines', String(maxLines)];
  if (tool === 'batchpipe') {
    // The bin itself, as users run it (its shebang sets batchpipe's Node flags).
    return [opts.bin, ['prepare', csv, ...common, '--prompt', `${PROMPT_PREFIX}{{text}}`, ...limit]];
  }
  return [opts.python, [BASELINE, csv, ...common, '--prompt', `${PROMPT_PREFIX}{text}`, ...limit]];
}

/** The command as a user would type it in the repo: paths inside the checkout or snapshot made relative. */
function displayCommand(opts: Options, cmd: string, args: readonly string[]): string {
  const snapshotRoot = resolve(dirname(opts.bin), '..') + sep;
  const rel = (a: string): string => a.replace(snapshotRoot, '').replace(ROOT, '');
  return shellQuote([cmd === process.execPath ? 'node' : rel(cmd), ...args.map(rel)]);
}

/**
 * Copies bin/ and dist/src/ (with package.json and a link to node_modules) into the bench directory,
 * once the build has stopped changing, so that every run of one bench uses the same build even when
 * someone rebuilds dist/ in the meantime. Returns the snapshot's bin.
 */
async function snapshotBuild(dir: string): Promise<string> {
  const fingerprint = (): string => {
    const h = createHash('sha256');
    for (const base of ['bin', join('dist', 'src')]) {
      for (const rel of readdirSync(join(ROOT, base), { recursive: true, encoding: 'utf8' }).sort()) {
        const st = statSync(join(ROOT, base, rel));
        h.update(`${base}/${rel}\0${st.size}\0${st.mtimeMs}\n`);
      }
    }
    return h.digest('hex');
  };
  const snap = join(dir, 'build-snapshot');
  for (let attempt = 0; ; attempt++) {
    const before = fingerprint();
    await new Promise((r) => setTimeout(r, 1000));
    if (fingerprint() !== before) {
      if (attempt === 30)
        throw new Error('dist/ kept changing for 30 s (a build running?); try again or use --in-place');
      continue;
    }
    rmSync(snap, { recursive: true, force: true });
    mkdirSync(join(snap, 'dist'), { recursive: true });
    cpSync(join(ROOT, 'bin'), join(snap, 'bin'), { recursive: true });
    cpSync(join(ROOT, 'dist', 'src'), join(snap, 'dist', 'src'), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(snap, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(snap, 'node_modules'), 'dir');
    if (fingerprint() === before) return join(snap, 'bin', 'batchpipe.js');
  }
}

function shellQuote(args: readonly string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}

interface RunPaths {
  /** The run's directory, also its working directory. */
  cwd: string;
  ledger: string;
  outDir: string;
}

function freshRunDir(opts: Options, name: string): RunPaths {
  const dir = join(opts.dir, 'runs', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'out'), { recursive: true });
  return { cwd: dir, ledger: join(dir, 'ledger.db'), outDir: join(dir, 'out') };
}

function failRun(tool: Tool, what: string, m: Measurement, argv: readonly string[]): never {
  throw new Error(
    `${tool} ${what} (exit ${m.exitCode ?? m.signal}):\n  $ ${shellQuote(argv)}\n` +
      `  stderr (last lines):\n${m.stderrTail.trimEnd().split('\n').slice(-15).join('\n')}`,
  );
}

/** Small input, checked record by record for both tools before anything is timed. */
async function preflight(opts: Options, tools: Tool[]): Promise<void> {
  const { path } = await dataFile(opts, PREFLIGHT_ROWS);
  for (const tool of tools) {
    const run = freshRunDir(opts, `preflight-${tool}`);
    const [cmd, args] = commandFor(tool, opts, path, run.ledger, run.outDir, PREFLIGHT_MAX_LINES);
    const m = await measure(cmd, args, { cwd: run.cwd });
    if (m.exitCode !== 0) failRun(tool, 'failed on the preflight input', m, [cmd, ...args]);
    const counts = await verifyCounts(run, PREFLIGHT_ROWS, PREFLIGHT_MAX_LINES);
    const content = await verifyContent(run, path, {
      idColumn: 'id',
      model: MODEL,
      url: '/v1/chat/completions',
      messages: (r) => [
        { role: 'system', content: SYSTEM },
        { role: 'user', content: `${PROMPT_PREFIX}${r.text ?? ''}` },
      ],
    });
    const problems = [...counts.problems, ...content];
    if (problems.length > 0) {
      throw new Error(
        `${tool} preflight: output is wrong (${run.cwd}):\n  - ${problems.join('\n  - ')}\n  $ ${shellQuote([cmd, ...args])}`,
      );
    }
    log(
      `preflight ${tool}: ${fmtInt(PREFLIGHT_ROWS)} rows → ${counts.diskFiles} files of ≤ ${PREFLIGHT_MAX_LINES} lines; ` +
        'every request and ledger record matches the source',
    );
    if (!opts.keep) rmSync(run.cwd, { recursive: true, force: true });
  }
}

async function timedRun(
  opts: Options,
  tool: Tool,
  rows: number,
  csv: string,
  attempt: number,
): Promise<RunRecord> {
  const run = freshRunDir(opts, `${tool}-${rows}-${attempt}`);
  // Flush the previous run's dirty pages so its writeback is not billed to this one.
  spawnSync('sync');
  if (opts.waitQuiet > 0) {
    const load = await waitForQuiet(QUIET_CORES, opts.waitQuiet);
    if (load !== undefined && load >= QUIET_CORES) {
      log(
        `machine still busy after ${opts.waitQuiet} s (other processes use ${load.toFixed(2)} cores); running anyway`,
      );
    }
  }
  const [cmd, args] = commandFor(tool, opts, csv, run.ledger, run.outDir, MAX_LINES);
  if (attempt === 0) log(`$ ${displayCommand(opts, cmd, args)}`);
  const m = await measure(cmd, args, { cwd: run.cwd });
  if (m.exitCode !== 0) failRun(tool, `failed on ${fmtInt(rows)} rows`, m, [cmd, ...args]);
  const counts = await verifyCounts(run, rows, MAX_LINES);
  if (counts.problems.length > 0) {
    throw new Error(
      `${tool} on ${fmtInt(rows)} rows: output is wrong (${run.cwd}):\n  - ${counts.problems.join('\n  - ')}`,
    );
  }
  if (m.sampled.processes > 1) {
    log(
      `note: ${tool} ran ${m.sampled.processes} processes; their summed RSS peaked at ${fmtMiB(m.sampled.treeRssKiB)} MiB`,
    );
  }
  const record: RunRecord = {
    seconds: m.seconds,
    // ru_maxrss is per process; if the tool spawned processes, the tree's sampled sum is the honest peak.
    peakRssKiB: Math.max(m.peakRssKiB, m.sampled.processes > 1 ? m.sampled.treeRssKiB : 0),
    sampledHwmKiB: m.sampled.hwmKiB,
    ...(m.timeMaxRssKiB === undefined ? {} : { timeMaxRssKiB: m.timeMaxRssKiB }),
    sampledTreeRssKiB: m.sampled.treeRssKiB,
    processes: m.sampled.processes,
    threads: m.sampled.threads,
    samples: m.sampled.samples,
    rssTimeline: m.sampled.timeline,
    outputBytes: counts.diskBytes,
    files: counts.diskFiles,
  };
  if (m.userSeconds !== undefined) record.userSeconds = m.userSeconds;
  if (m.systemSeconds !== undefined) record.systemSeconds = m.systemSeconds;
  if (m.otherCores !== undefined) record.otherCores = m.otherCores;
  log(
    `${tool} ${fmtInt(rows)} rows: ${m.seconds.toFixed(2)} s, ${fmtInt(rows / m.seconds)} rows/s, ` +
      `peak RSS ${fmtMiB(record.peakRssKiB)} MiB (ru_maxrss ${m.timeMaxRssKiB === undefined ? '-' : fmtMiB(m.timeMaxRssKiB)}, sampled VmHWM ${fmtMiB(m.sampled.hwmKiB)}), ${m.sampled.threads} threads` +
      (m.otherCores === undefined ? '' : `; other processes used ${m.otherCores.toFixed(2)} cores meanwhile`),
  );
  log(
    `${tool} ${fmtInt(rows)} rows: RSS over the run (MiB, at 10%, 20%, … 100% of wall time): ${rssProfile(m)}`,
  );
  if (!opts.keep) rmSync(run.cwd, { recursive: true, force: true });
  return record;
}

/** RSS at each tenth of the run, from the sampled timeline. */
function rssProfile(m: Measurement): string {
  const points = m.sampled.timeline;
  if (points.length === 0) return '-';
  const out: string[] = [];
  for (let k = 1; k <= 10; k++) {
    const t = (m.seconds * k) / 10;
    let best = points[0]!;
    for (const p of points) if (p[0] <= t) best = p;
    out.push(fmtMiB(best[1]).replace(/\.\d$/, ''));
  }
  return out.join(' ');
}

function fastest(r: Result): RunRecord {
  return r.runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
}

function summarise(tool: Tool, rows: number, bytesIn: number, runs: RunRecord[]): Result {
  const bySpeed = [...runs].sort((a, b) => a.seconds - b.seconds);
  const median = bySpeed[Math.floor((bySpeed.length - 1) / 2)]!;
  const upper = bySpeed[Math.floor(bySpeed.length / 2)]!;
  const seconds = (median.seconds + upper.seconds) / 2; // the mean of the middle two for an even count
  const result: Result = {
    tool,
    rows,
    bytesIn,
    runs,
    seconds,
    bestSeconds: bySpeed[0]!.seconds,
    rowsPerSecond: rows / seconds,
    peakRssMiB: Math.max(...runs.map((r) => r.peakRssKiB)) / 1024,
  };
  if (median.userSeconds !== undefined && median.systemSeconds !== undefined) {
    result.cpuSeconds = median.userSeconds + median.systemSeconds;
    result.cores = result.cpuSeconds / median.seconds;
  }
  const others = runs.flatMap((r) => (r.otherCores === undefined ? [] : [r.otherCores]));
  if (others.length > 0) result.otherCores = Math.max(...others);
  return result;
}

interface Verdicts {
  /**
   * batchpipe rows/s ÷ python rows/s per size, from the median runs and from the fastest runs; the
   * target is judged on the fastest runs (the least disturbed by other load, for both tools alike).
   * `quiet` is false when either fastest run shared the CPU with other processes.
   */
  speedup: { rows: number; ratio: number; bestRatio: number; quiet: boolean }[];
  speedupPass?: boolean;
  memory?: {
    fromRows: number;
    toRows: number;
    fromMiB: number;
    toMiB: number;
    growthMiB: number;
    flat: boolean;
  };
  peakPass?: boolean;
}

function verdicts(results: Result[], opts: Options): Verdicts {
  const out: Verdicts = { speedup: [] };
  const find = (tool: Tool, rows: number) => results.find((r) => r.tool === tool && r.rows === rows);
  for (const rows of opts.sizes) {
    const b = find('batchpipe', rows);
    const p = find('python', rows);
    if (b !== undefined && p !== undefined)
      out.speedup.push({
        rows,
        ratio: b.rowsPerSecond / p.rowsPerSecond,
        bestRatio: p.bestSeconds / b.bestSeconds,
        quiet: [b, p].every((r) => (fastest(r).otherCores ?? 0) < QUIET_CORES),
      });
  }
  const largest = out.speedup.at(-1);
  if (largest !== undefined) out.speedupPass = largest.bestRatio >= TARGET_SPEEDUP;
  const bp = results.filter((r) => r.tool === 'batchpipe');
  const first = bp[0];
  const last = bp.at(-1);
  if (first !== undefined && last !== undefined) {
    out.peakPass = Math.max(...bp.map((r) => r.peakRssMiB)) <= TARGET_PEAK_MIB;
    if (last.rows > first.rows) {
      const growth = last.peakRssMiB - first.peakRssMiB;
      out.memory = {
        fromRows: first.rows,
        toRows: last.rows,
        fromMiB: first.peakRssMiB,
        toMiB: last.peakRssMiB,
        growthMiB: growth,
        flat: growth <= Math.max(FLAT_GROWTH_RATIO * first.peakRssMiB, FLAT_GROWTH_MIB),
      };
    }
  }
  return out;
}

function table(results: Result[], v: Verdicts, rssMethod: string): string {
  const head = [
    'rows',
    'MB in',
    'tool',
    'seconds',
    'best s',
    'rows/s',
    'MB/s',
    'CPU s',
    'cores',
    'other',
    'peak RSS MiB',
  ];
  const body = results.map((r) => [
    fmtInt(r.rows),
    fmtMB(r.bytesIn),
    r.tool,
    r.seconds.toFixed(2),
    r.bestSeconds.toFixed(2),
    fmtInt(r.rowsPerSecond),
    (r.bytesIn / 1e6 / r.seconds).toFixed(1),
    r.cpuSeconds === undefined ? '-' : r.cpuSeconds.toFixed(2),
    r.cores === undefined ? '-' : r.cores.toFixed(2),
    r.otherCores === undefined ? '-' : r.otherCores.toFixed(2),
    fmtMiB(Math.max(...r.runs.map((x) => x.peakRssKiB))),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const fmtRow = (row: string[]): string =>
    row.map((c, i) => (i === 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const lines = [fmtRow(head), ...body.map(fmtRow), ''];
  lines.push(
    `MB = 10^6 bytes of CSV in; rows/s from the ${results[0]!.runs.length > 1 ? 'median' : 'single'} run's wall time; best s = fastest run; ` +
      `CPU s = user + sys; cores = CPU s / wall; other = cores used by other processes meanwhile; peak RSS = ${rssMethod}${results[0]!.runs.length > 1 ? ', max over runs' : ''}.`,
  );
  if (v.speedup.length > 0) {
    const several = results.some((r) => r.runs.length > 1);
    const ratios = v.speedup
      .map(
        (s) =>
          `${fmtInt(s.rows)} rows: ${s.bestRatio.toFixed(2)}x` +
          (several ? ` (medians: ${s.ratio.toFixed(2)}x)` : '') +
          (s.quiet ? '' : ' [busy machine]'),
      )
      .join(', ');
    lines.push(
      `speed-up, batchpipe ÷ python rows/s${several ? ', fastest runs' : ''}: ${ratios}  ` +
        `(target ≥ ${TARGET_SPEEDUP}x at the largest size: ${passFail(v.speedupPass)}` +
        `${v.speedup.at(-1)?.quiet === false ? ', not reliable: other processes were busy' : ''})`,
    );
  }
  if (v.memory !== undefined) {
    const m = v.memory;
    const pct = (100 * m.growthMiB) / m.fromMiB;
    lines.push(
      `memory: batchpipe peak RSS ${m.fromMiB.toFixed(1)} MiB at ${fmtInt(m.fromRows)} rows → ${m.toMiB.toFixed(1)} MiB at ` +
        `${fmtInt(m.toRows)} rows (${m.growthMiB >= 0 ? '+' : ''}${m.growthMiB.toFixed(1)} MiB, ${pct >= 0 ? '+' : ''}${pct.toFixed(1)}%): ` +
        `${m.flat ? 'flat' : 'GROWS'} (flat = growth ≤ max(${FLAT_GROWTH_RATIO * 100}%, ${FLAT_GROWTH_MIB} MiB))`,
    );
  }
  if (v.peakPass !== undefined) {
    lines.push(`peak RSS ≤ ${TARGET_PEAK_MIB} MiB at every size: ${passFail(v.peakPass)}`);
  }
  const shared = results.filter((r) => (r.otherCores ?? 0) >= QUIET_CORES);
  if (shared.length > 0) {
    const worst = Math.max(...shared.map((r) => r.otherCores ?? 0));
    lines.push(
      `WARNING: other processes used up to ${worst.toFixed(2)} cores during ${shared.length} of ${results.length} ` +
        'measurements (column "other"): those times are not reliable; rerun on a quiet machine (or with --wait-quiet 60).',
    );
  }
  return `${lines.join('\n')}\n`;
}

const passFail = (ok: boolean | undefined): string => (ok === undefined ? 'n/a' : ok ? 'PASS' : 'FAIL');
const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtMB = (bytes: number): string => (bytes / 1e6).toFixed(1);
const fmtMiB = (kib: number): string => (kib / 1024).toFixed(1);

function tryOutput(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return undefined;
  }
}

async function main(argv: string[]): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const tools: Tool[] = [];
  if (!opts.skipBatchpipe) {
    if (!opts.inPlace) {
      opts.bin = await snapshotBuild(opts.dir);
      log(
        `running batchpipe from a snapshot of bin/ and dist/src/ (${opts.bin}); --in-place to run the checkout`,
      );
    }
    const help = spawnSync(process.execPath, [opts.bin, 'prepare', '--help'], { encoding: 'utf8' });
    if (help.status !== 0) {
      log(`\`batchpipe prepare --help\` failed (exit ${help.status}): is prepare built? (npm run build)`);
      log(help.stderr.trim().split('\n').slice(-5).join('\n'));
      return 1;
    }
    tools.push('batchpipe');
  }
  if (!opts.skipPython) {
    // Resolve shims (pyenv's python3 is a bash script that spawns processes) to the real interpreter,
    // so neither the time nor the memory of a wrapper is billed to the baseline.
    const real = tryOutput(opts.python, ['-c', 'import sys; print(sys.executable)']);
    if (real === undefined || real === '') {
      log(`${opts.python} not found; use --python BIN or --skip-python`);
      return 1;
    }
    opts.python = real;
    tools.push('python');
  }
  mkdirSync(opts.dir, { recursive: true });
  const meta = {
    date: new Date().toISOString(),
    commit: tryOutput('git', ['-C', ROOT, 'describe', '--always', '--dirty']),
    node: process.version,
    python: opts.skipPython ? undefined : tryOutput(opts.python, ['--version']),
    cpu: cpus()[0]?.model,
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    seed: opts.seed,
    generatorVersion: GENERATOR_VERSION,
    sizes: opts.sizes,
    repeat: opts.repeat,
    dir: opts.dir,
  };
  log(
    `sizes ${opts.sizes.map(fmtInt).join(', ')}; seed ${opts.seed}; ${opts.repeat} run(s) each; ${tools.join(' vs ')}; data in ${opts.dir}`,
  );

  await preflight(opts, tools);

  const results: Result[] = [];
  for (const rows of opts.sizes) {
    const { path, bytes } = await dataFile(opts, rows);
    const runs = new Map<Tool, RunRecord[]>(tools.map((t) => [t, []]));
    for (let attempt = 0; attempt < opts.repeat; attempt++) {
      for (const tool of tools) runs.get(tool)!.push(await timedRun(opts, tool, rows, path, attempt));
    }
    for (const tool of tools) results.push(summarise(tool, rows, bytes, runs.get(tool)!));
  }
  const rssMethod = existsSync('/usr/bin/time')
    ? "the larger of the command's ru_maxrss (/usr/bin/time -f %M) and its VmHWM sampled from /proc every 20 ms; " +
      'both cover all threads'
    : "the command's VmHWM, sampled from /proc every 20 ms (covers all threads)";

  const v = verdicts(results, opts);
  const text = table(results, v, rssMethod);
  if (opts.json) {
    process.stderr.write(`\n${text}`);
    const commands = Object.fromEntries(
      tools.map((t) => {
        const [cmd, args] = commandFor(t, opts, 'data.csv', 'ledger.db', 'out', MAX_LINES);
        return [t, displayCommand(opts, cmd, args)];
      }),
    );
    process.stdout.write(
      `${JSON.stringify({ meta: { ...meta, rssMethod, commands }, results, verdicts: v }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(`\n${text}`);
  }
  const missed = v.speedupPass === false || v.peakPass === false || v.memory?.flat === false;
  return opts.check && missed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);

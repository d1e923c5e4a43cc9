/**
 * `npm run bench:run`: the whole `batchpipe run` of N generated feedback rows (bench/generate.ts)
 * against a `batchpipe serve` started as its own process, so that the client's figures are
 * batchpipe's own: what a user pays for on their machine against a real API. Then the same job with
 * `--backend local` (the server in the client's process), for the in-process server's share.
 *
 * Per size and mode it reports wall time, CPU (user + sys, from /proc/<pid>/stat, children included)
 * and peak RSS (VmHWM from /proc/<pid>/status) of the client and, separately, of the server, and a
 * per-phase breakdown of the client's wall and CPU time. The phases come from the typed events the
 * client writes with `--log-format json`: each event closes the interval since the one before it
 * (`file.uploaded` an upload, `batch.created` a create, `batch.polled` a poll and the wait before it,
 * `results.applied` the download streamed into the apply, …), and the client's CPU, sampled every
 * 20 ms, is split at the same instants.
 *
 * The results file is checked against the sha256 of the one main wrote for the same generated input
 * (bench/run-bench.sha256.json): faster must still be the same bytes.
 *
 * @example
 * ```sh
 * npm run bench:run                         # 400,000 rows
 * npm run bench:run -- --rows 2400000       # 400,000 and 2,400,000 rows (40 minutes on a busy machine)
 * node dist/bench/run-bench.js --sizes 100000 --skip-local --keep
 * ```
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GENERATOR_VERSION, writeFeedbackCsv } from './generate.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'batchpipe.js');
const CHECKSUMS = join(ROOT, 'bench', 'run-bench.sha256.json');
const SAMPLE_MS = 20;
/** /proc/<pid>/stat counts CPU in clock ticks of 1/100 s on Linux (`getconf CLK_TCK`). */
const TICKS_PER_SECOND = 100;
const BASE_SIZE = 400_000;

/** Goals of issue 17, for the client against a separate server at the largest size. */
const TARGET_PEAK_MIB = 200;
const FLAT_GROWTH_RATIO = 0.1;
const TARGET_US_PER_ROW = 20;

const RUN_ARGS = [
  '--model',
  'gpt-4o-mini',
  '--id-column',
  'id',
  '--system',
  'You are a classifier.',
  '--prompt',
  'Classify this feedback: {{text}}',
  '--poll-interval',
  '1',
  '--log-format',
  'json',
];

const USAGE = `usage: node dist/bench/run-bench.js [options]
  --rows N          run ${BASE_SIZE.toLocaleString('en-US')} rows and N rows (default: ${BASE_SIZE.toLocaleString('en-US')} only)
  --sizes A,B,...   explicit sizes
  --seed S          generator seed (default 1)
  --skip-local      do not run the --backend local variant
  --dir DIR         where data and runs go (default: $TMPDIR/batchpipe-run-bench)
  --keep            keep each run's ledger, request files and server data
  --json            print the results as JSON on stdout (the table goes to stderr)
  --check           exit 1 when a goal of issue 17 is missed
  --checksums FILE  the sha256 of main's results per input (default bench/run-bench.sha256.json); a
                    results file that differs makes the bench exit 1
`;

interface Options {
  sizes: number[];
  seed: string;
  skipLocal: boolean;
  dir: string;
  keep: boolean;
  json: boolean;
  check: boolean;
  checksums: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      rows: { type: 'string' },
      sizes: { type: 'string' },
      seed: { type: 'string', default: '1' },
      'skip-local': { type: 'boolean', default: false },
      dir: { type: 'string', default: join(tmpdir(), 'batchpipe-run-bench') },
      keep: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      checksums: { type: 'string', default: CHECKSUMS },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const count = (text: string): number => {
    const n = Number(text.replaceAll('_', ''));
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`not a positive integer: '${text}'`);
    return n;
  };
  let sizes = [BASE_SIZE];
  if (values.sizes !== undefined) sizes = values.sizes.split(',').map((s) => count(s.trim()));
  else if (values.rows !== undefined) sizes = [BASE_SIZE, count(values.rows)];
  return {
    sizes: [...new Set(sizes)].sort((a, b) => a - b),
    seed: values.seed,
    skipLocal: values['skip-local'],
    dir: values.dir,
    keep: values.keep,
    json: values.json,
    check: values.check,
    checksums: values.checksums,
  };
}

const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** One reading of a process from /proc. */
interface Sample {
  /** Date.now() when read: the clock of the client's event times. */
  at: number;
  /** user + sys of the process and its waited-for children, seconds. */
  cpu: number;
  rssKiB: number;
  hwmKiB: number;
}

function readSample(pid: number): Sample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    // "pid (comm) state …": comm may hold spaces, so count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime, cstime are fields 14–17 of the whole line, 12–15 after "(comm) ".
    const ticks = [11, 12, 13, 14].reduce((t, i) => t + Number(fields[i]), 0);
    const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    return { at: Date.now(), cpu: ticks / TICKS_PER_SECOND, rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
  } catch {
    return undefined; // exited
  }
}

/** Samples a process every SAMPLE_MS until stopped; keeps the timeline and the last reading. */
class Sampler {
  readonly samples: Sample[] = [];
  readonly #timer: NodeJS.Timeout;
  constructor(readonly pid: number) {
    this.#timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.sample();
  }
  sample(): Sample | undefined {
    const s = readSample(this.pid);
    // A process that has exited but not been reaped yet shows no memory: not a reading.
    if (s !== undefined && s.hwmKiB > 0) this.samples.push(s);
    return s;
  }
  stop(): void {
    clearInterval(this.#timer);
  }
  get last(): Sample | undefined {
    return this.samples.at(-1);
  }
  /** Cumulative CPU at a moment, interpolated between the samples around it. */
  cpuAt(at: number): number {
    const s = this.samples;
    if (s.length === 0) return 0;
    if (at <= s[0]!.at) return s[0]!.cpu;
    let lo = 0;
    let hi = s.length - 1;
    if (at >= s[hi]!.at) return s[hi]!.cpu;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (s[mid]!.at <= at) lo = mid;
      else hi = mid;
    }
    const a = s[lo]!;
    const b = s[hi]!;
    return a.cpu + ((b.cpu - a.cpu) * (at - a.at)) / Math.max(1, b.at - a.at);
  }
  /** The highest RSS sampled from `from` to `to` (the sample before `from` included), KiB. */
  peakRssBetween(from: number, to: number): number {
    let peak = 0;
    let before = 0;
    for (const x of this.samples) {
      if (x.at < from) before = x.rssKiB;
      else if (x.at <= to) peak = Math.max(peak, x.rssKiB);
      else break;
    }
    return Math.max(peak, before);
  }

  /** The highest RSS in each tenth of the run, MiB: flat, or climbing with the input. */
  profile(): string {
    const s = this.samples;
    if (s.length === 0) return '-';
    const t0 = s[0]!.at;
    const span = Math.max(1, s.at(-1)!.at - t0);
    const tenths = new Array<number>(10).fill(0);
    for (const x of s) {
      const k = Math.min(9, Math.floor(((x.at - t0) * 10) / span));
      tenths[k] = Math.max(tenths[k]!, x.rssKiB);
    }
    return tenths.map((kib) => Math.round(kib / 1024)).join(' ');
  }
}

/** A process's figures over a run. */
interface Figures {
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
}

interface Phase {
  name: string;
  count: number;
  wallSeconds: number;
  cpuSeconds: number;
  /** The highest RSS sampled during the phase. */
  peakRssMiB: number;
}

interface RunResult {
  rows: number;
  mode: 'serve' | 'local';
  client: Figures;
  /** The separate `batchpipe serve` (absent with --backend local). */
  server?: Figures;
  phases: Phase[];
  rssProfile: string;
  sha256: string;
  /** The checksum main's results have for this input, when known. */
  expectedSha256?: string;
  resultsBytes: number;
  /** The results file, when the run is kept (--keep). */
  resultsFile?: string;
}

/** The cached input CSV of a size. */
async function dataFile(opts: Options, rows: number): Promise<string> {
  mkdirSync(opts.dir, { recursive: true });
  const path = join(opts.dir, `feedback-${rows}-seed${opts.seed}-v${GENERATOR_VERSION}.csv`);
  if (existsSync(path)) return path;
  await writeFeedbackCsv(`${path}.part`, { rows, seed: opts.seed });
  renameSync(`${path}.part`, path);
  log(`generated ${fmtInt(rows)} rows, ${fmtInt(statSync(path).size)} bytes → ${path}`);
  return path;
}

/** Starts `batchpipe serve` on a free port; resolves with its URL once it listens. */
async function startServe(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(BIN, ['serve', '--port', '0', '--data', dataDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /listening on (\S+\/v1)/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  return { child, url };
}

/** Runs the client with stdout and stderr in files, sampling it until it exits. */
async function runClient(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  errPath: string,
): Promise<{ figures: Figures; sampler: Sampler; started: number }> {
  const err = openSync(errPath, 'w');
  const started = Date.now();
  // The bin itself, as users run it: the Node flags and malloc settings of its shebang apply.
  const child = spawn(BIN, args, { cwd, env, stdio: ['ignore', 'ignore', err] });
  closeSync(err);
  const sampler = new Sampler(child.pid!);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  sampler.stop();
  const wallSeconds = (Date.now() - started) / 1000;
  if (code !== 0) {
    const tail = readFileSync(errPath, 'utf8').split('\n').slice(-10).join('\n');
    throw new Error(`batchpipe run exited ${code ?? signal}:\n${tail}`);
  }
  const last = sampler.last!;
  return {
    figures: { wallSeconds, cpuSeconds: last.cpu, peakRssMiB: last.hwmKiB / 1024 },
    sampler,
    started,
  };
}

/** A client event: when, its type, and a log line's message. */
interface BenchEvent {
  at: number;
  type: string;
  message?: string | undefined;
}

/** The event lines of a run, in order: `{ at, type, message? }`. */
async function readEvents(path: string): Promise<BenchEvent[]> {
  const events: BenchEvent[] = [];
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line) as { time: string; type: string; message?: string };
    events.push({ at: Date.parse(e.time), type: e.type, message: e.message });
  }
  return events;
}

/** The phase an event closes: what the client did since the event before it. */
function phaseOf(e: BenchEvent): string {
  switch (e.type) {
    case 'prepare.progress':
    case 'file.written':
      return 'prepare';
    case 'file.uploaded':
      return 'upload';
    case 'batch.created':
      return 'create';
    case 'batch.polled':
    case 'run.waiting':
      return 'poll (+ wait)';
    case 'results.applied':
      return 'download + apply';
    case 'batch.ended':
      return 'settle';
    case 'log':
      if (e.message?.startsWith('prepared:')) return 'prepare';
      if (e.message?.startsWith('wrote ')) return 'results';
      return 'other';
    case 'status':
      return 'status';
    default:
      return 'other';
  }
}

const PHASE_ORDER = [
  'start-up',
  'prepare',
  'upload',
  'create',
  'poll (+ wait)',
  'download + apply',
  'settle',
  'status',
  'results',
  'exit',
  'other',
];

/** Splits the client's wall and CPU time at its events. */
function phases(events: BenchEvent[], sampler: Sampler, started: number, ended: number): Phase[] {
  const byName = new Map<string, Phase>();
  const add = (name: string, from: number, to: number) => {
    const p = byName.get(name) ?? { name, count: 0, wallSeconds: 0, cpuSeconds: 0, peakRssMiB: 0 };
    p.count++;
    p.wallSeconds += (to - from) / 1000;
    p.cpuSeconds += sampler.cpuAt(to) - sampler.cpuAt(from);
    p.peakRssMiB = Math.max(p.peakRssMiB, sampler.peakRssBetween(from, to) / 1024);
    byName.set(name, p);
  };
  let from = started;
  for (const [i, e] of events.entries()) {
    add(i === 0 ? 'start-up' : phaseOf(e), from, e.at);
    from = e.at;
  }
  add('exit', from, ended);
  return PHASE_ORDER.flatMap((name) => {
    const p = byName.get(name);
    return p === undefined ? [] : [p];
  });
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function expectedChecksum(opts: Options, rows: number): string | undefined {
  if (!existsSync(opts.checksums)) return undefined;
  const table = JSON.parse(readFileSync(opts.checksums, 'utf8')) as Record<string, string>;
  return table[checksumKey(opts, rows)];
}

const checksumKey = (opts: Options, rows: number) =>
  `rows=${rows} seed=${opts.seed} generator=v${GENERATOR_VERSION}`;

async function benchRun(opts: Options, rows: number, mode: RunResult['mode']): Promise<RunResult> {
  const input = await dataFile(opts, rows);
  const dir = join(opts.dir, 'runs', `${mode}-${rows}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const results = join(dir, 'results.csv');
  const args = ['run', input, '--ledger', join(dir, 'run.db'), '--results', results, ...RUN_ARGS];
  const env: NodeJS.ProcessEnv = { ...process.env, OPENAI_API_KEY: 'bench' };
  delete env.CI;
  let server: { child: ChildProcess; url: string } | undefined;
  let serverSampler: Sampler | undefined;
  if (mode === 'serve') {
    server = await startServe(join(dir, 'server'));
    serverSampler = new Sampler(server.child.pid!);
    args.push('--base-url', server.url);
  } else args.push('--backend', 'local');
  let client: Awaited<ReturnType<typeof runClient>>;
  let serverFigures: Figures | undefined;
  try {
    client = await runClient(args, dir, env, join(dir, 'client.err'));
  } finally {
    if (server && serverSampler) {
      serverSampler.sample();
      serverSampler.stop();
      const last = serverSampler.last;
      const first = serverSampler.samples[0]!;
      if (last) {
        serverFigures = {
          wallSeconds: (last.at - first.at) / 1000,
          cpuSeconds: last.cpu - first.cpu,
          peakRssMiB: last.hwmKiB / 1024,
        };
      }
      server.child.kill('SIGTERM');
      await once(server.child, 'exit');
    }
  }
  const events = await readEvents(join(dir, 'client.err'));
  const result: RunResult = {
    rows,
    mode,
    client: client.figures,
    phases: phases(
      events,
      client.sampler,
      client.started,
      client.started + client.figures.wallSeconds * 1000,
    ),
    rssProfile: client.sampler.profile(),
    sha256: await sha256Of(results),
    resultsBytes: statSync(results).size,
  };
  if (serverFigures) result.server = serverFigures;
  const expected = expectedChecksum(opts, rows);
  if (expected !== undefined) result.expectedSha256 = expected;
  if (opts.keep) result.resultsFile = results;
  else rmSync(dir, { recursive: true, force: true });
  return result;
}

const usPerRow = (f: Figures, rows: number) => (f.cpuSeconds * 1e6) / rows;

function describe(r: RunResult): string {
  const f = (x: Figures) =>
    `wall ${x.wallSeconds.toFixed(1)} s, CPU ${x.cpuSeconds.toFixed(1)} s (${usPerRow(x, r.rows).toFixed(1)} µs/row), peak RSS ${x.peakRssMiB.toFixed(0)} MiB`;
  const lines = [
    `${fmtInt(r.rows)} rows, ${r.mode === 'serve' ? 'against `batchpipe serve`' : '--backend local'}:`,
    `  client  ${f(r.client)}`,
  ];
  if (r.server) lines.push(`  server  ${f(r.server)}`);
  lines.push(`  client RSS by tenths of the run (MiB): ${r.rssProfile}`);
  lines.push('  phase               count   wall s   CPU s  µs/row  peak RSS MiB');
  for (const p of r.phases) {
    lines.push(
      `  ${p.name.padEnd(18)} ${String(p.count).padStart(6)} ${p.wallSeconds.toFixed(1).padStart(8)} ${p.cpuSeconds.toFixed(2).padStart(7)} ${((p.cpuSeconds * 1e6) / r.rows).toFixed(1).padStart(7)} ${p.peakRssMiB.toFixed(0).padStart(13)}`,
    );
  }
  const same =
    r.expectedSha256 === undefined
      ? 'no checksum of main to compare with'
      : r.expectedSha256 === r.sha256
        ? "identical to main's"
        : `DIFFERS from main's ${r.expectedSha256}`;
  lines.push(`  results ${fmtInt(r.resultsBytes)} bytes, sha256 ${r.sha256}: ${same}`);
  return lines.join('\n');
}

function summary(results: RunResult[]): { text: string; pass: boolean } {
  const head = [
    'rows',
    'mode',
    'client wall s',
    'client CPU s',
    'µs/row',
    'client peak MiB',
    'server CPU s',
    'server peak MiB',
  ];
  const body = results.map((r) => [
    fmtInt(r.rows),
    r.mode === 'serve' ? 'serve' : 'local',
    r.client.wallSeconds.toFixed(1),
    r.client.cpuSeconds.toFixed(1),
    usPerRow(r.client, r.rows).toFixed(1),
    r.client.peakRssMiB.toFixed(0),
    r.server ? r.server.cpuSeconds.toFixed(1) : '-',
    r.server ? r.server.peakRssMiB.toFixed(0) : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const fmt = (row: string[]) =>
    row.map((c, i) => (i === 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const lines = [fmt(head), ...body.map(fmt), ''];
  let pass = results.every((r) => r.expectedSha256 === undefined || r.expectedSha256 === r.sha256);
  const served = results.filter((r) => r.mode === 'serve');
  if (served.length > 0) {
    const first = served[0]!;
    const last = served.at(-1)!;
    const peak = Math.max(...served.map((r) => r.client.peakRssMiB));
    const peakOk = peak <= TARGET_PEAK_MIB;
    const flat = last.client.peakRssMiB <= first.client.peakRssMiB * (1 + FLAT_GROWTH_RATIO);
    const us = usPerRow(last.client, last.rows);
    const cpuOk = us <= TARGET_US_PER_ROW;
    pass &&= peakOk && cpuOk && flat;
    lines.push(
      `client peak RSS ≤ ${TARGET_PEAK_MIB} MiB: ${peakOk ? 'PASS' : 'FAIL'} (${peak.toFixed(0)} MiB)`,
      `client CPU ≤ ${TARGET_US_PER_ROW} µs/row at ${fmtInt(last.rows)} rows: ${cpuOk ? 'PASS' : 'FAIL'} (${us.toFixed(1)} µs/row)`,
    );
    // The server does the same work in every run: its CPU moves with the machine's speed, so the
    // client's share of it compares runs made when the machine ran at different speeds.
    if (last.server) {
      lines.push(
        `client CPU / server CPU at ${fmtInt(last.rows)} rows: ${(last.client.cpuSeconds / last.server.cpuSeconds).toFixed(3)} (the server's work is the same in every run: a yardstick when the machine's speed moves)`,
      );
    }
    if (last.rows > first.rows) {
      lines.push(
        `client peak RSS ${fmtInt(first.rows)} → ${fmtInt(last.rows)} rows: ${first.client.peakRssMiB.toFixed(0)} → ${last.client.peakRssMiB.toFixed(0)} MiB, ` +
          `${flat ? 'flat' : 'GROWS'} (≤ ${FLAT_GROWTH_RATIO * 100}% higher)`,
      );
    }
  }
  lines.push(
    'CPU = user + sys from /proc/<pid>/stat (children included), peak RSS = VmHWM; serve: the client against a separate `batchpipe serve`; local: `--backend local`, one process.',
  );
  return { text: `${lines.join('\n')}\n`, pass };
}

async function main(argv: string[]): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`run-bench: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  log(`sizes ${opts.sizes.map(fmtInt).join(', ')}; data and runs in ${opts.dir}`);
  const results: RunResult[] = [];
  for (const rows of opts.sizes) {
    for (const mode of opts.skipLocal ? (['serve'] as const) : (['serve', 'local'] as const)) {
      const r = await benchRun(opts, rows, mode);
      process.stderr.write(`${describe(r)}\n`);
      results.push(r);
    }
  }
  const { text, pass } = summary(results);
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
  const differs = results.some((r) => r.expectedSha256 !== undefined && r.expectedSha256 !== r.sha256);
  return differs || (opts.check && !pass) ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`run-bench: ${err instanceof Error ? err.message : err}\n`);
      process.exitCode = 1;
    },
  );
}

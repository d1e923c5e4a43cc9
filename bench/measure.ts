/**
 * Runs a command as a child process and measures its wall time and peak resident memory.
 *
 * Peak RSS comes from two independent sources:
 * - `/usr/bin/time -f '%M …'` (when present): the kernel's `ru_maxrss` of the command, exact, covering
 *   every thread of the process (worker threads share its address space).
 * - `/proc/<pid>/status` polled every ~20 ms for the command and any processes it spawns: `VmHWM` (the
 *   kernel's own high-water mark, so sampling cannot miss a short peak, only the last ≤ 20 ms before
 *   exit), and the sum of `VmRSS` over the process tree (which `ru_maxrss` would not add up if the
 *   command spawned child processes). The headline figure is the larger of `ru_maxrss` and the
 *   sampled VmHWM (they agree to within a few hundred KiB), or the sampled VmHWM alone without time.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TIME_BIN = '/usr/bin/time';

export interface MeasureOptions {
  cwd: string;
  /** Sampling interval for /proc, default 20 ms. */
  pollMs?: number;
  /** Use /usr/bin/time when it exists (default true). */
  useTime?: boolean;
}

export interface Sampled {
  /** Max VmHWM of the command's main process, KiB. */
  hwmKiB: number;
  /** Max over samples of the summed VmRSS of the command and its descendant processes, KiB. */
  treeRssKiB: number;
  /** Most processes seen at once in the command's tree (1 = no child processes). */
  processes: number;
  /** Most threads seen at once, summed over the tree. */
  threads: number;
  samples: number;
  /**
   * The tree's RSS over time, `[seconds since spawn, KiB]`, at most one point per 100 ms: shows whether
   * memory plateaus (flat) or climbs with the input (a leak or an unbounded queue).
   */
  timeline: [number, number][];
}

export interface Measurement {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Wall time from spawn to exit, seconds. */
  seconds: number;
  /** The headline peak RSS, KiB: the larger of `ru_maxrss` from /usr/bin/time and the sampled VmHWM. */
  peakRssKiB: number;
  rssMethod: 'max(ru_maxrss, VmHWM)' | 'VmHWM (sampled /proc)';
  /** `ru_maxrss` as /usr/bin/time reported it, KiB. */
  timeMaxRssKiB?: number;
  /**
   * CPU the rest of the machine used while the command ran, in cores (all CPU time from /proc/stat
   * minus the command's own user + sys). Nonzero means the timing shared the machine. Absent without
   * /usr/bin/time.
   */
  otherCores?: number;
  /** CPU time from /usr/bin/time, seconds (absent without it). */
  userSeconds?: number;
  systemSeconds?: number;
  sampled: Sampled;
  stdoutTail: string;
  stderrTail: string;
}

const TAIL_BYTES = 16 * 1024;
let runCounter = 0;

/** Spawns `command args` and resolves when it has exited and its output is closed. */
export async function measure(
  command: string,
  args: readonly string[],
  options: MeasureOptions,
): Promise<Measurement> {
  const useTime = (options.useTime ?? true) && existsSync(TIME_BIN);
  const timeFile = join(tmpdir(), `batchpipe-bench-time-${process.pid}-${runCounter++}.txt`);
  const argv = useTime ? ['-f', '%M %e %U %S', '-o', timeFile, command, ...args] : [...args];
  const busyBefore = machineBusySeconds();
  const started = performance.now();
  const child = spawn(useTime ? TIME_BIN : command, argv, {
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const rootPid = child.pid;
  if (rootPid === undefined) {
    // spawn failed; the 'error' event carries the reason.
    const err = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw err;
  }

  let stdoutTail = '';
  let stderrTail = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdoutTail = (stdoutTail + s).slice(-TAIL_BYTES);
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderrTail = (stderrTail + s).slice(-TAIL_BYTES);
  });

  // The measured processes: the command and its descendants (not the /usr/bin/time wrapper).
  let tracked: number[] = useTime ? [] : [rootPid];
  let mainPid: number | undefined = useTime ? undefined : rootPid;
  const sampled: Sampled = { hwmKiB: 0, treeRssKiB: 0, processes: 0, threads: 0, samples: 0, timeline: [] };
  let tick = 0;
  const poll = (): void => {
    if (tick++ % 25 === 0 || mainPid === undefined) {
      tracked = descendants(rootPid, !useTime);
      if (mainPid === undefined) mainPid = tracked[0];
    }
    let rss = 0;
    let threads = 0;
    let alive = 0;
    for (const pid of tracked) {
      const st = readStatus(pid);
      if (st === undefined) continue;
      alive++;
      rss += st.rssKiB;
      threads += st.threads;
      if (pid === mainPid) sampled.hwmKiB = Math.max(sampled.hwmKiB, st.hwmKiB);
    }
    if (alive > 0) {
      sampled.samples++;
      sampled.treeRssKiB = Math.max(sampled.treeRssKiB, rss);
      sampled.processes = Math.max(sampled.processes, alive);
      sampled.threads = Math.max(sampled.threads, threads);
      const t = (performance.now() - started) / 1000;
      const lastT = sampled.timeline.at(-1)?.[0] ?? -1;
      if (t - lastT >= 0.1) sampled.timeline.push([Math.round(t * 1000) / 1000, rss]);
    }
  };
  const timer = setInterval(poll, options.pollMs ?? 20);
  poll();

  const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, sig) => resolve([code, sig]));
  });
  const seconds = (performance.now() - started) / 1000;
  const busyAfter = machineBusySeconds();
  clearInterval(timer);
  if (child.stdout.readableEnded === false || child.stderr.readableEnded === false) {
    await new Promise<void>((resolve) => child.once('close', () => resolve()));
  }

  const result: Measurement = {
    exitCode,
    signal,
    seconds,
    peakRssKiB: sampled.hwmKiB,
    rssMethod: 'VmHWM (sampled /proc)',
    sampled,
    stdoutTail,
    stderrTail,
  };
  if (useTime) {
    const timed = readTimeFile(timeFile);
    rmSync(timeFile, { force: true });
    if (timed !== undefined) {
      // The two agree to within a few hundred KiB; report the larger, to be conservative.
      result.peakRssKiB = Math.max(timed.maxRssKiB, sampled.hwmKiB);
      result.rssMethod = 'max(ru_maxrss, VmHWM)';
      result.timeMaxRssKiB = timed.maxRssKiB;
      result.userSeconds = timed.user;
      result.systemSeconds = timed.system;
      if (busyBefore !== undefined && busyAfter !== undefined) {
        const other = busyAfter - busyBefore - timed.user - timed.system;
        result.otherCores = Math.max(0, other / seconds);
      }
      // GNU time reports a nonzero exit in its own output; keep the command's real code.
      if (exitCode !== null && timed.commandExit !== undefined) result.exitCode = timed.commandExit;
    }
  }
  return result;
}

/** Busy CPU time of the whole machine since boot, seconds, from the first line of /proc/stat. */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0] ?? '';
    // cpu user nice system idle iowait irq softirq steal …: busy = all but idle and iowait.
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (f.length < 8 || f.some((n) => !Number.isFinite(n))) return undefined;
    const [user, nice, system, , , irq, softirq, steal] = f as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    return (user + nice + system + irq + softirq + steal) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/**
 * Waits until the rest of the machine has used less than `maxCores` of CPU over one second, for at
 * most `timeoutSeconds`. Resolves to the last measured load, in cores.
 */
export async function waitForQuiet(maxCores: number, timeoutSeconds: number): Promise<number | undefined> {
  const deadline = performance.now() + timeoutSeconds * 1000;
  let load: number | undefined;
  for (;;) {
    const before = machineBusySeconds();
    const cpuBefore = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = machineBusySeconds();
    const own = process.cpuUsage(cpuBefore);
    if (before === undefined || after === undefined) return undefined;
    load = Math.max(0, after - before - (own.user + own.system) / 1e6);
    if (load < maxCores || performance.now() >= deadline) return load;
  }
}

interface Status {
  rssKiB: number;
  hwmKiB: number;
  threads: number;
}

function readStatus(pid: number): Status | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return undefined; // exited
  }
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text);
    return m?.[1] === undefined ? 0 : Number(m[1]);
  };
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM'), threads: field('Threads') };
}

/**
 * The processes below `root` in spawn order (lowest pid first), optionally with `root` itself.
 * /proc/<pid>/task/<tid>/children needs CONFIG_PROC_CHILDREN, often missing, so this scans ppids.
 */
function descendants(root: number, includeRoot: boolean): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      continue;
    }
    // "pid (comm) state ppid …": comm may contain spaces and parentheses, so split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid);
    if (list === undefined) children.set(ppid, [pid]);
    else list.push(pid);
  }
  const out: number[] = includeRoot ? [root] : [];
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    for (const c of (children.get(pid) ?? []).sort((a, b) => a - b)) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

function readTimeFile(
  path: string,
): { maxRssKiB: number; user: number; system: number; commandExit?: number } | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.trim().split('\n');
  const last = lines.at(-1)?.trim().split(/\s+/) ?? [];
  const [rss, , user, system] = last.map(Number);
  if (rss === undefined || user === undefined || system === undefined || !Number.isFinite(rss))
    return undefined;
  const exited = /Command exited with non-zero status (\d+)/.exec(text);
  const result: { maxRssKiB: number; user: number; system: number; commandExit?: number } = {
    maxRssKiB: rss,
    user,
    system,
  };
  if (exited?.[1] !== undefined) result.commandExit = Number(exited[1]);
  else if (/Command terminated by signal/.test(text)) return result;
  else result.commandExit = 0;
  return result;
}

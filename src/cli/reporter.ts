/**
 * Everything a command tells the user on stderr while it works, in one of three forms:
 * - `tty`: a progress frame redrawn in place (prepare, uploads, the overall bar, one line per open
 *   batch), with state changes printed above it; only when stderr is a terminal and neither
 *   `--quiet`, `CI`, `NO_COLOR` nor `TERM=dumb` says otherwise;
 * - `plain`: one line per state change, and a progress line at most once a minute while waiting;
 * - `json` (`--log-format json`): every event as a JSON line, and log lines as `{type: "log"}`.
 * Owns stderr for the command's lifetime (main's error report goes through it too); stdout is never
 * touched. Reads the ledger only through the `countRequests` it is given.
 */
import { type Command, Option } from 'commander';
import type { BatchpipeEvent, EventListener } from '../events.js';
import type { RequestCounts } from '../ledger/ledger.js';
import { type BatchStatus, TERMINAL_BATCH_STATUSES } from '../types.js';
import { formatCount, formatDuration, plural } from './human.js';
import { progressFrame } from './progress/progress-frame.js';
import { RunProgress } from './progress/run-progress.js';
import { type TerminalFrame, terminalFrame, terminalSize } from './progress/terminal-frame.js';
import { renderEvent } from './render-events.js';
import { DEFAULT_STUCK_AFTER, type StuckThresholds } from './stuck.js';

export type ReportMode = 'tty' | 'plain' | 'json';

/** The flags every working command takes. */
export interface ReportFlags {
  quiet?: boolean;
  logFormat?: 'text' | 'json';
}

/** A progress line at most this often in plain mode, while waiting. */
export const HEARTBEAT_MS = 60_000;
/** Redraws of the frame at most this often (events can come in bursts). */
const REDRAW_MS = 100;
/** The frame is drawn again this often anyway: ages and the ETA move. */
const TICK_MS = 1000;

export function addReportOptions(cmd: Command): Command {
  return cmd
    .option(
      '-q, --quiet',
      'no progress bars: plain log lines (also when stderr is not a terminal, or CI / NO_COLOR is set)',
    )
    .addOption(
      new Option('--log-format <format>', 'stderr as text lines, or every event as a JSON line')
        .choices(['text', 'json'])
        .default('text'),
    );
}

/** Which form stderr takes for these flags, this environment and this stderr. */
export function reportMode(
  flags: ReportFlags,
  env: NodeJS.ProcessEnv = process.env,
  stderr: { isTTY?: boolean } = process.stderr,
): ReportMode {
  if (flags.logFormat === 'json') return 'json';
  const plain =
    flags.quiet === true ||
    stderr.isTTY !== true ||
    (env.CI !== undefined && env.CI !== '' && env.CI !== 'false') ||
    env.NO_COLOR !== undefined ||
    env.TERM === 'dumb';
  return plain ? 'plain' : 'tty';
}

export interface ReporterOptions {
  mode: ReportMode;
  stream?: NodeJS.WriteStream | undefined;
  now?: (() => number) | undefined;
  stuckAfter?: StuckThresholds | undefined;
  heartbeatMs?: number | undefined;
}

let active: Reporter | undefined;

/** The reporter of the running command, if it made one (main reports errors through it). */
export function activeReporter(): Reporter | undefined {
  return active;
}

export class Reporter {
  readonly mode: ReportMode;
  readonly progress: RunProgress;
  private readonly stream: NodeJS.WriteStream;
  private readonly now: () => number;
  private readonly stuckAfter: StuckThresholds;
  private readonly heartbeatMs: number;
  private redact: (text: string) => string = (text) => text;
  private frame: TerminalFrame | undefined;
  private redrawTimer: NodeJS.Timeout | undefined;
  private tick: NodeJS.Timeout | undefined;
  private lastLineAt: number;
  private startedAt: number;
  /** Open batches and their statuses as last told in plain mode, to tell only changes. */
  private readonly toldStatus = new Map<string, string>();

  constructor(options: ReporterOptions, countRequests?: () => RequestCounts) {
    this.mode = options.mode;
    this.stream = options.stream ?? process.stderr;
    this.now = options.now ?? Date.now;
    this.stuckAfter = options.stuckAfter ?? DEFAULT_STUCK_AFTER;
    this.heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
    this.progress = new RunProgress(this.now, countRequests);
    this.startedAt = this.now();
    this.lastLineAt = this.startedAt;
  }

  /** Makes this the command's reporter: main's error report and the interrupt line go through it. */
  static open(
    flags: ReportFlags,
    countRequests?: () => RequestCounts,
    stuckAfter?: StuckThresholds,
  ): Reporter {
    active?.close();
    active = new Reporter({ mode: reportMode(flags), stuckAfter }, countRequests);
    return active;
  }

  /** Secrets (the API key) are removed from every line from now on. */
  setRedact(redact: (text: string) => string): void {
    this.redact = redact;
  }

  /** Gives the reporter the ledger's counts to draw the overall bar from (once the ledger is open). */
  countFrom(countRequests: () => RequestCounts): void {
    this.progress.countRequests = countRequests;
    this.progress.refreshCounts();
  }

  /** The listener to hand to `prepare()` and the scheduler. */
  readonly onEvent: EventListener = (event) => {
    const wasStatus =
      event.type === 'batch.polled' ? this.progress.batches.get(event.batchId)?.status : undefined;
    this.progress.apply(event);
    if (this.mode === 'json') {
      this.writeJson({ ...event });
      return;
    }
    const line = renderEvent(event);
    if (this.mode === 'tty') {
      if (line !== undefined && event.type !== 'run.waiting') this.print(line);
      this.scheduleRedraw();
      return;
    }
    if (line !== undefined) this.line(line);
    else this.plainProgress(event, wasStatus);
  };

  /** A log line (without the `batchpipe: ` prefix). */
  log(text: string): void {
    if (this.mode === 'json') this.writeJson({ type: 'log', message: this.redact(text) });
    else if (this.mode === 'tty') this.print(text);
    else this.line(text);
  }

  /** Text that already ends in a newline and carries its own prefix, e.g. the status summary. */
  write(text: string): void {
    if (this.mode === 'json') {
      for (const l of text.split('\n'))
        if (l !== '') this.writeJson({ type: 'log', message: this.redact(l) });
    } else if (this.frame) this.frame.print(this.redact(text));
    else this.stream.write(this.redact(text));
  }

  /** A structured record in json mode (the status at the end, say); nothing in the text forms. */
  record(type: string, value: object): void {
    if (this.mode === 'json') this.writeJson({ type, ...value });
  }

  /** An error report (main's): the frame goes first, so the message stays on the screen. */
  error(text: string, code?: string): void {
    this.close();
    if (this.mode === 'json')
      this.writeJson({ type: 'error', ...(code ? { code } : {}), message: this.redact(text) });
    else this.stream.write(`batchpipe: ${this.redact(text)}\n`);
  }

  /** The interrupt line (src/cli/interrupt.ts), as the last thing the command writes. */
  interrupted(
    text: string,
    signal: string,
    note: { doing?: string | undefined; resume?: string | undefined },
  ): void {
    this.close();
    if (this.mode === 'json') {
      this.writeJson({
        type: 'interrupted',
        signal,
        doing: note.doing,
        resume: note.resume,
        message: this.redact(text),
      });
    } else this.stream.write(`batchpipe: ${this.redact(text)}\n`);
  }

  /** Erases the frame and stops its timers; the reporter can draw again after. */
  close(): void {
    clearTimeout(this.redrawTimer);
    clearInterval(this.tick);
    this.redrawTimer = undefined;
    this.tick = undefined;
    this.frame?.close();
    this.frame = undefined;
  }

  private print(text: string): void {
    const line = `batchpipe: ${this.redact(text)}\n`;
    if (this.frame) this.frame.print(line);
    else this.stream.write(line);
  }

  private line(text: string): void {
    this.lastLineAt = this.now();
    this.stream.write(`batchpipe: ${this.redact(text)}\n`);
  }

  private writeJson(value: Record<string, unknown>): void {
    this.stream.write(`${JSON.stringify({ time: new Date(this.now()).toISOString(), ...value })}\n`);
  }

  /** Plain mode: a batch's new status, and a progress line at most once per heartbeat. */
  private plainProgress(event: BatchpipeEvent, wasStatus: string | undefined): void {
    if (event.type === 'batch.polled') {
      const told = this.toldStatus.get(event.batchId) ?? wasStatus;
      // An ended batch is told by its `batch.ended` line.
      if (told !== event.status && !TERMINAL_BATCH_STATUSES.has(event.status as BatchStatus)) {
        this.toldStatus.set(event.batchId, event.status);
        const c = event.counts;
        this.line(
          `batch ${event.batchId} ${event.status}${c ? ` (${c.completed + c.failed}/${c.total} done)` : ''}`,
        );
        return;
      }
    }
    if (this.now() - this.lastLineAt < this.heartbeatMs) return;
    if (event.type === 'prepare.progress') {
      const p = this.progress.prepare!;
      const of = p.totalBytes ? ` (${Math.floor((100 * p.bytesRead) / p.totalBytes)}% of the input)` : '';
      this.line(`preparing: ${formatCount(p.records)} records read${of}, ${formatCount(p.rate)} rows/s`);
    } else if (event.type === 'batch.polled' || event.type === 'run.waiting') {
      this.line(this.heartbeat());
    }
  }

  /** `still waiting for 2 batches (…); 340 of 1,000 requests final; 12m05s so far`. */
  private heartbeat(): string {
    const p = this.progress;
    const statuses = Object.entries(p.byStatus())
      .map(([s, n]) => `${n} ${s}`)
      .join(', ');
    const c = p.counts;
    const final = c ? `; ${formatCount(p.done())} of ${formatCount(c.total)} requests done` : '';
    const eta = p.etaSeconds();
    return `still waiting for ${plural(p.batches.size, 'batch', 'batches')}${statuses ? ` (${statuses})` : ''}${final}; ${formatDuration((this.now() - this.startedAt) / 1000)} so far${eta === undefined ? '' : `, about ${formatDuration(eta)} left`}`;
  }

  private scheduleRedraw(): void {
    if (this.mode !== 'tty') return;
    if (!this.frame) {
      this.frame = terminalFrame(this.stream);
      this.tick = setInterval(() => this.redraw(), TICK_MS);
      this.tick.unref();
    }
    if (this.redrawTimer) return;
    this.redrawTimer = setTimeout(() => {
      this.redrawTimer = undefined;
      this.redraw();
    }, REDRAW_MS);
    this.redrawTimer.unref();
  }

  private redraw(): void {
    if (!this.frame) return;
    const size = terminalSize(this.stream);
    this.frame.draw(progressFrame(this.progress, this.now(), size, this.stuckAfter).map(this.redact));
  }
}

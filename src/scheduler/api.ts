/**
 * The scheduler from code: `submit`, `collect`, `drive`, `cancel` and `status` over a prepared
 * ledger and a provider, each what the CLI command of that name does (the CLI calls them). They
 * read every step's state from the ledger, so any of them can be stopped at any moment (a kill
 * included) and called again.
 */
import type { CostSettings } from '../cost/run-cost.js';
import type { EventListener } from '../events.js';
import type { Ledger } from '../ledger/ledger.js';
import { requireCompletePrepare } from '../prepare/run-identity.js';
import type { BatchProvider } from '../providers/port.js';
import type { Budget } from './budget.js';
import { cancelOpenBatches } from './cancel.js';
import { type DirectOptions, type DirectPath, driveDirect } from './direct/direct-drive.js';
import { type DriveOptions, type DriveResult, driveBatches } from './drive.js';
import { defaultStallMs } from './hedge.js';
import { ScheduledRun } from './scheduled-run.js';
import { type RunStatus, runStatus } from './status.js';

/** Unfinished batches at once, unless `maxBatches` says otherwise. */
export const DEFAULT_MAX_BATCHES = 100;
/** Tries per request before a retryable failure is final, unless `maxAttempts` says otherwise. */
export const DEFAULT_MAX_ATTEMPTS = 3;

/** What every scheduler function takes. */
export interface SchedulerOptions {
  /** A ledger `prepare()` (or the CLI's `prepare`) has filled; opening it took its write lock. */
  ledger: Ledger;
  /** Where the batches run: `await openProvider({ backend: 'local', ledgerPath })`, say. */
  provider: BatchProvider;
  /** Hears what happens: `batch.created`, `batch.polled`, `results.applied`, … (see `BatchpipeEvent`). */
  onEvent?: EventListener | undefined;
  /** At most this many unfinished batches at once (default 100). */
  maxBatches?: number | undefined;
  /** At most this many estimated tokens queued per model across unfinished batches (default: no limit). */
  maxEnqueuedTokens?: number | undefined;
  /** Tries per request before a retryable failure is final (default 3). */
  maxAttempts?: number | undefined;
  /** First wait between polls, in ms; it grows while nothing changes, up to 10× (default: the provider's). */
  pollIntervalMs?: number | undefined;
  /**
   * A budget (`--max-usd`): the run refuses to start when estimated above it, and never creates a
   * batch that would take spent + queued + that batch's estimate above it (BP_BUDGET).
   */
  budget?: Budget | undefined;
  /** Prices: each `results.applied` event then carries the cost of what it recorded (`costUsd`). */
  prices?: CostSettings | undefined;
}

/** The direct path's settings (`run --mode direct`). */
export interface DirectSettings {
  /** Calls in flight at once (default 16). */
  concurrency?: number | undefined;
  /** Requests per minute at most; the API's `x-ratelimit-limit-requests` lowers it when less. */
  rpm?: number | undefined;
  /** Tokens per minute at most (input + the most output a request may bill), counted as src/cost counts. */
  tpm?: number | undefined;
  /** `flex`: OpenAI's flex processing (batch prices, slower, may answer 429 when it has no capacity). */
  serviceTier?: 'flex' | undefined;
  /** Gives up on a call after this long (default 10 minutes; 15 with flex). */
  timeoutMs?: number | undefined;
}

export interface DriveCallOptions extends SchedulerOptions {
  /** Poll until every request is final (default); false: submit what is ready and return. */
  wait?: boolean | undefined;
  /** Poll one round only. */
  once?: boolean | undefined;
  /**
   * `batch` (default): batches, cheapest, within 24 h. `direct`: every staged request as a synchronous
   * call (`direct`), answers recorded as batch results are.
   */
  mode?: 'batch' | 'direct' | undefined;
  direct?: DirectSettings | undefined;
  /**
   * Hedge the batches against a deadline (`hedge.deadlineMs` from now): a batch that stalls, or a
   * rate that would miss the deadline, has the open batches cancelled (their finished results kept)
   * and every unanswered request sent on `hedge.path` (`direct`, or `flex`), with `direct`'s settings.
   */
  hedge?: HedgeSettings | undefined;
}

/** `run --deadline D --hedge direct|flex`. */
export interface HedgeSettings {
  /** Every row answered within this many ms from now. */
  deadlineMs: number;
  /** The path unanswered rows take (default `direct`). */
  path?: DirectPath | undefined;
  /** No progress for this long is a stall (default: a quarter of the deadline, 5 s to 10 min). */
  stallMs?: number | undefined;
}

/** Calls in flight at once on the direct path, unless `concurrency` says otherwise. */
export const DEFAULT_CONCURRENCY = 16;

/**
 * Uploads the ledger's complete request files and creates batches for them, within the limits,
 * then returns without waiting. Retry files are written first, and intents an interrupted run
 * left are settled (found by listing, never created twice). `final` is true when nothing was left
 * to send.
 *
 * @example
 * const provider = await openProvider({ backend: 'local', ledgerPath: 'runs/fb.db' });
 * const { created } = await submit({ ledger, provider, maxBatches: 10 });
 * await provider.close();
 */
export function submit(options: SchedulerOptions): Promise<DriveResult> {
  return schedule(options, 'submit', { wait: false });
}

/**
 * Polls the run's batches until every request is final: ended batches have their output and error
 * files applied to the ledger, retryable failures are written into retry files and submitted again
 * (up to `maxAttempts`). With `once`, one round only.
 *
 * @example
 * const { final } = await collect({
 *   ledger, provider, onEvent: (e) => { if (e.type === 'batch.ended') console.error(e.batchId, e.status); },
 * });
 */
export function collect(options: SchedulerOptions & { once?: boolean | undefined }): Promise<DriveResult> {
  return schedule(options, 'collect', { wait: true, once: options.once });
}

/**
 * Submits and collects until every request is final: what `batchpipe run` does after `prepare`.
 * `wait: false` submits and returns (as `submit`); `once` polls one round.
 *
 * @example
 * const ledger = Ledger.open('runs/fb.db');
 * await prepare({ ledger, input: 'feedback.csv', outDir: 'runs/fb/', model: 'gpt-4o-mini', prompt: '{{text}}' });
 * const provider = await openProvider({ backend: 'local', ledgerPath: ledger.path });
 * try {
 *   await drive({ ledger, provider });
 * } finally {
 *   await provider.close();
 * }
 * for await (const row of resultSource({ ledger })) console.log(row.custom_id, row.status);
 */
export async function drive(options: DriveCallOptions): Promise<DriveResult> {
  requireCompletePrepare(options.ledger, options.ledger.path, 'drive');
  const run = new ScheduledRun(options.ledger, options.provider, options.onEvent);
  if (options.mode === 'direct') {
    const path = options.direct?.serviceTier === 'flex' ? 'flex' : 'direct';
    const done = await driveDirect(run, directOptions(options, path));
    return { final: done.final, uploaded: 0, created: 0, settled: 0 };
  }
  const settings = driveOptions(options, options.wait ?? true);
  const hedge = options.hedge;
  return driveBatches(run, {
    ...settings,
    once: options.once,
    hedge: hedge && {
      watch: {
        deadlineAt: Date.now() + hedge.deadlineMs,
        path: hedge.path ?? 'direct',
        stallMs: hedge.stallMs ?? defaultStallMs(hedge.deadlineMs),
      },
      direct: directOptions(options, hedge.path ?? 'direct'),
    },
  });
}

function directOptions(options: DriveCallOptions, path: DirectPath): DirectOptions {
  const settings = options.direct ?? {};
  return {
    path,
    concurrency: settings.concurrency ?? DEFAULT_CONCURRENCY,
    rpm: settings.rpm,
    tpm: settings.tpm,
    maxAttempts: options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    timeoutMs: settings.timeoutMs,
  };
}

/**
 * Asks the provider to cancel the run's unfinished batches and waits until they have ended,
 * recording what they finished; their other requests end `cancelled`. Returns how many batches it
 * asked to cancel.
 *
 * @example
 * const { cancelled } = await cancel({ ledger, provider });
 */
export async function cancel(options: SchedulerOptions): Promise<{ cancelled: number }> {
  const run = new ScheduledRun(options.ledger, options.provider, options.onEvent);
  const settings = driveOptions(options, true);
  return cancelOpenBatches(run, { collect: settings.collect, pollIntervalMs: settings.pollIntervalMs });
}

/**
 * Counts per request state, every batch with its progress, tokens so far, and whether prepare read
 * its whole input: the stable shape of `batchpipe status --json`. Only reads the ledger.
 *
 * @example
 * const { requests } = status({ ledger });
 * console.log(`${requests.succeeded} of ${requests.total} succeeded`);
 */
export function status(options: { ledger: Ledger; prices?: CostSettings | undefined }): RunStatus {
  return runStatus(options.ledger, options.prices);
}

function schedule(
  options: SchedulerOptions,
  command: string,
  how: { wait: boolean; once?: boolean | undefined },
): Promise<DriveResult> {
  // Nothing is sent or waited for while the ledger's prepare has not read its whole input.
  requireCompletePrepare(options.ledger, options.ledger.path, command);
  const run = new ScheduledRun(options.ledger, options.provider, options.onEvent);
  return driveBatches(run, { ...driveOptions(options, how.wait), once: how.once });
}

function driveOptions(options: SchedulerOptions, wait: boolean): DriveOptions {
  return {
    submit: {
      maxBatches: options.maxBatches ?? DEFAULT_MAX_BATCHES,
      maxEnqueuedTokens: options.maxEnqueuedTokens,
      budget: options.budget,
    },
    collect: { maxAttempts: options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS, prices: options.prices },
    pollIntervalMs: options.pollIntervalMs ?? options.provider.pollIntervalMs,
    wait,
  };
}

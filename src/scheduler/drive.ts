import { setTimeout as sleep } from 'node:timers/promises';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { RunWaitingEvent } from '../events.js';
import { checkBudgetAtStart, hedgeOverBudget } from './budget.js';
import { type CollectOptions, collectRound } from './collect.js';
import { type DirectOptions, driveDirect } from './direct/direct-drive.js';
import { type HedgeOptions, HedgeWatch } from './hedge.js';
import { restageRetries } from './restage.js';
import type { ScheduledRun } from './scheduled-run.js';
import { type SubmitOptions, submitReady } from './submit.js';

export interface DriveOptions {
  submit: SubmitOptions;
  collect: CollectOptions;
  /** First wait between polls, in ms; it grows while nothing changes, up to 10×. */
  pollIntervalMs: number;
  /** Poll until every request is final (false: submit what is ready and return). */
  wait: boolean;
  /** Only one polling round. */
  once?: boolean | undefined;
  /** Hedge against a deadline: stalled or late batches are cancelled and the rest sent on the direct path. */
  hedge?: { watch: HedgeOptions; direct: DirectOptions } | undefined;
}

/** What a drive did, in all its rounds. */
export interface DriveResult {
  /** Every request of the ledger is final. */
  final: boolean;
  /** Request files uploaded. */
  uploaded: number;
  /** Batches created. */
  created: number;
  /** Batches that ended and were settled. */
  settled: number;
}

/**
 * Submit, collect and retry until every request of the ledger is final: the loop behind `run`,
 * `submit` and `collect`. Each step reads its state from the ledger, so the loop can be killed at
 * any moment and started again.
 */
export async function driveBatches(run: ScheduledRun, options: DriveOptions): Promise<DriveResult> {
  const { ledger } = run;
  const done = { uploaded: 0, created: 0, settled: 0 };
  const result = () => ({ final: run.states.unfinishedCount() === 0, ...done });
  let wait = options.pollIntervalMs;
  let saidWaiting = '';
  const watch = options.hedge ? new HedgeWatch(run, options.hedge.watch) : undefined;
  // Polls come often enough to see a stall within a quarter of its threshold.
  const maxWait = Math.min(
    options.pollIntervalMs * 10,
    watch ? watch.options.stallMs / 4 : Number.POSITIVE_INFINITY,
  );
  let budgetChecked = false;
  let saidHeld = false;
  for (;;) {
    // Once the run has hedged, nothing more goes into batches: what is left goes on the hedge path.
    const hedged = watch !== undefined && run.tables.hedgedPath() !== undefined;
    const restaged = hedged ? { files: 0, requests: 0 } : restageRetries(ledger, run.onEvent);
    if (restaged.requests > 0) run.emit({ type: 'request.retried', ...restaged });
    if (options.submit.budget && !budgetChecked && !hedged) {
      // Before anything is uploaded or created: a run estimated over its budget never starts. A run
      // that has batches already goes on by submitReady's check, file by file (its open batches polled).
      if (run.tables.batches().length === 0) await checkBudgetAtStart(run, options.submit.budget);
      budgetChecked = true;
    }
    const submitted = hedged
      ? { uploaded: 0, created: 0, waiting: 0 }
      : await submitReady(run, options.submit);
    done.uploaded += submitted.uploaded;
    done.created += submitted.created;
    if (!options.wait) return result();
    const round = await collectRound(run, options.collect);
    done.settled += round.settled;
    const now = result();
    if (now.final || options.once) return now;
    if (watch && options.hedge) {
      if (hedged && round.open > 0) watch.takeOverLate();
      if (hedged && run.tables.openBatches().length === 0) {
        // The hedged batches have ended and their finished results are in: the rest goes direct.
        await driveDirect(run, options.hedge.direct);
        return result();
      }
      const reason = hedged ? undefined : watch.reason();
      const budget = options.submit.budget;
      const overBudget =
        reason !== undefined && budget ? hedgeOverBudget(run, budget, options.hedge.watch.path) : undefined;
      if (reason !== undefined && overBudget === undefined) {
        await watch.hedge(reason);
        wait = options.pollIntervalMs;
        continue;
      }
      if (overBudget !== undefined && !saidHeld) {
        // Said once: the batches are left to finish, however long they take.
        run.emit({
          type: 'hedge.decided',
          action: 'hold',
          batchId: run.tables.openBatches()[0]?.remote_id ?? '',
          path: options.hedge.watch.path,
          reason: `${reason}; but ${overBudget}`,
        });
        saidHeld = true;
      }
    }
    if (round.settled > 0) wait = options.pollIntervalMs;
    else {
      // Nothing open and nothing sent: no later round can change anything, so say why and stop.
      if (round.open === 0 && submitted.created + submitted.uploaded + restaged.requests === 0) {
        throw stuck(run);
      }
      // Said again when the number of batches changes (not at every poll or status change).
      const waiting = waitingFor(run, submitted.waiting);
      const key = `${waiting.open}/${waiting.heldFiles}`;
      if (key !== saidWaiting) run.emit(waiting);
      saidWaiting = key;
      await sleep(Math.min(wait, maxWait));
      wait = Math.min(wait * 1.5, maxWait);
    }
  }
}

/** What a poll waits for: the open batches by status, and the files held back by a limit. */
function waitingFor(run: ScheduledRun, heldFiles: number): RunWaitingEvent {
  const open = run.tables.openBatches();
  const byStatus: Record<string, number> = {};
  for (const b of open) byStatus[b.status ?? 'unknown'] = (byStatus[b.status ?? 'unknown'] ?? 0) + 1;
  return { type: 'run.waiting', byStatus, open: open.length, heldFiles };
}

/** Requests left unfinished with nothing open and nothing to send: where they are, and what to do. */
function stuck(run: ScheduledRun): BatchpipeError {
  const left = run.states.unfinished();
  const parts = [
    left.unwritten > 0
      ? `${left.unwritten} staged in no complete request file (rerun \`batchpipe run\` or \`batchpipe prepare\` with the same input to finish preparing)`
      : '',
    left.inFiles > 0 ? `${left.inFiles} staged in complete files that could not be submitted` : '',
    left.submitted > 0 ? `${left.submitted} submitted to batches that are no longer open` : '',
  ].filter((p) => p !== '');
  const total = left.unwritten + left.inFiles + left.submitted;
  return new BatchpipeError(
    ErrorCodes.INCOMPLETE_RUN,
    `nothing to wait for: no batch is open and nothing can be submitted, yet ${total} requests are not final: ${parts.join('; ')}`,
  );
}

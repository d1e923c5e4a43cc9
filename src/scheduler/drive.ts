import { setTimeout as sleep } from 'node:timers/promises';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { type CollectOptions, collectRound } from './collect.js';
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
  log?: ((line: string) => void) | undefined;
}

/**
 * Submit, collect and retry until every request of the ledger is final: the loop behind `run`,
 * `submit` and `collect`. Each step reads its state from the ledger, so the loop can be killed at
 * any moment and started again.
 */
export async function driveBatches(run: ScheduledRun, options: DriveOptions): Promise<{ final: boolean }> {
  const { ledger } = run;
  const unfinished = () => run.states.unfinishedCount();
  let wait = options.pollIntervalMs;
  let saidWaiting = '';
  for (;;) {
    const restaged = restageRetries(ledger);
    if (restaged.requests > 0)
      options.log?.(`retrying ${restaged.requests} requests in ${restaged.files} new files`);
    const submitted = await submitReady(run, options.submit);
    if (!options.wait) return { final: unfinished() === 0 };
    const round = await collectRound(run, options.collect);
    if (unfinished() === 0) return { final: true };
    if (options.once) return { final: false };
    if (round.settled > 0) wait = options.pollIntervalMs;
    else {
      // Nothing open and nothing sent: no later round can change anything, so say why and stop.
      if (round.open === 0 && submitted.created + submitted.uploaded + restaged.requests === 0) {
        throw stuck(run);
      }
      // Said again when the number of batches changes (not at every poll or status change).
      const waiting = waitingFor(run, submitted.waiting);
      if (waiting.key !== saidWaiting) options.log?.(waiting.line);
      saidWaiting = waiting.key;
      await sleep(wait);
      wait = Math.min(wait * 1.5, options.pollIntervalMs * 10);
    }
  }
}

/** What a poll waits for, e.g. `waiting for 2 batches (1 in_progress, 1 finalizing)`. */
function waitingFor(run: ScheduledRun, heldFiles: number): { key: string; line: string } {
  const open = run.tables.openBatches();
  const key = `${open.length}/${heldFiles}`;
  if (open.length === 0) return { key, line: 'waiting for the next poll' };
  const byStatus = new Map<string, number>();
  for (const b of open) byStatus.set(b.status ?? 'unknown', (byStatus.get(b.status ?? 'unknown') ?? 0) + 1);
  const statuses = [...byStatus].map(([status, n]) => `${n} ${status}`).join(', ');
  const held =
    heldFiles > 0
      ? `; ${heldFiles} more ${heldFiles === 1 ? 'file waits' : 'files wait'} for room under --max-batches / --max-enqueued-tokens`
      : '';
  return {
    key,
    line: `waiting for ${open.length} ${open.length === 1 ? 'batch' : 'batches'} (${statuses})${held}`,
  };
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

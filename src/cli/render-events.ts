/**
 * The CLI's log line of each event that is a state change worth a line of its own (uploaded, created,
 * ended, retried, waiting): what the reporter (reporter.ts) prints in plain mode, and above the
 * progress frame on a terminal. Progress events (prepare chunks, polls, files written) render as
 * nothing here; the reporter draws them.
 */
import type { BatchpipeEvent } from '../events.js';

/** The line an event shows as (without the `batchpipe: ` prefix), or undefined for none. */
export function renderEvent(event: BatchpipeEvent): string | undefined {
  switch (event.type) {
    case 'file.uploaded':
      return `uploaded ${event.file}`;
    case 'batch.created':
      return event.recovered
        ? undefined
        : `created batch for ${event.file} (~${event.tokens} tokens queued for ${event.model || 'the model'}: ${event.queuedTokens})`;
    case 'batch.redownload':
      return `batch ${event.batchId}: ${event.error === undefined ? `its files hold ${event.linesRead} of ${event.linesExpected} lines` : `reading its files failed (${event.error})`}; downloading again`;
    case 'results.applied':
      return event.unknown > 0
        ? `warning: ${event.unknown} lines of ${event.resultFile} name no request of this run`
        : undefined;
    case 'batch.ended':
      return `batch ${event.batchId} ${event.status}${endedDetail(event)}`;
    case 'request.retried':
      return `retrying ${event.requests} requests in ${event.files} new files`;
    case 'run.waiting':
      return waitingLine(event);
    case 'batches.cancelling':
      return `cancelling ${event.batches} batches`;
    case 'direct.started':
      return `sending ${event.requests} requests of ${event.file} as ${event.path} calls`;
    case 'direct.resumed':
      return `${event.requests} requests were in flight when the last run stopped: sending them again (${event.resent} had been sent: at-least-once, they may be billed twice)`;
    case 'direct.ended':
      return `${event.path} ${event.file}: ${event.answered} answered (${event.succeeded} succeeded) in ${(event.ms / 1000).toFixed(1)} s; ${refusals(event)}`;
    case 'direct.finished':
      return `${event.path} calls: ${event.answered} answered (${event.succeeded} succeeded); ${refusals(event)}`;
    case 'hedge.decided':
      if (event.action === 'hold') return `hedge: not hedging: ${event.reason}`;
      return event.action === 'cancel'
        ? `hedge: cancelling batch ${event.batchId}, its unanswered requests go ${event.path}: ${event.reason}`
        : `hedge: batch ${event.batchId} taken over: ${event.reason}`;
    default:
      return undefined;
  }
}

/** The refusals tried again, by why, so a limit reads apart from a fault. */
function refusals(c: { rateLimited: number; capacityRefused: number; serverErrors: number }): string {
  return `tried again after ${c.rateLimited} rate limits (429), ${c.capacityRefused} capacity refusals (flex 429 resource_unavailable), ${c.serverErrors} server errors (5xx or network)`;
}

function endedDetail(event: Extract<BatchpipeEvent, { type: 'batch.ended' }>): string {
  const f = event.failure;
  if (f?.kind === 'token_limit') {
    return `: refused for the enqueued-token limit ${f.othersQueued ? 'behind other batches of this run' : 'with nothing else of this run queued'}; its file waits`;
  }
  if (f?.kind === 'validation') {
    return `: validation refused ${f.failed} of its requests (failed); the other ${f.restaged} go again in a new file`;
  }
  const c = event.counts;
  return c ? ` (${c.completed} completed, ${c.failed} failed of ${c.total})` : '';
}

/** e.g. `waiting for 2 batches (1 in_progress, 1 finalizing)`. */
function waitingLine(event: Extract<BatchpipeEvent, { type: 'run.waiting' }>): string {
  if (event.open === 0) return 'waiting for the next poll';
  const statuses = Object.entries(event.byStatus)
    .map(([status, n]) => `${n} ${status}`)
    .join(', ');
  const held =
    event.heldFiles > 0
      ? `; ${event.heldFiles} more ${event.heldFiles === 1 ? 'file waits' : 'files wait'} for room under --max-batches / --max-enqueued-tokens`
      : '';
  return `waiting for ${event.open} ${event.open === 1 ? 'batch' : 'batches'} (${statuses})${held}`;
}

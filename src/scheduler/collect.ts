import { setTimeout as sleep } from 'node:timers/promises';
import { type CostSettings, spentSoFar, usdOfPico } from '../cost/run-cost.js';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { BatchEndedEvent } from '../events.js';
import type { BatchRow } from '../ledger/batches.js';
import { storedRunIdentity } from '../ledger/identity.js';
import type { FileRow } from '../ledger/ledger.js';
import { applyResultLines } from '../results/apply.js';
import { alignedChunks } from '../results/line-chunks.js';
import { type RemoteBatch, TERMINAL_BATCH_STATUSES } from '../types.js';
import type { ScheduledRun } from './scheduled-run.js';

/** A batch's tokens so far and, with prices, what they cost at batch prices (exact, pico-dollars). */
interface BatchTally {
  tokens: { input: number; output: number };
  picoUsd: bigint;
}

/**
 * What the batch's requests have used and cost so far (an unpriced model counts nothing). With
 * prices, the tokens come from the same read of the batch's rows as the cost.
 */
function batchTally(run: ScheduledRun, row: BatchRow, prices: CostSettings | undefined): BatchTally {
  if (!prices) return { tokens: run.states.batchTokens(row.id), picoUsd: 0n };
  const model = storedRunIdentity(run.ledger)?.model ?? null;
  const spent = spentSoFar(run.ledger, model, { ...prices, allowUnpriced: true }, row.id);
  return { tokens: { input: spent.inputTokens, output: spent.outputTokens }, picoUsd: spent.batchPicoUsd };
}

/** Downloads of an ended batch's files per collect round before it is reported incomplete. */
const DOWNLOAD_TRIES = 3;
/** The wait before the second download; it doubles before each next one. */
const DOWNLOAD_BACKOFF_MS = 500;

export interface CollectOptions {
  maxAttempts: number;
  /** Prices for the cost of each applied file (`results.applied`'s `costUsd`), when anyone listens. */
  prices?: CostSettings | undefined;
}

export interface CollectRound {
  /** Batches still unfinished after this round. */
  open: number;
  /** Batches that ended and were settled in this round. */
  settled: number;
}

/**
 * One polling round: refresh every open batch; for each that has ended, stream its output and
 * error files into the ledger and settle the requests the files do not mention. Safe to repeat
 * after a crash: applying a batch's files again changes nothing twice. A batch whose files stay
 * short of what it reports is left open (the others are settled) and the round ends with
 * BP_RESULT_INCOMPLETE.
 */
export async function collectRound(run: ScheduledRun, options: CollectOptions): Promise<CollectRound> {
  let settled = 0;
  let incomplete: BatchpipeError | undefined;
  for (const row of run.tables.openBatches()) {
    const batch = await retrieveBatch(run, row);
    if (!TERMINAL_BATCH_STATUSES.has(batch.status)) continue;
    try {
      await settleBatch(run, row, batch, options);
      settled++;
    } catch (err) {
      if (!(err instanceof BatchpipeError && err.code === ErrorCodes.RESULT_INCOMPLETE)) throw err;
      incomplete ??= err;
    }
  }
  if (incomplete) throw incomplete;
  return { open: run.tables.openBatches().length, settled };
}

/** The batch as the API shows it now, recorded in the ledger. */
async function retrieveBatch(run: ScheduledRun, row: BatchRow): Promise<RemoteBatch> {
  const id = row.remote_id!;
  const batch = await run.remote(`retrieving batch ${id}`, () => run.provider.retrieveBatch(id));
  run.tables.updateStatus(row.id, batch);
  if (run.listening) {
    run.emit({
      type: 'batch.polled',
      batchId: batch.id,
      file: run.tables.file(row.file_id).name,
      status: batch.status,
      rawStatus: batch.rawStatus,
      counts: batch.counts,
    });
  }
  return batch;
}

/**
 * Applies an ended batch's files and settles it, but only once the files account for every request
 * the batch reports: a download cut short (a proxy, a dropped connection) or an output file id not
 * given yet would otherwise make answered requests look missing, and they would be sent again.
 */
async function settleBatch(
  run: ScheduledRun,
  row: BatchRow,
  ended: RemoteBatch,
  options: CollectOptions,
): Promise<void> {
  const file = run.tables.file(row.file_id);
  let batch = ended;
  for (let tries = 1; ; tries++) {
    let read: number | undefined;
    let failure: unknown;
    try {
      read = await applyBatchFiles(run, row, batch, options);
    } catch (err) {
      failure = err;
    }
    const expected = expectedLines(batch, file);
    if (read !== undefined && read >= expected) break;
    if (tries >= DOWNLOAD_TRIES) {
      if (failure !== undefined) throw failure;
      throw incompleteError(run, batch, file, read ?? 0, expected, tries);
    }
    run.emit({
      type: 'batch.redownload',
      batchId: batch.id,
      linesRead: read,
      linesExpected: expected,
      error: failure === undefined ? undefined : (failure as Error).message,
    });
    await sleep(DOWNLOAD_BACKOFF_MS * 2 ** (tries - 1));
    // Ask for the batch again too: a file id can show up after the status does.
    batch = await retrieveBatch(run, row);
  }
  const failure = run.ledger.transaction(() => {
    const what = settleLeftovers(run, row, batch, options.maxAttempts);
    run.tables.markSettled(row.id);
    return what;
  });
  if (run.listening) {
    run.emit({
      type: 'batch.ended',
      batchId: batch.id,
      file: file.name,
      status: batch.status,
      counts: batch.counts,
      failure,
      tokens: run.states.batchTokens(row.id),
    });
  }
}

/**
 * Streams both files into the ledger, whatever the status: a completed batch can hold failures, an
 * expired or cancelled one holds partial results. A null, missing or empty id means no file.
 * Returns the lines read. Applying is idempotent, so a short read followed by a whole one is exact.
 */
async function applyBatchFiles(
  run: ScheduledRun,
  row: BatchRow,
  batch: RemoteBatch,
  options: CollectOptions,
): Promise<number> {
  let lines = 0;
  // The batch's tokens and spend after one file are those before the next: each is read once.
  let before: BatchTally | undefined;
  for (const fileId of [batch.outputFile, batch.errorFile]) {
    if (!fileId) continue;
    const content = await run.remote(`downloading ${fileId}`, () => run.provider.openResultFile(fileId));
    if (run.listening) before ??= batchTally(run, row, options.prices);
    const counts = await applyResultLines(run.ledger, alignedChunks(content), {
      batchId: row.id,
      maxAttempts: options.maxAttempts,
      endpoint: run.endpoint,
      inline: true,
    });
    if (before) {
      const after = batchTally(run, row, options.prices);
      run.emit({
        type: 'results.applied',
        batchId: batch.id,
        resultFile: fileId,
        lines: counts.lines,
        succeeded: counts.succeeded,
        failed: counts.failed,
        retried: counts.retried,
        skipped: counts.skipped,
        unknown: counts.unknown,
        unknownIds: counts.unknownIds,
        tokens: {
          input: after.tokens.input - before.tokens.input,
          output: after.tokens.output - before.tokens.output,
        },
        ...(options.prices ? { costUsd: usdOfPico(after.picoUsd - before.picoUsd) } : {}),
      });
      before = after;
    }
    lines += counts.lines;
  }
  return lines;
}

/**
 * Lines an ended batch's files must hold between them: one per request it reports done
 * (`request_counts.completed + failed`), and for a completed batch one per request of its file.
 */
function expectedLines(batch: RemoteBatch, file: FileRow): number {
  const c = batch.counts;
  const reported = c ? c.completed + c.failed : 0;
  return batch.status === 'completed' ? Math.max(reported, file.lines) : reported;
}

function incompleteError(
  run: ScheduledRun,
  batch: RemoteBatch,
  file: FileRow,
  read: number,
  expected: number,
  tries: number,
): BatchpipeError {
  const c = batch.counts;
  const reported = c ? `${c.completed} completed and ${c.failed} failed of ${c.total} requests` : 'no counts';
  const noOutput = !batch.outputFile && (c?.completed ?? 0) > 0 ? ' (it gives no output file yet)' : '';
  return new BatchpipeError(
    ErrorCodes.RESULT_INCOMPLETE,
    `batch ${batch.id} (${file.name}, ${file.lines} requests) is ${batch.status} and reports ${reported}${noOutput}, ` +
      `but its output and error files held ${read} of the ${expected} lines expected, ${tries} downloads in a row; ` +
      `nothing was re-staged and the batch stays open: run \`batchpipe collect --ledger ${run.ledger.path}\` again later`,
  );
}

/**
 * Requests of an ended batch that neither file mentions: unfinished when the batch expired or was
 * cancelled, all of them when it failed. A failed batch ran none of its requests:
 * - refused for the enqueued-token limit, it is put back whole (its file gets a new batch later,
 *   nobody's attempt is spent), the refusal recorded as made alone or while others of the run were
 *   queued (only the first kind can mean the file is too big for the limit);
 * - failed validation naming lines, those lines' requests fail with their codes and the rest go
 *   back to `staged` for a new file, their attempt unspent;
 * - failed naming no line, every request fails with the batch's first error.
 */
function settleLeftovers(
  run: ScheduledRun,
  row: BatchRow,
  batch: RemoteBatch,
  maxAttempts: number,
): BatchEndedEvent['failure'] {
  const { states } = run;
  if (batch.refusedForTokenLimit) {
    const queued = run.tables.othersQueuedAt(row.id, batch.endedAt ?? batch.createdAt);
    run.tables.recordTokenRefusal(row.id, queued ? 'queued' : 'alone');
    states.putBackRefused(row.id);
    return { kind: 'token_limit', othersQueued: queued };
  }
  if (batch.status === 'failed') {
    const refused = states.failNamedLines(row.id, row.file_id, batch.errors);
    if (refused > 0) {
      const again = states.restageUnrefused(row.id);
      return { kind: 'validation', failed: refused, restaged: again };
    }
    const first = batch.errors[0];
    states.finalizeLeftovers(
      row.id,
      'failed',
      first?.code ?? 'batch_failed',
      first?.message ?? 'the batch failed',
    );
    return undefined;
  }
  if (batch.status === 'expired') {
    states.retryLeftovers(
      row.id,
      'expired',
      'batch_expired',
      'the batch expired before this request ran',
      maxAttempts,
    );
  } else if (row.hedged_to !== null) {
    // Cancelled (or ended) after the run chose to hedge it: what it did not answer goes on the hedge
    // path, attempt unspent.
    states.hedgeLeftovers(row.id);
  } else if (batch.status === 'cancelled') {
    states.finalizeLeftovers(
      row.id,
      'cancelled',
      'batch_cancelled',
      'the batch was cancelled before this request ran',
    );
  } else {
    states.retryLeftovers(
      row.id,
      'failed',
      'missing_result',
      `the ${batch.status} batch returned no line for this request`,
      maxAttempts,
    );
  }
  return undefined;
}

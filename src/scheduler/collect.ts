import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Batch } from 'openai/resources/batches';
import type { Backend } from '../backends/backend.js';
import { applyResultLines } from '../results/apply.js';
import { type BatchRow, type BatchStore, TERMINAL_STATUSES } from './batch-store.js';
import { apiError } from './remote-calls.js';

export interface CollectOptions {
  maxAttempts: number;
  log?: ((line: string) => void) | undefined;
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
 * after a crash: applying a batch's files again changes nothing twice.
 */
export async function collectRound(
  store: BatchStore,
  backend: Backend,
  options: CollectOptions,
): Promise<CollectRound> {
  let settled = 0;
  for (const row of store.openBatches()) {
    let batch: Batch;
    try {
      batch = await backend.client.batches.retrieve(row.remote_id!);
    } catch (err) {
      throw apiError(backend, `retrieving batch ${row.remote_id}`, err);
    }
    store.updateStatus(row.id, batch);
    if (!TERMINAL_STATUSES.has(batch.status)) continue;
    await settleBatch(store, backend, row, batch, options);
    settled++;
  }
  return { open: store.openBatches().length, settled };
}

async function settleBatch(
  store: BatchStore,
  backend: Backend,
  row: BatchRow,
  batch: Batch,
  options: CollectOptions,
): Promise<void> {
  const { ledger } = store;
  // Both files, whatever the status: a completed batch can hold failures, an expired or cancelled
  // one holds partial results. A null, missing or empty id means no file.
  for (const fileId of [batch.output_file_id, batch.error_file_id]) {
    if (!fileId) continue;
    const counts = await applyResultLines(ledger, await download(backend, fileId), {
      batchId: row.id,
      maxAttempts: options.maxAttempts,
      endpoint: store.endpoint,
    });
    if (counts.unknown > 0)
      options.log?.(`warning: ${counts.unknown} lines of ${fileId} name no request of this run`);
  }
  ledger.transaction(() => {
    settleLeftovers(store, row, batch, options.maxAttempts);
    store.markSettled(row.id);
  });
  const c = batch.request_counts;
  options.log?.(
    `batch ${batch.id} ${batch.status}${c ? ` (${c.completed} completed, ${c.failed} failed of ${c.total})` : ''}`,
  );
}

/** Streams a file's content from the API. */
async function download(backend: Backend, fileId: string): Promise<AsyncIterable<Buffer>> {
  try {
    const response = await backend.client.files.content(fileId);
    if (!response.body) return Readable.from([]);
    return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  } catch (err) {
    throw apiError(backend, `downloading ${fileId}`, err);
  }
}

/**
 * Requests of an ended batch that neither file mentions: unfinished when the batch expired or was
 * cancelled, all of them when it failed. A batch refused for the enqueued-token limit is put back
 * whole: its file gets a new batch later, and nobody's attempt is spent.
 */
function settleLeftovers(store: BatchStore, row: BatchRow, batch: Batch, maxAttempts: number): void {
  const db = store.ledger.db;
  const errors = batch.errors?.data ?? [];
  if (batch.status === 'failed' && errors.some((e) => e.code === 'token_limit_exceeded')) {
    db.prepare(
      "UPDATE requests SET state = 'staged', batch_id = NULL WHERE batch_id = ? AND state = 'submitted'",
    ).run(row.id);
    return;
  }
  if (batch.status === 'failed') {
    markLineErrors(store, row, errors);
    const first = errors[0];
    finalize(store, row.id, 'failed', first?.code ?? 'batch_failed', first?.message ?? 'the batch failed');
    return;
  }
  if (batch.status === 'expired') {
    retryOrFinalize(
      store,
      row.id,
      'expired',
      'batch_expired',
      'the batch expired before this request ran',
      maxAttempts,
    );
  } else if (batch.status === 'cancelled') {
    finalize(
      store,
      row.id,
      'cancelled',
      'batch_cancelled',
      'the batch was cancelled before this request ran',
    );
  } else {
    retryOrFinalize(
      store,
      row.id,
      'failed',
      'missing_result',
      `the ${batch.status} batch returned no line for this request`,
      maxAttempts,
    );
  }
}

/** A failed batch's errors name lines of its input file: line N is the file's Nth request by seq. */
function markLineErrors(
  store: BatchStore,
  row: BatchRow,
  errors: NonNullable<Batch['errors']>['data'] & object,
): void {
  const db = store.ledger.db;
  const atLine = db
    .prepare<[number, number], number>(
      'SELECT seq FROM requests WHERE file_id = ? ORDER BY seq LIMIT 1 OFFSET ?',
    )
    .pluck();
  const mark = db.prepare(
    "UPDATE requests SET state = 'failed', error_code = ?, error_message = ?, result_seq = ? WHERE seq = ? AND batch_id = ? AND state = 'submitted'",
  );
  for (const error of errors) {
    if (!error.line) continue;
    const seq = atLine.get(row.file_id, error.line - 1);
    if (seq === undefined) continue;
    mark.run(
      error.code ?? 'invalid_request',
      `line ${error.line}: ${error.message ?? ''}`,
      store.ledger.nextResultSeq(),
      seq,
      row.id,
    );
  }
}

/** Final state for the batch's remaining submitted requests, numbered in seq order for completion order. */
function finalize(store: BatchStore, batchId: number, state: string, code: string, message: string): void {
  const db = store.ledger.db;
  const span = db
    .prepare<[number], { lo: number | null; hi: number | null }>(
      "SELECT min(seq) AS lo, max(seq) AS hi FROM requests WHERE batch_id = ? AND state = 'submitted'",
    )
    .get(batchId)!;
  if (span.lo === null || span.hi === null) return;
  // One block of the ledger's completion counter, numbered by seq within it.
  const base = store.ledger.nextResultSeq(span.hi - span.lo + 1);
  db.prepare(
    `UPDATE requests SET state = ?, error_code = ?, error_message = ?, result_seq = ? + seq - ?
     WHERE batch_id = ? AND state = 'submitted'`,
  ).run(state, code, message, base, span.lo, batchId);
}

/** Retryable leftovers go back to staged for a new file, unless their attempts are spent. */
function retryOrFinalize(
  store: BatchStore,
  batchId: number,
  state: string,
  code: string,
  message: string,
  maxAttempts: number,
): void {
  store.ledger.db
    .prepare(
      `UPDATE requests SET state = 'staged', attempt = attempt + 1, file_id = NULL, batch_id = NULL,
         error_code = ?, error_message = ?
       WHERE batch_id = ? AND state = 'submitted' AND attempt < ?`,
    )
    .run(code, message, batchId, maxAttempts);
  finalize(store, batchId, state, code, message);
}

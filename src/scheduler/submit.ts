import { closeSync, createReadStream, fstatSync, openSync } from 'node:fs';
import { toStreamingFile } from 'openai';
import type { Batch, BatchCreateParams } from 'openai/resources/batches';
import type { FileObject } from 'openai/resources/files';
import type { Backend } from '../backends/backend.js';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { FileRow } from '../ledger/ledger.js';
import type { BatchRow, BatchStore } from './batch-store.js';
import { apiError, createOnce } from './remote-calls.js';

/** Refusals of one file for the token limit, while nothing else of the run is queued, before giving up. */
const MAX_TOKEN_REFUSALS = 5;

export interface SubmitOptions {
  /** At most this many unfinished batches at once. */
  maxBatches: number;
  /** At most this many estimated tokens queued per model across unfinished batches. */
  maxEnqueuedTokens?: number | undefined;
  log?: ((line: string) => void) | undefined;
}

export interface SubmitSummary {
  uploaded: number;
  created: number;
  /** Files ready for a batch but held back by a limit. */
  waiting: number;
}

/**
 * Uploads every complete file not yet uploaded, then creates batches for ready files as far as the
 * limits allow. Safe to run again at any point: intents left by a crash are settled first.
 */
export async function submitReady(
  store: BatchStore,
  backend: Backend,
  options: SubmitOptions,
): Promise<SubmitSummary> {
  let uploaded = 0;
  for (const file of store.filesToUpload()) {
    await uploadFile(store, backend, file);
    uploaded++;
    options.log?.(`uploaded ${file.name}`);
  }
  await settleBatchIntents(store, backend);
  let created = 0;
  let waiting = 0;
  let open = store.openBatches().length;
  const queued = store.queuedTokensByModel();
  for (const file of store.filesReadyForBatch()) {
    const model = file.model ?? '';
    const tokens = file.tokens;
    const limit = options.maxEnqueuedTokens;
    if (limit !== undefined && tokens > limit) {
      throw new BatchpipeError(
        ErrorCodes.TOKEN_LIMIT,
        `${file.name} holds ~${tokens} tokens, more than --max-enqueued-tokens ${limit} allows at once; prepare with a smaller --max-lines`,
      );
    }
    if (open === 0 && store.tokenLimitRefusals(file.id) >= MAX_TOKEN_REFUSALS) {
      throw new BatchpipeError(
        ErrorCodes.TOKEN_LIMIT,
        `the API refused ${file.name} (~${tokens} tokens) for its enqueued-token limit ${MAX_TOKEN_REFUSALS} times with nothing else of this run queued; prepare with a smaller --max-lines`,
      );
    }
    const already = queued.get(model) ?? 0;
    if (open >= options.maxBatches || (limit !== undefined && already + tokens > limit)) {
      waiting++;
      continue;
    }
    const intent = store.insertBatchIntent(file.id, tokens);
    queued.set(model, already + tokens);
    store.notePeakQueued(model, already + tokens);
    const row = store.pendingIntents().find((r) => r.id === intent)!;
    await createBatch(store, backend, row, file);
    open++;
    created++;
    options.log?.(
      `created batch for ${file.name} (~${tokens} tokens queued for ${model || 'the model'}: ${already + tokens})`,
    );
  }
  return { uploaded, created, waiting };
}

/** Uploads one file (streamed from disk), or finds the upload an interrupted run already made. */
async function uploadFile(store: BatchStore, backend: Backend, file: FileRow): Promise<void> {
  const landed = () => findUploaded(backend, file);
  if (file.upload_started_at !== null) {
    const found = await landed();
    if (found) {
      store.setRemoteFile(file.id, found.id);
      return;
    }
  }
  const fd = openRequestFile(file);
  try {
    store.markUploadStarted(file.id);
    const remote = await createOnce(
      backend,
      `upload of ${file.name}`,
      () =>
        backend.client.files.create(
          {
            file: toStreamingFile(
              createReadStream(file.path, { fd, start: 0, autoClose: false }),
              file.name,
              {
                type: 'application/jsonl',
              },
            ),
            purpose: 'batch',
          },
          { maxRetries: 0 },
        ),
      landed,
    );
    store.setRemoteFile(file.id, remote.id);
  } finally {
    closeSync(fd);
  }
}

/** Opens a request file for upload, checking it is still there as the ledger recorded it. */
function openRequestFile(file: FileRow): number {
  let fd: number;
  try {
    fd = openSync(file.path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BatchpipeError(
      ErrorCodes.LEDGER_MISMATCH,
      code === 'ENOENT'
        ? `request file ${file.path} is in the ledger but missing on disk`
        : `request file ${file.path} cannot be read: ${code ?? err}`,
    );
  }
  const size = fstatSync(fd).size;
  if (size !== file.bytes) {
    closeSync(fd);
    throw new BatchpipeError(
      ErrorCodes.LEDGER_MISMATCH,
      `request file ${file.path} is ${size} bytes on disk but the ledger recorded ${file.bytes}`,
    );
  }
  return fd;
}

/** An uploaded batch file with this file's name and size, if the API has one. */
async function findUploaded(backend: Backend, file: FileRow): Promise<FileObject | undefined> {
  try {
    for await (const remote of backend.client.files.list({ purpose: 'batch' })) {
      if (remote.filename === file.name && remote.bytes === file.bytes) return remote;
    }
  } catch (err) {
    throw apiError(backend, `listing files to find ${file.name}`, err);
  }
  return undefined;
}

/** Creates the batch of an intent row, or finds the one an interrupted run already created. */
async function createBatch(store: BatchStore, backend: Backend, row: BatchRow, file: FileRow): Promise<void> {
  const metadata = {
    batchpipe_run: store.runId,
    batchpipe_file: file.name,
    batchpipe_intent: String(row.id),
  };
  const batch = await createOnce(
    backend,
    `creating the batch for ${file.name}`,
    () =>
      backend.client.batches.create(
        {
          input_file_id: file.remote_file_id!,
          endpoint: file.endpoint as BatchCreateParams['endpoint'],
          completion_window: '24h',
          metadata,
        },
        { maxRetries: 0 },
      ),
    () => findBatch(store, backend, row),
  );
  store.recordCreatedBatch(row, batch);
}

/**
 * Settles intents a crash left without a remote id: a batch carrying the intent's metadata was
 * created (record it); none was (create it now, under the same intent).
 */
async function settleBatchIntents(store: BatchStore, backend: Backend): Promise<void> {
  for (const row of store.pendingIntents()) {
    const found = await findBatch(store, backend, row);
    if (found) store.recordCreatedBatch(row, found);
    else await createBatch(store, backend, row, store.file(row.file_id));
  }
}

/** The batch created for an intent, found by its metadata among batches no older than the intent. */
async function findBatch(store: BatchStore, backend: Backend, row: BatchRow): Promise<Batch | undefined> {
  const runId = store.runId;
  try {
    // Newest first: stop once batches predate the intent (with a minute of clock skew).
    for await (const batch of backend.client.batches.list({ limit: 100 })) {
      if (batch.created_at < row.create_started_at - 60) return undefined;
      const meta = batch.metadata as Record<string, string> | null | undefined;
      if (meta?.batchpipe_run === runId && meta.batchpipe_intent === String(row.id)) return batch;
    }
  } catch (err) {
    throw apiError(backend, 'listing batches to settle an interrupted submit', err);
  }
  return undefined;
}

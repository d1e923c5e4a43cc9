import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync } from 'node:fs';
import { toStreamingFile } from 'openai';
import type { Batch, BatchCreateParams } from 'openai/resources/batches';
import type { FileObject } from 'openai/resources/files';
import type { Backend } from '../backends/backend.js';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { FileRow } from '../ledger/ledger.js';
import { remoteBatchOf } from '../providers/openai/remote-batch.js';
import type { BatchRow, BatchStore } from './batch-store.js';
import { apiError, createOnce } from './remote-calls.js';
import { observed, serverNow } from './server-clock.js';

/** Refusals of one file for the token limit, while nothing else of the run is queued, before giving up. */
const MAX_TOKEN_REFUSALS = 5;
/**
 * Seconds before the intent's server time down to which settling lists: the bound is already a
 * lower one, this only absorbs a server clock stepped back a little (NTP) between intent and create.
 */
const SETTLE_MARGIN_SECONDS = 30;

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
  for (const file of store.tables.filesToUpload()) {
    await uploadFile(store, backend, file);
    uploaded++;
    options.log?.(`uploaded ${file.name}`);
  }
  await settleBatchIntents(store, backend);
  let created = 0;
  let waiting = 0;
  let open = store.tables.openBatches().length;
  const queued = store.tables.queuedTokensByModel();
  // A file the API keeps refusing alone: the others still go; the run stops once nothing else is queued.
  let refusedAlone: FileRow | undefined;
  for (const file of store.tables.filesReadyForBatch()) {
    const model = file.model ?? '';
    const tokens = file.tokens;
    const limit = options.maxEnqueuedTokens;
    if (limit !== undefined && tokens > limit) {
      throw new BatchpipeError(
        ErrorCodes.TOKEN_LIMIT,
        `${file.name} holds ~${tokens} tokens, more than --max-enqueued-tokens ${limit} allows at once; its requests stay staged: ${tokenLimitRemedy(store, file, limit)}`,
      );
    }
    if (store.tables.loneTokenRefusals(file.id) >= MAX_TOKEN_REFUSALS) {
      refusedAlone ??= file;
      waiting++;
      continue;
    }
    const already = queued.get(model) ?? 0;
    if (
      open >= options.maxBatches ||
      (limit !== undefined && already + tokens > limit) ||
      (open > 0 && store.tables.waitsAfterRefusal(file.id))
    ) {
      waiting++;
      continue;
    }
    const row = store.tables.insertBatchIntent(
      file.id,
      tokens,
      await serverNow(backend, `the batch of ${file.name}`),
    );
    queued.set(model, already + tokens);
    store.tables.notePeakQueued(model, already + tokens);
    await createBatch(store, backend, row, file);
    open++;
    created++;
    options.log?.(
      `created batch for ${file.name} (~${tokens} tokens queued for ${model || 'the model'}: ${already + tokens})`,
    );
  }
  if (refusedAlone && open === 0) {
    store.tables.markTokenRefusalsReported(refusedAlone.id);
    throw new BatchpipeError(
      ErrorCodes.TOKEN_LIMIT,
      `the API refused ${refusedAlone.name} (~${refusedAlone.tokens} tokens) for its enqueued-token limit ${MAX_TOKEN_REFUSALS} times with nothing else of this run queued; its requests stay staged: ${tokenLimitRemedy(store, refusedAlone)}`,
    );
  }
  return { uploaded, created, waiting };
}

/** How to go on after a BP_TOKEN_LIMIT stop: a higher limit, or the file's requests in smaller files. */
function tokenLimitRemedy(store: BatchStore, file: FileRow, clientLimit?: number): string {
  const smaller = Math.max(1, Math.floor(file.lines / 2));
  const higher =
    clientLimit === undefined
      ? 'run the same command again once the limit is higher (another usage tier, or fewer batches of your organization queued)'
      : 'run the same command again with a higher --max-enqueued-tokens';
  if (file.lines <= 1) return `${higher}; it holds a single request, so smaller files cannot help`;
  return `${higher}, or split the files not yet sent with \`batchpipe run --ledger ${store.ledger.path} --max-lines ${smaller}\` (your backend flags, no input)`;
}

/**
 * Uploads one file (streamed from disk), or finds the upload an interrupted run already made. Each
 * upload intent has a tag of its own in the uploaded name (`<file>.<tag>.jsonl`), so an upload is
 * found by what this intent sent, never mistaken for another.
 */
async function uploadFile(store: BatchStore, backend: Backend, file: FileRow): Promise<void> {
  if (file.upload_started_at !== null) {
    const found = await findUploaded(backend, file, file.upload_intent, file.upload_server_after);
    if (found) {
      store.tables.setRemoteFile(file.id, found.id);
      return;
    }
  }
  const fd = openRequestFile(file);
  try {
    const intent = randomBytes(4).toString('hex');
    const serverAfter = await serverNow(backend, `the upload of ${file.name}`);
    store.tables.markUploadStarted(file.id, intent, serverAfter);
    const remote = await createOnce(
      backend,
      `upload of ${file.name}`,
      () =>
        observed(
          backend,
          backend.client.files.create(
            {
              file: toStreamingFile(
                createReadStream(file.path, { fd, start: 0, autoClose: false }),
                uploadName(file.name, intent),
                { type: 'application/jsonl' },
              ),
              purpose: 'batch',
            },
            { maxRetries: 0 },
          ),
        ),
      () => findUploaded(backend, file, intent, serverAfter ?? null),
    );
    store.tables.setRemoteFile(file.id, remote.id);
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

/**
 * `run-a1-00001.jsonl` uploaded under intent `1f2e3d4c` → `run-a1-00001.1f2e3d4c.jsonl` (a ledger
 * from before intent tags uploaded under the plain name).
 */
function uploadName(name: string, intent: string | null): string {
  return intent === null ? name : `${name.replace(/\.jsonl$/, '')}.${intent}.jsonl`;
}

/**
 * The file uploaded under this intent (its name and size), if the API has one: listed newest first
 * down to the intent's time by the API's clock.
 */
async function findUploaded(
  backend: Backend,
  file: FileRow,
  intent: string | null,
  serverAfter: number | null,
): Promise<FileObject | undefined> {
  const name = uploadName(file.name, intent);
  const since = serverAfter === null ? undefined : serverAfter - SETTLE_MARGIN_SECONDS;
  try {
    for await (const remote of backend.client.files.list({ purpose: 'batch', order: 'desc' })) {
      if (since !== undefined && remote.created_at < since) return undefined;
      if (remote.filename === name && remote.bytes === file.bytes) return remote;
    }
  } catch (err) {
    throw apiError(backend, `listing files to find ${name}`, err);
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
      observed(
        backend,
        backend.client.batches.create(
          {
            input_file_id: file.remote_file_id!,
            endpoint: file.endpoint as BatchCreateParams['endpoint'],
            completion_window: '24h',
            metadata,
          },
          { maxRetries: 0 },
        ),
      ),
    () => findBatch(store, backend, row),
  );
  store.tables.recordCreatedBatch(row, remoteBatchOf(batch));
}

/**
 * Settles intents a crash left without a remote id: a batch carrying the intent's metadata was
 * created (record it); none was (create it now, under the same intent).
 */
async function settleBatchIntents(store: BatchStore, backend: Backend): Promise<void> {
  for (const row of store.tables.pendingIntents()) {
    const found = await findBatch(store, backend, row);
    if (found) store.tables.recordCreatedBatch(row, remoteBatchOf(found));
    else await createBatch(store, backend, row, store.tables.file(row.file_id));
  }
}

/**
 * The batch created for an intent, found by its metadata: batches are listed newest first down to
 * the intent's time by the API's own clock (`created_at` against the server time recorded at the
 * intent), so however far the API's clock is from ours, nothing created since is missed. An intent
 * recorded without a server time is settled by listing everything.
 */
async function findBatch(store: BatchStore, backend: Backend, row: BatchRow): Promise<Batch | undefined> {
  const runId = store.runId;
  const since =
    row.intent_server_after === null ? undefined : row.intent_server_after - SETTLE_MARGIN_SECONDS;
  try {
    for await (const batch of backend.client.batches.list({ limit: 100 })) {
      if (since !== undefined && batch.created_at < since) return undefined;
      const meta = batch.metadata as Record<string, string> | null | undefined;
      if (meta?.batchpipe_run === runId && meta.batchpipe_intent === String(row.id)) return batch;
    }
  } catch (err) {
    throw apiError(backend, 'listing batches to settle an interrupted submit', err);
  }
  return undefined;
}

import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { BatchpipeEvent } from '../events.js';
import { ringReads } from '../internal/ring-reads.js';
import type { BatchRow } from '../ledger/batches.js';
import type { FileRow } from '../ledger/ledger.js';
import { type BatchIntent, type FindSince, type RemoteFile, UPLOAD_BUFFERS } from '../providers/port.js';
import type { RemoteBatch } from '../types.js';
import { type Budget, type Commitment, commitment, fileEstimate, overBudget } from './budget.js';
import type { ScheduledRun } from './scheduled-run.js';
import { fileTokens } from './token-count.js';

/**
 * Bytes read from a request file per chunk of its upload. The SDK's multipart body costs CPU per
 * chunk: a 23 MB file of 50,000 requests took 145 ms of CPU to upload in the 64 KB chunks of a
 * default read stream, 90 ms in 256 KB ones and 75 ms in 1 MB ones. The chunks go round a few
 * buffers (`ringReads`), so their size is not memory that piles up.
 */
const UPLOAD_CHUNK = 256 * 1024;

/** Refusals of one file for the token limit, while nothing else of the run is queued, before giving up. */
const MAX_TOKEN_REFUSALS = 5;
/** Seconds before the intent's server time down to which settling lists (see `since`). */
const SETTLE_MARGIN_SECONDS = 30;

export interface SubmitOptions {
  /** At most this many unfinished batches at once. */
  maxBatches: number;
  /** At most this many estimated tokens queued per model across unfinished batches. */
  maxEnqueuedTokens?: number | undefined;
  /** `--max-usd`: no batch that would take spent + queued + its file over the budget. */
  budget?: Budget | undefined;
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
export async function submitReady(run: ScheduledRun, options: SubmitOptions): Promise<SubmitSummary> {
  const uploads = run.provider.capabilities.upload;
  let uploaded = 0;
  for (const file of uploads ? run.tables.filesToUpload() : []) {
    const remoteFileId = await uploadFile(run, file);
    uploaded++;
    run.emit({
      type: 'file.uploaded',
      file: file.name,
      remoteFileId,
      requests: file.lines,
      bytes: file.bytes,
    });
  }
  await settleBatchIntents(run);
  let created = 0;
  let waiting = 0;
  let open = run.tables.openBatches().length;
  const queued = run.tables.queuedTokensByModel();
  // A file the API keeps refusing alone: the others still go; the run stops once nothing else is queued.
  let refusedAlone: FileRow | undefined;
  // The first file the budget holds back: the run stops at it once nothing is open.
  let overBudgetStop: BatchpipeError | undefined;
  const budget = options.budget;
  // What the run is committed to, read once a file is about to get a batch (not at every poll).
  let committed: Commitment | undefined;
  for (const file of run.tables.filesReadyForBatch(uploads)) {
    const model = file.model ?? '';
    const limit = options.maxEnqueuedTokens;
    // The limit needs the real count (made now, once per file, kept); without one, prepare's
    // characters/4 figure stands, and counting every request would cost more CPU than the rest of submit.
    const tokens = limit !== undefined ? (await fileTokens(run, file)).inputTokens : file.tokens;
    if (limit !== undefined && tokens > limit) {
      throw new BatchpipeError(
        ErrorCodes.TOKEN_LIMIT,
        `${file.name} holds ~${tokens} tokens, more than --max-enqueued-tokens ${limit} allows at once; its requests stay staged: ${tokenLimitRemedy(run, file, limit)}`,
      );
    }
    if (run.tables.loneTokenRefusals(file.id) >= MAX_TOKEN_REFUSALS) {
      refusedAlone ??= file;
      waiting++;
      continue;
    }
    const already = queued.get(model) ?? 0;
    if (
      open >= options.maxBatches ||
      (limit !== undefined && already + tokens > limit) ||
      (open > 0 && run.tables.waitsAfterRefusal(file.id))
    ) {
      waiting++;
      continue;
    }
    if (budget) {
      committed ??= await commitment(run, budget);
      const cost = await fileEstimate(run, file, budget);
      if (committed.spentMicroUsd + committed.queuedMicroUsd + cost > budget.maxMicroUsd) {
        overBudgetStop ??= overBudget(run, file, cost, committed, budget);
        waiting++;
        continue;
      }
      committed = { ...committed, queuedMicroUsd: committed.queuedMicroUsd + cost };
    }
    const row = run.tables.insertBatchIntent(
      file.id,
      run.provider.name,
      tokens,
      await serverNow(run, `the batch of ${file.name}`),
    );
    queued.set(model, already + tokens);
    run.tables.notePeakQueued(model, already + tokens);
    const batch = await createBatch(run, row, file);
    open++;
    created++;
    run.emit(batchCreated(batch, file, { queuedTokens: already + tokens }));
  }
  if (overBudgetStop && open === 0) throw overBudgetStop;
  if (refusedAlone && open === 0) {
    run.tables.markTokenRefusalsReported(refusedAlone.id);
    throw new BatchpipeError(
      ErrorCodes.TOKEN_LIMIT,
      `the API refused ${refusedAlone.name} (~${refusedAlone.tokens} tokens) for its enqueued-token limit ${MAX_TOKEN_REFUSALS} times with nothing else of this run queued; its requests stay staged: ${tokenLimitRemedy(run, refusedAlone)}`,
    );
  }
  return { uploaded, created, waiting };
}

/** How to go on after a BP_TOKEN_LIMIT stop: a higher limit, or the file's requests in smaller files. */
function tokenLimitRemedy(run: ScheduledRun, file: FileRow, clientLimit?: number): string {
  const smaller = Math.max(1, Math.floor(file.lines / 2));
  const higher =
    clientLimit === undefined
      ? 'run the same command again once the limit is higher (another usage tier, or fewer batches of your organization queued)'
      : 'run the same command again with a higher --max-enqueued-tokens';
  if (file.lines <= 1) return `${higher}; it holds a single request, so smaller files cannot help`;
  return `${higher}, or split the files not yet sent with \`batchpipe run --ledger ${run.ledger.path} --max-lines ${smaller}\` (your backend flags, no input)`;
}

/**
 * Uploads one file (streamed from disk), or finds the upload an interrupted run already made. Each
 * upload intent has a tag of its own in the uploaded name (`<file>.<tag>.jsonl`), so an upload is
 * found by what this intent sent, never mistaken for another.
 */
async function uploadFile(run: ScheduledRun, file: FileRow): Promise<string> {
  const { provider, tables } = run;
  if (file.upload_started_at !== null) {
    const found = await findUploaded(run, file, file.upload_intent, file.upload_server_after);
    if (found) {
      tables.setRemoteFile(file.id, found.id);
      return found.id;
    }
  }
  const fd = openRequestFile(file);
  try {
    const intent = randomBytes(4).toString('hex');
    const serverAfter = await serverNow(run, `the upload of ${file.name}`);
    tables.markUploadStarted(file.id, intent, serverAfter);
    const remote = await run.createOnce(
      `upload of ${file.name}`,
      () =>
        provider.uploadFile!({
          name: uploadName(file.name, intent),
          bytes: file.bytes,
          path: file.path,
          open: () => ringReads(fd, UPLOAD_CHUNK, UPLOAD_BUFFERS),
        }),
      () => findUploaded(run, file, intent, serverAfter ?? null),
    );
    tables.setRemoteFile(file.id, remote.id);
    return remote.id;
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
 * The API's time now (a lower bound, unix seconds), for the intent of `what`; undefined when the
 * provider cannot tell (settling then lists everything).
 */
function serverNow(run: ScheduledRun, what: string): Promise<number | undefined> {
  return run.remote(`reading the API's clock for ${what}`, () => run.provider.serverNow());
}

/**
 * Where settling an intent lists down to: the intent's server time, less a margin. The bound is
 * already a lower one; the margin only absorbs a server clock stepped back a little (NTP) between
 * intent and create. An intent recorded without a server time lists everything.
 */
function since(serverAfter: number | null): FindSince {
  return { createdSince: serverAfter === null ? undefined : serverAfter - SETTLE_MARGIN_SECONDS };
}

/**
 * The file uploaded under this intent (its name and size), if the API has one: listed newest first
 * down to the intent's time by the API's clock.
 */
function findUploaded(
  run: ScheduledRun,
  file: FileRow,
  intent: string | null,
  serverAfter: number | null,
): Promise<RemoteFile | undefined> {
  const name = uploadName(file.name, intent);
  return run.remote(`listing files to find ${name}`, () =>
    run.provider.findUpload!(name, file.bytes, since(serverAfter)),
  );
}

/** Creates the batch of an intent row, or finds the one an interrupted run already created. */
async function createBatch(run: ScheduledRun, row: BatchRow, file: FileRow): Promise<RemoteBatch> {
  const input = run.provider.capabilities.upload
    ? { fileId: file.remote_file_id! }
    : { path: file.path, lines: file.lines, bytes: file.bytes };
  const batch = await run.createOnce(
    `creating the batch for ${file.name}`,
    () =>
      run.provider.createBatch({
        intent: intentOf(run, row, file),
        endpoint: file.endpoint,
        model: file.model,
        input,
      }),
    () => findBatch(run, row),
  );
  run.tables.recordCreatedBatch(row, batch);
  return batch;
}

function batchCreated(
  batch: RemoteBatch,
  file: FileRow,
  queue: { queuedTokens: number } | 'recovered',
): BatchpipeEvent {
  return {
    type: 'batch.created',
    batchId: batch.id,
    provider: batch.provider,
    file: file.name,
    requests: file.lines,
    tokens: file.tokens,
    model: file.model,
    queuedTokens: queue === 'recovered' ? undefined : queue.queuedTokens,
    recovered: queue === 'recovered',
  };
}

function intentOf(run: ScheduledRun, row: BatchRow, file: FileRow): BatchIntent {
  return {
    runId: run.runId,
    intentId: String(row.id),
    fileName: file.name,
    requests: file.lines,
    isKnown: (remoteId) => run.tables.batches().some((b) => b.remote_id === remoteId),
  };
}

/**
 * Settles intents a crash left without a remote id: a batch tagged with the intent was created
 * (record it); none was (create it now, under the same intent).
 */
async function settleBatchIntents(run: ScheduledRun): Promise<void> {
  for (const row of run.tables.pendingIntents()) {
    const file = run.tables.file(row.file_id);
    let batch = await findBatch(run, row);
    if (batch) run.tables.recordCreatedBatch(row, batch);
    else batch = await createBatch(run, row, file);
    run.emit(batchCreated(batch, file, 'recovered'));
  }
}

/**
 * The batch created for an intent, found by its tag: batches are listed newest first down to the
 * intent's time by the API's own clock (`created_at` against the server time recorded at the
 * intent), so however far the API's clock is from ours, nothing created since is missed. An intent
 * recorded without a server time is settled by listing everything.
 */
function findBatch(run: ScheduledRun, row: BatchRow): Promise<RemoteBatch | undefined> {
  const file = run.tables.file(row.file_id);
  return run.remote('listing batches to settle an interrupted submit', () =>
    run.provider.findBatchByIntent(intentOf(run, row, file), since(row.intent_server_after)),
  );
}

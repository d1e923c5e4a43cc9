/**
 * Anthropic's Message Batches API (`/v1/messages/batches`): create, retrieve, list, cancel, delete and
 * results. A batch is an engine batch of dialect `anthropic` whose input the creation wrote from the
 * inline requests; these handlers record intents and show views, the engine does the rest.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  type ApiContext,
  type Handler,
  requestOrigin,
  startCancelling,
  withServerDate,
} from '../../api/api-context.js';
import { isBlank, readLines } from '../../engine/jsonl-lines.js';
import { parseRequestLine } from '../../engine/request-line.js';
import { ApiError, invalidRequest } from '../../http/api-error.js';
import { sendJson } from '../../http/respond.js';
import type { StoredBatch } from '../../store/server-store.js';
import { type OutputLine, TERMINAL_STATUSES } from '../../types.js';
import { anthropicBatchId, batchIdOfAnthropic, newFileId } from '../../util/ids.js';
import { keepInternalFile, newEngineBatch } from '../engine-batch.js';
import { writeBatchRequests } from './batch-requests.js';
import { erroredLine, messageBatchView, type ResultLine, resultLine } from './message-batch-view.js';

const ENDPOINT = '/v1/messages';

/** `POST /v1/messages/batches`: checks and writes the requests, then records the batch for the engine. */
export const createMessageBatch: Handler = withServerDate(async (ctx, req, res) => {
  const tmpPath = path.join(ctx.dataDir.uploadsDir, `${randomUUID()}.part`);
  const count = await writeBatchRequests(req, tmpPath);
  const inputFileId = newFileId();
  await keepInternalFile(ctx, tmpPath, inputFileId, 'message-batch-requests.jsonl');
  const createdMs = ctx.clock.nowMs();
  const batch = newEngineBatch(ENDPOINT, inputFileId, createdMs, ctx.completionWindowMs);
  ctx.store.insertBatch(batch, {
    deadlineMs: createdMs + ctx.completionWindowMs,
    tokens: 0,
    outputFileId: newFileId(),
    errorFileId: newFileId(),
    outputExpiresAfter: null,
    dialect: 'anthropic',
    requestCount: count,
  });
  ctx.engine.submit(batch.id);
  const stored = ctx.store.getBatch(batch.id) as StoredBatch;
  if (ctx.faults.loseCreateResponse()) {
    ctx.log(`${anthropicBatchId(batch.id)}: created; dropping the response (--lose-create-responses)`);
    res.destroy();
    return;
  }
  sendJson(res, 200, messageBatchView(stored, requestOrigin(req)));
});

/** `GET /v1/messages/batches/{id}`. */
export const retrieveMessageBatch: Handler = withServerDate(async (ctx, req, res, [id]) => {
  sendJson(res, 200, messageBatchView(requireMessageBatch(ctx, id), requestOrigin(req)));
});

/** `GET /v1/messages/batches`: newest first; `after_id` (older), `before_id` (newer), `limit` 1–1000 (20). */
export const listMessageBatches: Handler = withServerDate(async (ctx, req, res, _params, query) => {
  const cursor = (name: string) => {
    const value = query.get(name);
    if (value === null || value === '') return undefined;
    const batchId = batchIdOfAnthropic(value);
    if (!batchId) throw invalidRequest(`${name}: no message batch ${JSON.stringify(value)}`);
    return batchId;
  };
  const limitText = query.get('limit');
  const limit = limitText === null || limitText === '' ? 20 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw invalidRequest('limit: Input should be an integer from 1 to 1000');
  }
  const page = ctx.store.listBatches({
    dialect: 'anthropic',
    after: cursor('after_id'),
    before: cursor('before_id'),
    limit,
  });
  const origin = requestOrigin(req);
  const data = page.data.map((stored) => messageBatchView(stored, origin));
  sendJson(res, 200, {
    data,
    has_more: page.hasMore,
    first_id: data[0]?.id ?? null,
    last_id: data[data.length - 1]?.id ?? null,
  });
});

/**
 * `POST /v1/messages/batches/{id}/cancel`: `canceling` now; requests that never ran end `canceled`. A
 * batch already canceling, or writing its results, is shown as it is.
 */
export const cancelMessageBatch: Handler = withServerDate(async (ctx, req, res, [id]) => {
  const { batch } = requireMessageBatch(ctx, id);
  if (batch.status === 'validating' || batch.status === 'in_progress') {
    startCancelling(ctx, batch.id);
  } else if (TERMINAL_STATUSES.has(batch.status)) {
    throw invalidRequest(`Message batch ${id} has ended; only a batch still processing can be canceled.`);
  }
  sendJson(res, 200, messageBatchView(requireMessageBatch(ctx, id), requestOrigin(req)));
});

/** `DELETE /v1/messages/batches/{id}`: an ended batch only; its requests and results go with it. */
export const deleteMessageBatch: Handler = withServerDate(async (ctx, _req, res, [id]) => {
  const stored = requireMessageBatch(ctx, id);
  if (!TERMINAL_STATUSES.has(stored.batch.status)) {
    throw invalidRequest(
      `Message batch ${id} is still processing and cannot be deleted; cancel it first, then delete it once it has ended.`,
    );
  }
  ctx.store.deleteBatch(stored.batch.id);
  for (const fileId of [
    stored.batch.input_file_id,
    stored.internals.outputFileId,
    stored.internals.errorFileId,
  ]) {
    ctx.store.deleteFile(fileId);
  }
  ctx.engine.sweep();
  sendJson(res, 200, { id, type: 'message_batch_deleted' });
});

/**
 * `GET /v1/messages/batches/{id}/results`: one JSONL result line per request, streamed: the output
 * file's lines, then the error file's. `--truncate-downloads` cuts it after half its lines.
 */
export const messageBatchResults: Handler = withServerDate(async (ctx, _req, res, [id]) => {
  const stored = requireMessageBatch(ctx, id);
  const { batch } = stored;
  if (!TERMINAL_STATUSES.has(batch.status)) {
    throw invalidRequest(`Message batch ${id} is still processing; its results are ready once it has ended.`);
  }
  const total = stored.internals.requestCount ?? batch.request_counts.total;
  const truncated = ctx.faults.truncateDownload();
  const limit = truncated ? Math.floor(total / 2) : total;
  if (truncated) ctx.log(`${id}: results cut to ${limit} of ${total} lines (--truncate-downloads)`);
  res.writeHead(200, { 'content-type': 'application/x-jsonl' });
  let sent = 0;
  for await (const line of resultLines(ctx, stored)) {
    if (sent >= limit) break;
    sent++;
    if (!res.write(`${JSON.stringify(line)}\n`)) await once(res, 'drain');
  }
  res.end();
});

/** The result lines of an ended batch; a batch the engine failed ran nothing, so each request errored. */
async function* resultLines(ctx: ApiContext, stored: StoredBatch): AsyncGenerator<ResultLine> {
  const { batch } = stored;
  if (batch.status === 'failed') {
    const why = batch.errors?.data[0]?.message ?? 'The batch failed inside the local server.';
    for await (const { text } of readLines(ctx.dataDir.filePath(batch.input_file_id))) {
      if (isBlank(text)) continue;
      const parsed = parseRequestLine(text);
      if (parsed.ok) yield erroredLine(parsed.request.custom_id, 'api_error', why, null);
    }
    return;
  }
  for (const fileId of [batch.output_file_id, batch.error_file_id]) {
    if (fileId === null || !existsSync(ctx.dataDir.filePath(fileId))) continue;
    for await (const { text } of readLines(ctx.dataDir.filePath(fileId))) {
      if (!isBlank(text)) yield resultLine(JSON.parse(text) as OutputLine);
    }
  }
}

/** An Anthropic batch by its id; any other id, or another API's batch, is a 404. */
function requireMessageBatch(ctx: ApiContext, id: string | undefined): StoredBatch {
  const batchId = id === undefined ? undefined : batchIdOfAnthropic(id);
  const stored = batchId === undefined ? undefined : ctx.store.getBatch(batchId);
  if (!stored || stored.deleted || stored.internals.dialect !== 'anthropic') {
    throw new ApiError(404, `No message batch with id ${JSON.stringify(id ?? '')}.`);
  }
  return stored;
}

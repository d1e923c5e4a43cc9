/**
 * Gemini's Batch API: `models/{model}:batchGenerateContent` and `:asyncBatchEmbedContent` (requests
 * inline, or a JSONL file uploaded through the Files API), and `batches/{name}` get, list, cancel and
 * delete. A batch is an engine batch of dialect `gemini`; these handlers record intents and show views.
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  type ApiContext,
  type Handler,
  liveTally,
  startCancelling,
  withServerDate,
} from '../../api/api-context.js';
import { ApiError, invalidRequest } from '../../http/api-error.js';
import { readJsonBody } from '../../http/read-json-body.js';
import { sendJson } from '../../http/respond.js';
import type { StoredBatch } from '../../store/server-store.js';
import { type GeminiBatchInternals, TERMINAL_STATUSES } from '../../types.js';
import { batchIdOfGemini, geminiBatchName, newFileId, newGeminiFileId } from '../../util/ids.js';
import { isObject } from '../../util/is-object.js';
import { keepInternalFile, newEngineBatch } from '../engine-batch.js';
import { inlineRequestsText, requestUrl } from './batch-input.js';
import { pageSize, requireGeminiFile } from './files-api.js';
import { operationView } from './operation-view.js';

/** Gemini's limit on a request that carries its batch inline. */
export const MAX_INLINE_BYTES = 20 * 1024 * 1024;

/** `POST /v1beta/models/{model}:batchGenerateContent`. */
export const createGenerateContentBatch: Handler = withServerDate((ctx, req, res, [model]) =>
  createBatch(ctx, req, res, 'generate', model),
);

/** `POST /v1beta/models/{model}:asyncBatchEmbedContent` (the SDK's `batches.createEmbeddings`). */
export const createEmbedContentBatch: Handler = withServerDate((ctx, req, res, [model]) =>
  createBatch(ctx, req, res, 'embed', model),
);

async function createBatch(
  ctx: ApiContext,
  req: Parameters<Handler>[1],
  res: Parameters<Handler>[2],
  kind: GeminiBatchInternals['kind'],
  modelTail: string | undefined,
): Promise<void> {
  if (!modelTail || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(modelTail)) {
    throw invalidRequest(`Invalid model name ${JSON.stringify(modelTail ?? '')}.`);
  }
  const model = `models/${modelTail}`;
  const body = await readJsonBody(req, {
    maxBytes: MAX_INLINE_BYTES,
    invalidJsonMessage: 'Invalid JSON payload received.',
  });
  const batchSpec = isObject(body.batch) ? body.batch : undefined;
  if (!batchSpec) throw invalidRequest('batch: a batch is required.');
  const input = isObject(batchSpec.inputConfig)
    ? batchSpec.inputConfig
    : isObject(batchSpec.input_config)
      ? batchSpec.input_config
      : undefined;
  // The SDK sends `fileName` for content batches and `file_name` for embedding batches; proto JSON takes both.
  const fileName = input?.fileName ?? input?.file_name;
  const requests = isObject(input?.requests) ? input.requests.requests : undefined;
  if (!input || (fileName === undefined) === (requests === undefined)) {
    throw invalidRequest('batch.input_config: exactly one of file_name and requests is required.');
  }
  const displayName = typeof batchSpec.displayName === 'string' ? batchSpec.displayName : null;
  const url = requestUrl(kind, model);
  const createdMs = ctx.clock.nowMs();

  let inputFileId = newFileId();
  let sourceFileId: string | null = null;
  let requestCount: number | undefined;
  if (fileName !== undefined) {
    if (typeof fileName !== 'string' || !fileName.startsWith('files/')) {
      throw invalidRequest('batch.input_config.file_name: expected a file name, files/….');
    }
    sourceFileId = requireGeminiFile(ctx, fileName.slice('files/'.length)).file.id;
  } else {
    const { text, count } = inlineRequestsText(requests, url);
    const tmpPath = path.join(ctx.dataDir.uploadsDir, `${randomUUID()}.part`);
    await writeFile(tmpPath, text);
    inputFileId = newFileId();
    await keepInternalFile(ctx, tmpPath, inputFileId, 'gemini-inline-requests.jsonl');
    requestCount = count;
  }
  const batch = newEngineBatch(url, inputFileId, createdMs, ctx.completionWindowMs);
  ctx.store.insertBatch(batch, {
    deadlineMs: createdMs + ctx.completionWindowMs,
    tokens: 0,
    outputFileId: newFileId(),
    errorFileId: newFileId(),
    outputExpiresAfter: null,
    dialect: 'gemini',
    ...(requestCount === undefined ? {} : { requestCount }),
    gemini: { kind, model, displayName, sourceFileId, resultsFileId: newGeminiFileId() },
  });
  ctx.engine.submit(batch.id);
  if (ctx.faults.loseCreateResponse()) {
    ctx.log(`${geminiBatchName(batch.id)}: created; dropping the response (--lose-create-responses)`);
    res.destroy();
    return;
  }
  sendJson(res, 200, await view(ctx, requireGeminiBatch(ctx, batch.id.slice('batch_'.length)), true));
}

/** `GET /v1beta/batches/{name}`. */
export const getGeminiBatch: Handler = withServerDate(async (ctx, _req, res, [name]) => {
  sendJson(res, 200, await view(ctx, requireGeminiBatch(ctx, name), true));
});

/** `GET /v1beta/batches`: newest first; `pageSize` (default 50, at most 1,000), `pageToken`. */
export const listGeminiBatches: Handler = withServerDate(async (ctx, _req, res, _params, query) => {
  const pageToken = query.get('pageToken') || undefined;
  const after = pageToken === undefined ? undefined : batchIdOfGemini(pageToken);
  if (pageToken !== undefined && after === undefined) throw invalidRequest('Invalid pageToken.');
  const page = ctx.store.listBatches({ dialect: 'gemini', after, limit: pageSize(query, 50, 1000) });
  const operations = await Promise.all(page.data.map((stored) => view(ctx, stored, false)));
  const last = page.data[page.data.length - 1];
  sendJson(res, 200, {
    operations,
    ...(page.hasMore && last ? { nextPageToken: last.batch.id.slice('batch_'.length) } : {}),
  });
});

/**
 * `POST /v1beta/batches/{name}:cancel`: the batch ends `CANCELLED` with what has finished. A batch
 * already cancelling, or writing its results, is left as it is.
 */
export const cancelGeminiBatch: Handler = withServerDate(async (ctx, _req, res, [name]) => {
  const { batch } = requireGeminiBatch(ctx, name);
  if (batch.status === 'validating' || batch.status === 'in_progress') {
    startCancelling(ctx, batch.id);
  } else if (TERMINAL_STATUSES.has(batch.status)) {
    throw new ApiError(400, `Batch ${geminiBatchName(batch.id)} has already ended.`, {
      type: 'FAILED_PRECONDITION',
    });
  }
  sendJson(res, 200, {});
});

/** `DELETE /v1beta/batches/{name}`: an ended batch only (the local server's rule); its results file stays. */
export const deleteGeminiBatch: Handler = withServerDate(async (ctx, _req, res, [name]) => {
  const stored = requireGeminiBatch(ctx, name);
  const { batch, internals } = stored;
  if (!TERMINAL_STATUSES.has(batch.status)) {
    throw new ApiError(400, `Batch ${geminiBatchName(batch.id)} is still running; cancel it first.`, {
      type: 'FAILED_PRECONDITION',
    });
  }
  ctx.store.deleteBatch(batch.id);
  const gemini = internals.gemini as GeminiBatchInternals;
  const internal = [batch.input_file_id, internals.outputFileId, internals.errorFileId];
  if (gemini.sourceFileId === null) internal.push(gemini.resultsFileId);
  for (const fileId of internal) ctx.store.deleteFile(fileId);
  ctx.engine.sweep();
  sendJson(res, 200, {});
});

function view(ctx: ApiContext, stored: StoredBatch, withInlinedResponses: boolean) {
  return operationView(stored, {
    dataDir: ctx.dataDir,
    tally: liveTally(ctx, stored.batch),
    withInlinedResponses,
  });
}

/** A Gemini batch by the tail of its name (`batches/{tail}`); anything else is a 404. */
function requireGeminiBatch(ctx: ApiContext, tail: string | undefined): StoredBatch {
  const batchId = tail === undefined ? undefined : batchIdOfGemini(tail);
  const stored = batchId === undefined ? undefined : ctx.store.getBatch(batchId);
  if (!stored || stored.deleted || stored.internals.dialect !== 'gemini') {
    throw new ApiError(404, `Batch batches/${tail ?? ''} not found.`, { type: 'NOT_FOUND' });
  }
  return stored;
}

import type { Tally } from '../engine/result-journal.js';
import { invalidRequest, noSuchObject } from '../http/api-error.js';
import { readJsonBody } from '../http/read-json-body.js';
import { sendJson } from '../http/respond.js';
import { BATCH_ENDPOINTS, type BatchInternals, type BatchObject, emptyUsage } from '../types.js';
import { isBatchId, newBatchId, newFileId } from '../util/ids.js';
import { type ApiContext, type Handler, liveTally, startCancelling, withServerDate } from './api-context.js';
import { requireFile } from './files-api.js';
import { intParam, listBody, stringParam } from './query-params.js';

const CREATE_FIELDS = new Set([
  'input_file_id',
  'endpoint',
  'completion_window',
  'metadata',
  'output_expires_after',
]);

/** `POST /v1/batches`: records the batch as `validating`; the engine takes it from there. */
export const createBatch: Handler = withServerDate(async (ctx, req, res) => {
  const body = await readJsonBody(req);
  for (const name of Object.keys(body)) {
    if (!CREATE_FIELDS.has(name))
      throw invalidRequest(`Unrecognized request argument supplied: ${name}`, name);
  }
  const endpoint = requiredString(body, 'endpoint');
  if (!(BATCH_ENDPOINTS as readonly string[]).includes(endpoint)) {
    throw invalidRequest(
      `Invalid value for 'endpoint': ${JSON.stringify(endpoint)}. The local server supports ${BATCH_ENDPOINTS.join(', ')}.`,
      'endpoint',
    );
  }
  const completionWindow = requiredString(body, 'completion_window');
  if (completionWindow !== '24h') {
    throw invalidRequest(
      `Invalid value for 'completion_window': ${JSON.stringify(completionWindow)}. Supported values are: '24h'.`,
      'completion_window',
    );
  }
  const metadata = checkMetadata(body.metadata);
  const outputExpiresAfter = checkOutputExpiresAfter(body.output_expires_after);
  const inputFileId = requiredString(body, 'input_file_id');
  const file = requireFile(ctx, inputFileId, 'input_file_id');
  if (file.purpose !== 'batch') {
    throw invalidRequest(
      `The file ${file.id} has purpose '${file.purpose}'; a batch input file must have purpose 'batch'.`,
      'input_file_id',
    );
  }

  const createdMs = ctx.clock.nowMs();
  const createdAt = Math.floor(createdMs / 1000);
  const deadlineMs = createdMs + ctx.completionWindowMs;
  const batch: BatchObject = {
    id: newBatchId(),
    object: 'batch',
    endpoint,
    model: null,
    errors: null,
    input_file_id: file.id,
    completion_window: completionWindow,
    status: 'validating',
    output_file_id: null,
    error_file_id: null,
    created_at: createdAt,
    in_progress_at: null,
    expires_at: createdAt + Math.ceil(ctx.completionWindowMs / 1000),
    finalizing_at: null,
    completed_at: null,
    failed_at: null,
    expired_at: null,
    cancelling_at: null,
    cancelled_at: null,
    request_counts: { total: 0, completed: 0, failed: 0 },
    usage: emptyUsage(),
    metadata,
  };
  const internals: BatchInternals = {
    deadlineMs,
    tokens: 0,
    outputFileId: newFileId(),
    errorFileId: newFileId(),
    outputExpiresAfter,
  };
  ctx.store.insertBatch(batch, internals);
  ctx.engine.submit(batch.id);
  if (ctx.faults.loseCreateResponse()) {
    ctx.log(`${batch.id}: created; dropping the response (--lose-create-responses)`);
    res.destroy();
    return;
  }
  sendJson(res, 200, batch);
});

/** `GET /v1/batches`: newest first; `after`, `limit` (1–100, default 20). */
export const listBatches: Handler = withServerDate(async (ctx, _req, res, _params, query) => {
  const page = ctx.store.listBatches({
    after: stringParam(query, 'after'),
    limit: intParam(query, 'limit', 1, 100, 20),
  });
  sendJson(
    res,
    200,
    listBody(
      page.data.map((b) => present(ctx, b.batch)),
      page.hasMore,
    ),
  );
});

/** `GET /v1/batches/{id}`, with live counts while it runs. */
export const retrieveBatch: Handler = withServerDate(async (ctx, _req, res, [batchId]) => {
  const batch = present(ctx, requireBatch(ctx, batchId));
  const hide =
    batch.status === 'completed' && batch.output_file_id !== null && ctx.faults.hideOutputFile(batch.id);
  if (hide) ctx.log(`${batch.id}: shown without its output file id (--null-output-files)`);
  sendJson(res, 200, hide ? { ...batch, output_file_id: null } : batch);
});

/**
 * `POST /v1/batches/{id}/cancel`: `cancelling` now, `cancelled` once running requests have stopped,
 * keeping the finished ones. Cancelling a cancelling or cancelled batch returns it as it is.
 */
export const cancelBatch: Handler = withServerDate(async (ctx, _req, res, [batchId]) => {
  const batch = requireBatch(ctx, batchId);
  if (batch.status === 'validating' || batch.status === 'in_progress') {
    sendJson(res, 200, present(ctx, startCancelling(ctx, batch.id).batch));
    return;
  }
  if (batch.status === 'cancelling' || batch.status === 'cancelled') {
    sendJson(res, 200, present(ctx, batch));
    return;
  }
  // 400, not 409: the SDK retries a 409, and asking again will not help.
  throw invalidRequest(`Cannot cancel a batch with status '${batch.status}'.`, null, 'batch_not_cancellable');
});

/** An OpenAI batch by id; another API's batch is as unknown as a made-up id. */
function requireBatch(ctx: ApiContext, batchId: string | undefined): BatchObject {
  const stored = batchId !== undefined && isBatchId(batchId) ? ctx.store.getBatch(batchId) : undefined;
  if (!stored || (stored.internals.dialect ?? 'openai') !== 'openai') {
    throw noSuchObject('Batch', batchId ?? '');
  }
  return stored.batch;
}

/** The batch as the API shows it: counts and usage are live while the engine runs it. */
function present(ctx: ApiContext, batch: BatchObject): BatchObject {
  const tally: Tally | undefined = liveTally(ctx, batch);
  if (!tally) return batch;
  return {
    ...batch,
    request_counts: { total: batch.request_counts.total, completed: tally.completed, failed: tally.failed },
    usage: structuredClone(tally.usage),
  };
}

function requiredString(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (value === undefined || value === null) {
    throw invalidRequest(`Missing required parameter: '${name}'.`, name, 'missing_required_parameter');
  }
  if (typeof value !== 'string')
    throw invalidRequest(`Invalid type for '${name}': expected a string.`, name, 'invalid_type');
  return value;
}

/** At most 16 pairs; keys up to 64 characters, values up to 512, all strings. */
function checkMetadata(value: unknown): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value))
    throw invalidRequest("Invalid 'metadata': expected an object.", 'metadata');
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > 16)
    throw invalidRequest("Invalid 'metadata': at most 16 key-value pairs are allowed.", 'metadata');
  for (const [key, v] of entries) {
    if (key.length > 64)
      throw invalidRequest(
        `Invalid 'metadata': the key ${JSON.stringify(key)} is longer than 64 characters.`,
        'metadata',
      );
    if (typeof v !== 'string')
      throw invalidRequest(`Invalid 'metadata.${key}': expected a string.`, 'metadata');
    if (v.length > 512)
      throw invalidRequest(`Invalid 'metadata.${key}': longer than 512 characters.`, 'metadata');
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

function checkOutputExpiresAfter(value: unknown): number | null {
  if (value === undefined || value === null) return null;
  const v = value as { anchor?: unknown; seconds?: unknown };
  if (typeof value !== 'object' || v.anchor !== 'created_at') {
    throw invalidRequest(
      "Invalid 'output_expires_after.anchor': expected 'created_at'.",
      'output_expires_after.anchor',
    );
  }
  if (
    typeof v.seconds !== 'number' ||
    !Number.isInteger(v.seconds) ||
    v.seconds < 3600 ||
    v.seconds > 2_592_000
  ) {
    throw invalidRequest(
      "Invalid 'output_expires_after.seconds': expected an integer from 3600 to 2592000.",
      'output_expires_after.seconds',
    );
  }
  return v.seconds;
}

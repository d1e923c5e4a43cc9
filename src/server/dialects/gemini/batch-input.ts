/**
 * A Gemini batch's requests in the engine's form: one `{ custom_id, method, url, body, key?, metadata? }`
 * line a request, where `custom_id` is the request's position (Gemini's `key`s need not be unique, the
 * engine's ids must), `url` the model's `generateContent` or `embedContent`, and `key` / `metadata`
 * what the results give back. Inline requests are converted when the batch is created; a JSONL file of
 * `{ key, request }` lines while it validates (the engine's `prepareInput`), streamed.
 */
import { once } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { isBlank, readLines } from '../../engine/jsonl-lines.js';
import { invalidRequest } from '../../http/api-error.js';
import type { StoredBatch } from '../../store/server-store.js';
import type { BatchError, GeminiBatchInternals } from '../../types.js';
import { geminiFileName } from '../../util/ids.js';
import { isObject } from '../../util/is-object.js';
import { type FileKeeper, keepInternalFile, recordInternalFile } from '../engine-batch.js';

/** The engine URL of a batch's requests: the model's `generateContent` or `embedContent`. */
export function requestUrl(kind: GeminiBatchInternals['kind'], model: string): string {
  return `/v1beta/${model}:${kind === 'embed' ? 'embedContent' : 'generateContent'}`;
}

/** One engine-form line. */
export function engineLine(
  index: number,
  url: string,
  request: Record<string, unknown>,
  returned: { key?: string; metadata?: Record<string, unknown> },
): string {
  return JSON.stringify({ custom_id: String(index), method: 'POST', url, body: request, ...returned });
}

/**
 * The engine-form text of inline requests (`batch.inputConfig.requests.requests`, each
 * `{ request, metadata? }`); a 400 names the first request at fault.
 */
export function inlineRequestsText(requests: unknown, url: string): { text: string; count: number } {
  if (!Array.isArray(requests) || requests.length === 0) {
    throw invalidRequest('batch.input_config.requests.requests: at least one request is required.');
  }
  const lines = requests.map((item, index) => {
    const at = `batch.input_config.requests.requests[${index}]`;
    if (!isObject(item) || !isObject(item.request))
      throw invalidRequest(`${at}.request: a request object is required.`);
    if (item.metadata !== undefined && !isObject(item.metadata)) {
      throw invalidRequest(`${at}.metadata: expected an object.`);
    }
    return engineLine(
      index,
      url,
      item.request,
      item.metadata === undefined ? {} : { metadata: item.metadata },
    );
  });
  return { text: `${lines.join('\n')}\n`, count: lines.length };
}

const MAX_ERRORS = 100;

/**
 * Writes the engine-form input of a file-sourced batch from the user's `{ key, request }` JSONL file
 * (the engine's `prepareInput`). Returns the errors that fail the batch: a line that is not a JSON
 * object, lacks a `request` object or has a `key` that is not a string, an empty file, a deleted one.
 * Done already (after a crash) when the input exists.
 */
export async function convertInputFile(
  ctx: FileKeeper,
  stored: StoredBatch,
): Promise<BatchError[] | undefined> {
  const { batch, internals } = stored;
  const gemini = internals.gemini as GeminiBatchInternals;
  const target = ctx.dataDir.filePath(batch.input_file_id);
  if (gemini.sourceFileId === null) return undefined;
  if (existsSync(target)) {
    // A crash came between the rename and the record.
    if (!ctx.store.getFileRecord(batch.input_file_id))
      await recordInternalFile(ctx, batch.input_file_id, 'gemini-batch-requests.jsonl');
    return undefined;
  }
  const source = ctx.store.getFileRecord(gemini.sourceFileId);
  const sourcePath = ctx.dataDir.filePath(gemini.sourceFileId);
  if (source?.dialect !== 'gemini' || !existsSync(sourcePath)) {
    return [
      batchError('file_not_found', `The input file ${geminiFileName(gemini.sourceFileId)} no longer exists.`),
    ];
  }
  const url = requestUrl(gemini.kind, gemini.model);
  const tmp = `${target}.part`;
  const out = createWriteStream(tmp);
  const errors: BatchError[] = [];
  let index = 0;
  try {
    for await (const { lineNo, text } of readLines(sourcePath)) {
      if (isBlank(text)) continue;
      const parsed = parseLine(text);
      if (!parsed.ok) {
        errors.push({ ...parsed.issue, line: lineNo });
        if (errors.length >= MAX_ERRORS) break;
        continue;
      }
      const line = engineLine(
        index++,
        url,
        parsed.request,
        parsed.key === undefined ? {} : { key: parsed.key },
      );
      if (!out.write(`${line}\n`)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'close');
  } catch (err) {
    out.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
  if (errors.length === 0 && index === 0)
    errors.push(batchError('empty_file', 'The input file holds no requests.'));
  if (errors.length > 0) {
    await rm(tmp, { force: true });
    return errors;
  }
  await keepInternalFile(ctx, tmp, batch.input_file_id, 'gemini-batch-requests.jsonl');
  return undefined;
}

type ParsedLine =
  | { ok: true; request: Record<string, unknown>; key: string | undefined }
  | { ok: false; issue: Omit<BatchError, 'line'> };

/** A line's request and key, or why it cannot be one. */
function parseLine(text: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (!isObject(value))
    return { ok: false, issue: batchError('invalid_json_line', 'This line is not a JSON object.') };
  if (!isObject(value.request)) {
    const issue = batchError('missing_required_parameter', "Missing required field 'request' (an object).");
    return { ok: false, issue: { ...issue, param: 'request' } };
  }
  if (value.key !== undefined && typeof value.key !== 'string') {
    return {
      ok: false,
      issue: { ...batchError('invalid_type', "Invalid 'key': expected a string."), param: 'key' },
    };
  }
  return { ok: true, request: value.request, key: value.key };
}

function batchError(code: string, message: string): BatchError {
  return { code, message, param: null, line: null };
}

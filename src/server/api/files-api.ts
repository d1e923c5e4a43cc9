import { createReadStream, existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { readLines } from '../engine/jsonl-lines.js';
import { invalidRequest, noSuchObject } from '../http/api-error.js';
import { receiveUpload } from '../http/multipart-upload.js';
import { sendJson } from '../http/respond.js';
import { type FileObject, UPLOAD_PURPOSES, type UploadPurpose } from '../types.js';
import { isFileId, newFileId } from '../util/ids.js';
import { type ApiContext, type Handler, withServerDate } from './api-context.js';
import { intParam, listBody, orderParam, stringParam } from './query-params.js';

const BATCH_FILE_TTL_SECONDS = 30 * 24 * 3600;
const UPLOAD_FIELDS = new Set(['purpose', 'expires_after[anchor]', 'expires_after[seconds]']);

/** `POST /v1/files`: a multipart upload streamed to disk, then recorded as a File object. */
export const createFile: Handler = withServerDate(async (ctx, req, res) => {
  const upload = await receiveUpload(req, ctx.dataDir.uploadsDir, ctx.maxUploadBytes);
  try {
    const purpose = uploadPurpose(upload.fields.get('purpose'));
    for (const name of upload.fields.keys()) {
      if (!UPLOAD_FIELDS.has(name))
        throw invalidRequest(`Unrecognized request argument supplied: ${name}`, name);
    }
    const ttl = expiresAfter(upload.fields);
    if (upload.bytes === 0) throw invalidRequest('File is empty.', 'file', 'empty_file');
    if (purpose === 'batch' && !upload.filename.endsWith('.jsonl')) {
      throw invalidRequest(
        `Invalid file format for Batch API. Must be .jsonl (the file is named ${JSON.stringify(upload.filename)}).`,
        'file',
        'invalid_file_format',
      );
    }
    if (purpose === 'batch' && upload.notJsonlReason) {
      throw invalidRequest(
        `Invalid file format for Batch API: ${upload.notJsonlReason}. Files with purpose 'batch' must be JSONL, one request object per line.`,
        'file',
        'invalid_file_format',
      );
    }
    const now = ctx.clock.nowSeconds();
    const ttlSeconds = ttl ?? (purpose === 'batch' ? BATCH_FILE_TTL_SECONDS : undefined);
    const file: FileObject = {
      id: newFileId(),
      object: 'file',
      bytes: upload.bytes,
      created_at: now,
      expires_at: ttlSeconds === undefined ? null : now + ttlSeconds,
      filename: upload.filename,
      purpose,
      status: 'processed',
      status_details: null,
    };
    await rename(upload.tmpPath, ctx.dataDir.filePath(file.id));
    ctx.store.insertFile(file);
    if (ctx.faults.loseCreateResponse()) {
      ctx.log(`${file.id}: uploaded; dropping the response (--lose-create-responses)`);
      res.destroy();
      return;
    }
    sendJson(res, 200, file);
  } finally {
    await rm(upload.tmpPath, { force: true });
  }
});

/** `GET /v1/files`: newest first by default; `purpose`, `order`, `after`, `limit` (1–10,000). */
export const listFiles: Handler = withServerDate(async (ctx, _req, res, _params, query) => {
  const limit = intParam(query, 'limit', 1, 10_000, 10_000);
  const page = ctx.store.listFiles({
    purpose: stringParam(query, 'purpose'),
    after: stringParam(query, 'after'),
    order: orderParam(query, 'desc'),
    limit,
  });
  sendJson(res, 200, listBody(page.data, page.hasMore));
});

/** `GET /v1/files/{id}`. */
export const retrieveFile: Handler = withServerDate(async (ctx, _req, res, [fileId]) => {
  sendJson(res, 200, requireFile(ctx, fileId));
});

/** `GET /v1/files/{id}/content`: the raw bytes, streamed. */
export const fileContent: Handler = withServerDate(async (ctx, _req, res, [fileId]) => {
  const file = requireFile(ctx, fileId);
  const filePath = ctx.dataDir.filePath(file.id);
  if (!existsSync(filePath)) throw noSuchObject('File', file.id);
  // --truncate-downloads: a clean response that simply holds fewer lines, as a proxy would send.
  const bytes =
    file.purpose === 'batch_output' && ctx.faults.truncateDownload()
      ? await halfLinesBoundary(filePath)
      : file.bytes;
  if (bytes < file.bytes)
    ctx.log(`${file.id}: download cut to ${bytes} of ${file.bytes} bytes (--truncate-downloads)`);
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': String(bytes),
    'content-disposition': `attachment; filename="${file.filename.replace(/["\\]/g, '_')}"`,
  });
  if (bytes === 0) res.end();
  else await pipeline(createReadStream(filePath, { end: bytes - 1 }), res);
});

/** `DELETE /v1/files/{id}`: the contents go once no unfinished batch reads them. */
export const deleteFile: Handler = withServerDate(async (ctx, _req, res, [fileId]) => {
  const file = requireFile(ctx, fileId);
  ctx.store.deleteFile(file.id);
  ctx.engine.sweep();
  sendJson(res, 200, { id: file.id, object: 'file', deleted: true });
});

/** The byte length of a file's first half of lines (rounded down), ending just after a newline. */
export async function halfLinesBoundary(filePath: string): Promise<number> {
  const ends: number[] = [];
  for await (const line of readLines(filePath)) if (line.terminated) ends.push(line.end);
  const keep = Math.floor(ends.length / 2);
  return keep === 0 ? 0 : (ends[keep - 1] as number);
}

/** Looks a file up by an id that must first match the strict pattern: a 404 either way. */
export function requireFile(ctx: ApiContext, fileId: string | undefined, param = 'id'): FileObject {
  const file = fileId !== undefined && isFileId(fileId) ? ctx.store.getFile(fileId) : undefined;
  if (!file) throw noSuchObject('File', fileId ?? '', param);
  return file;
}

function uploadPurpose(value: string | undefined): UploadPurpose {
  if (value === undefined) {
    throw invalidRequest("Missing required parameter: 'purpose'.", 'purpose', 'missing_required_parameter');
  }
  if (!(UPLOAD_PURPOSES as readonly string[]).includes(value)) {
    throw invalidRequest(
      `Invalid value for 'purpose': ${JSON.stringify(value)}. Supported values are: ${UPLOAD_PURPOSES.map((p) => `'${p}'`).join(', ')}.`,
      'purpose',
    );
  }
  return value as UploadPurpose;
}

/** `expires_after[anchor]=created_at` and `expires_after[seconds]` (3600–2592000), both or neither. */
function expiresAfter(fields: Map<string, string>): number | undefined {
  const anchor = fields.get('expires_after[anchor]');
  const seconds = fields.get('expires_after[seconds]');
  if (anchor === undefined && seconds === undefined) return undefined;
  if (anchor !== 'created_at') {
    throw invalidRequest("Invalid 'expires_after[anchor]': expected 'created_at'.", 'expires_after.anchor');
  }
  const value = Number(seconds);
  if (!Number.isInteger(value) || value < 3600 || value > 2_592_000) {
    throw invalidRequest(
      "Invalid 'expires_after[seconds]': expected an integer from 3600 to 2592000.",
      'expires_after.seconds',
    );
  }
  return value;
}

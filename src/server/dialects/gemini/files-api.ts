/**
 * Gemini's Files API: the resumable upload the SDK's `ai.files.upload` speaks (`POST /upload/v1beta/files`
 * to start, then the bytes to the upload URL in chunks at their offsets, the last one finalizing), and
 * `files.get`, `files.list`, `files.delete` and the download `files/{name}:download?alt=media`. Files are
 * stored as the server stores every file, of dialect `gemini`, with Gemini's fields in their meta.
 * Owns the upload sessions (in memory: a restarted server has none, and a client starts again).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type ApiContext, type Handler, requestOrigin, withServerDate } from '../../api/api-context.js';
import { halfLinesBoundary } from '../../api/files-api.js';
import { ApiError, invalidRequest } from '../../http/api-error.js';
import { readJsonBody } from '../../http/read-json-body.js';
import { sendJson } from '../../http/respond.js';
import type { StoredFile } from '../../store/server-store.js';
import type { FileObject } from '../../types.js';
import { rfc3339 } from '../../util/clock.js';
import { fileIdOfGemini, geminiFileName, newGeminiFileId } from '../../util/ids.js';
import { isObject } from '../../util/is-object.js';

/** Gemini's limit on one file. */
export const MAX_GEMINI_FILE_BYTES = 2 * 1024 * 1024 * 1024;
/** Files are kept 48 hours (reported, not enforced). */
const FILE_TTL_SECONDS = 48 * 3600;
const INVALID_JSON = 'Invalid JSON payload received.';

/** What a Gemini file has beyond the server's file object. */
export interface GeminiFileMeta {
  displayName: string | null;
  mimeType: string;
  /** Base64 SHA-256 of the contents, as Gemini reports it. */
  sha256Hash: string;
  source: 'UPLOADED' | 'GENERATED';
}

/** A resumable upload under way. */
interface UploadSession {
  tmpPath: string;
  declaredBytes: number | undefined;
  received: number;
  mimeType: string;
  displayName: string | null;
  /** A chunk is being written (a second one at once is refused). */
  busy: boolean;
}

const sessionsByServer = new WeakMap<ApiContext, Map<string, UploadSession>>();

function sessionsOf(ctx: ApiContext): Map<string, UploadSession> {
  let sessions = sessionsByServer.get(ctx);
  if (!sessions) {
    sessions = new Map();
    sessionsByServer.set(ctx, sessions);
  }
  return sessions;
}

/** `POST /upload/v1beta/files`: starts a resumable upload, or (with `upload_id`) takes a chunk of one. */
export const uploadGeminiFile: Handler = withServerDate(async (ctx, req, res, _params, query) => {
  const uploadId = query.get('upload_id');
  if (uploadId === null) await startUpload(ctx, req, res);
  else await uploadChunk(ctx, req, res, uploadId);
});

/** Starts a session: its URL goes back in `x-goog-upload-url`. */
async function startUpload(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (
    header(req, 'x-goog-upload-protocol') !== 'resumable' ||
    header(req, 'x-goog-upload-command') !== 'start'
  ) {
    throw invalidRequest(
      'The local server takes resumable uploads only: X-Goog-Upload-Protocol: resumable and X-Goog-Upload-Command: start.',
    );
  }
  const body = await readJsonBody(req, { invalidJsonMessage: INVALID_JSON });
  const file = isObject(body.file) ? body.file : {};
  if (file.name !== undefined) {
    throw invalidRequest(
      'file.name: the local server names files itself; leave the name out and use the returned file.name.',
    );
  }
  const sizeText = header(req, 'x-goog-upload-header-content-length') ?? file.sizeBytes;
  const declaredBytes = sizeText === undefined ? undefined : Number(sizeText);
  if (declaredBytes !== undefined && !(Number.isInteger(declaredBytes) && declaredBytes >= 0)) {
    throw invalidRequest('X-Goog-Upload-Header-Content-Length must be a whole number of bytes.');
  }
  if (declaredBytes !== undefined && declaredBytes > MAX_GEMINI_FILE_BYTES) {
    throw invalidRequest(`The file is larger than the ${MAX_GEMINI_FILE_BYTES} bytes a file may hold.`);
  }
  const mimeType = header(req, 'x-goog-upload-header-content-type') ?? file.mimeType;
  if (typeof mimeType !== 'string' || mimeType === '')
    throw invalidRequest('file.mimeType: a MIME type is required.');
  const uploadId = randomUUID().replace(/-/g, '');
  sessionsOf(ctx).set(uploadId, {
    tmpPath: path.join(ctx.dataDir.uploadsDir, `${uploadId}.part`),
    declaredBytes,
    received: 0,
    mimeType,
    displayName: typeof file.displayName === 'string' ? file.displayName : null,
    busy: false,
  });
  res.writeHead(200, {
    'x-goog-upload-url': `${requestOrigin(req)}/upload/v1beta/files?upload_id=${uploadId}&upload_protocol=resumable`,
    'x-goog-upload-status': 'active',
    'content-length': '0',
  });
  res.end();
}

/** A chunk at `X-Goog-Upload-Offset` (commands `upload`, `upload, finalize`, `finalize`, `query`, `cancel`). */
async function uploadChunk(
  ctx: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  uploadId: string,
): Promise<void> {
  const sessions = sessionsOf(ctx);
  const session = sessions.get(uploadId);
  if (!session) {
    req.resume();
    throw new ApiError(
      404,
      `No upload ${JSON.stringify(uploadId)} is under way (a restarted server forgets them).`,
    );
  }
  const commands = new Set((header(req, 'x-goog-upload-command') ?? '').split(',').map((c) => c.trim()));
  if (commands.has('cancel')) {
    sessions.delete(uploadId);
    await rm(session.tmpPath, { force: true });
    req.resume();
    res.writeHead(200, { 'x-goog-upload-status': 'cancelled', 'content-length': '0' });
    res.end();
    return;
  }
  if (commands.has('query')) {
    req.resume();
    res.writeHead(200, {
      'x-goog-upload-status': 'active',
      'x-goog-upload-size-received': String(session.received),
      'content-length': '0',
    });
    res.end();
    return;
  }
  if (!commands.has('upload') && !commands.has('finalize')) {
    req.resume();
    throw invalidRequest('X-Goog-Upload-Command must be upload, finalize, query or cancel.');
  }
  const offset = Number(header(req, 'x-goog-upload-offset') ?? session.received);
  if (offset !== session.received) {
    req.resume();
    throw invalidRequest(
      `X-Goog-Upload-Offset ${offset} is not the ${session.received} bytes received so far.`,
    );
  }
  if (session.busy) {
    req.resume();
    throw new ApiError(409, 'Another chunk of this upload is being received.', { type: 'ABORTED' });
  }
  session.busy = true;
  try {
    if (commands.has('upload')) await appendChunk(session, req);
    else req.resume();
  } finally {
    session.busy = false;
  }
  if (!commands.has('finalize')) {
    res.writeHead(200, {
      'x-goog-upload-status': 'active',
      'x-goog-upload-size-received': String(session.received),
      'content-length': '0',
    });
    res.end();
    return;
  }
  if (session.declaredBytes !== undefined && session.received !== session.declaredBytes) {
    throw invalidRequest(
      `The upload ends at ${session.received} bytes, not the ${session.declaredBytes} bytes it declared.`,
    );
  }
  sessions.delete(uploadId);
  const stored = await keepUpload(ctx, session);
  if (ctx.faults.loseCreateResponse()) {
    ctx.log(`${geminiFileName(stored.file.id)}: uploaded; dropping the response (--lose-create-responses)`);
    res.destroy();
    return;
  }
  sendJson(
    res,
    200,
    { file: geminiFileView(stored, requestOrigin(req)) },
    { 'x-goog-upload-status': 'final' },
  );
}

/** Appends the request body to the session's file; a chunk cut short is taken back out. */
async function appendChunk(session: UploadSession, req: IncomingMessage): Promise<void> {
  let bytes = 0;
  const limit = session.declaredBytes ?? MAX_GEMINI_FILE_BYTES;
  try {
    await pipeline(
      req,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          bytes += chunk.length;
          if (session.received + bytes > limit) {
            throw invalidRequest(`The upload holds more than the ${limit} bytes it may hold.`);
          }
          yield chunk;
        }
      },
      createWriteStream(session.tmpPath, { flags: 'a' }),
    );
  } catch (err) {
    await truncate(session.tmpPath, session.received).catch(() => undefined);
    throw err;
  }
  session.received += bytes;
}

/** Turns a finished upload into a Gemini file. */
async function keepUpload(ctx: ApiContext, session: UploadSession): Promise<StoredFile> {
  const fileId = newGeminiFileId();
  const target = ctx.dataDir.filePath(fileId);
  if (session.received === 0) await writeFile(target, '');
  else await rename(session.tmpPath, target);
  return recordGeminiFile(ctx, fileId, {
    displayName: session.displayName,
    mimeType: session.mimeType,
    source: 'UPLOADED',
  });
}

/**
 * Records a file already at its path as a Gemini file (its size and hash read from disk), and returns
 * it. Used for uploads and for the results files of batches.
 */
export async function recordGeminiFile(
  ctx: Pick<ApiContext, 'store' | 'dataDir' | 'clock'>,
  fileId: string,
  meta: Omit<GeminiFileMeta, 'sha256Hash'>,
): Promise<StoredFile> {
  const stored = await geminiFileRecord(ctx.dataDir.filePath(fileId), fileId, meta, ctx.clock.nowSeconds());
  ctx.store.insertFile(stored.file, 'gemini', stored.meta);
  return stored;
}

/** The record of a Gemini file at `filePath`, not yet stored. */
export async function geminiFileRecord(
  filePath: string,
  fileId: string,
  meta: Omit<GeminiFileMeta, 'sha256Hash'>,
  now: number,
): Promise<StoredFile & { meta: GeminiFileMeta }> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(filePath), hash);
  const file: FileObject = {
    id: fileId,
    object: 'file',
    bytes: (await stat(filePath)).size,
    created_at: now,
    expires_at: now + FILE_TTL_SECONDS,
    filename: meta.displayName ?? geminiFileName(fileId),
    purpose: meta.source === 'GENERATED' ? 'batch_output' : 'batch',
    status: 'processed',
    status_details: null,
  };
  return { file, dialect: 'gemini', meta: { ...meta, sha256Hash: hash.digest('base64') } };
}

/** `GET /v1beta/files`: newest first; `pageSize` (default 10, at most 100) and `pageToken`. */
export const listGeminiFiles: Handler = withServerDate(async (ctx, req, res, _params, query) => {
  const pageToken = query.get('pageToken') || undefined;
  const after = pageToken === undefined ? undefined : fileIdOfGemini(pageToken);
  if (pageToken !== undefined && after === undefined) throw invalidRequest('Invalid pageToken.');
  const page = ctx.store.listFiles({
    dialect: 'gemini',
    after,
    order: 'desc',
    limit: pageSize(query, 10, 100),
  });
  const origin = requestOrigin(req);
  const files = page.data.map((file) => {
    const stored = ctx.store.getFileRecord(file.id);
    return geminiFileView(stored ?? { file, dialect: 'gemini', meta: undefined }, origin);
  });
  const last = page.data[page.data.length - 1];
  sendJson(res, 200, {
    files,
    ...(page.hasMore && last ? { nextPageToken: geminiFileName(last.id).slice('files/'.length) } : {}),
  });
});

/** `GET /v1beta/files/{name}`. */
export const getGeminiFile: Handler = withServerDate(async (ctx, req, res, [name]) => {
  sendJson(res, 200, geminiFileView(requireGeminiFile(ctx, name), requestOrigin(req)));
});

/** `DELETE /v1beta/files/{name}`: the contents go once no unfinished batch reads them. */
export const deleteGeminiFile: Handler = withServerDate(async (ctx, _req, res, [name]) => {
  const stored = requireGeminiFile(ctx, name);
  ctx.store.deleteFile(stored.file.id);
  ctx.engine.sweep();
  sendJson(res, 200, {});
});

/**
 * `GET /v1beta/files/{name}:download?alt=media` (also under `/download/v1beta/`): the bytes, streamed.
 * `--truncate-downloads` cuts a batch's results file after half its lines.
 */
export const downloadGeminiFile: Handler = withServerDate(async (ctx, _req, res, [name]) => {
  const stored = requireGeminiFile(ctx, name);
  const { file } = stored;
  const filePath = ctx.dataDir.filePath(file.id);
  const meta = stored.meta as GeminiFileMeta;
  const bytes =
    meta.source === 'GENERATED' && ctx.faults.truncateDownload()
      ? await halfLinesBoundary(filePath)
      : file.bytes;
  if (bytes < file.bytes) {
    ctx.log(
      `${geminiFileName(file.id)}: download cut to ${bytes} of ${file.bytes} bytes (--truncate-downloads)`,
    );
  }
  res.writeHead(200, { 'content-type': meta.mimeType, 'content-length': String(bytes) });
  if (bytes === 0) res.end();
  else await pipeline(createReadStream(filePath, { end: bytes - 1 }), res);
});

/** A Gemini file as the API shows it. */
export function geminiFileView(stored: StoredFile, origin: string) {
  const { file } = stored;
  const meta = stored.meta as GeminiFileMeta | undefined;
  const name = geminiFileName(file.id);
  return {
    name,
    ...(meta?.displayName ? { displayName: meta.displayName } : {}),
    mimeType: meta?.mimeType ?? 'application/octet-stream',
    sizeBytes: String(file.bytes),
    createTime: rfc3339(file.created_at),
    updateTime: rfc3339(file.created_at),
    ...(file.expires_at === null ? {} : { expirationTime: rfc3339(file.expires_at) }),
    sha256Hash: meta?.sha256Hash ?? '',
    uri: `${origin}/v1beta/${name}`,
    downloadUri: `${origin}/download/v1beta/${name}:download?alt=media`,
    state: 'ACTIVE',
    source: meta?.source ?? 'UPLOADED',
  };
}

/** A Gemini file by the tail of its name (`files/{tail}`); anything else is a 404. */
export function requireGeminiFile(ctx: ApiContext, tail: string | undefined): StoredFile {
  const fileId = tail === undefined ? undefined : fileIdOfGemini(tail);
  const stored = fileId === undefined ? undefined : ctx.store.getFileRecord(fileId);
  if (stored?.dialect !== 'gemini') {
    throw new ApiError(
      404,
      `File files/${tail ?? ''} does not exist or you do not have permission to access it.`,
      {
        type: 'NOT_FOUND',
      },
    );
  }
  return stored;
}

/** `pageSize`: absent → the default; larger than the maximum → the maximum, as Google lists do. */
export function pageSize(query: URLSearchParams, fallback: number, max: number): number {
  const raw = query.get('pageSize');
  if (raw === null || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw invalidRequest('pageSize must be a whole number.');
  return value === 0 ? fallback : Math.min(value, max);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value.trim() : undefined;
}

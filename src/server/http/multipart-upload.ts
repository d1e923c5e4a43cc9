import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { ApiError, invalidRequest } from './api-error.js';
import { JsonlSniffer } from './jsonl-sniffer.js';

/** An upload received to a temporary file, not yet a File object. */
export interface ReceivedUpload {
  tmpPath: string;
  bytes: number;
  filename: string;
  fields: Map<string, string>;
  /** Why the content is not JSONL, or undefined if it looks like JSONL. */
  notJsonlReason: string | undefined;
}

/**
 * Receives a `multipart/form-data` upload, streaming its `file` part to a temporary file in `tmpDir`
 * (never into memory) and collecting the small text fields. Rejects with a 400 ApiError for a body that
 * is not multipart, is cut off, has no `file` part or more than one, or whose file exceeds `maxBytes`;
 * the temporary file is removed on every failure.
 */
export function receiveUpload(
  req: IncomingMessage,
  tmpDir: string,
  maxBytes: number,
): Promise<ReceivedUpload> {
  const tmpPath = path.join(tmpDir, `${randomUUID()}.part`);
  return new Promise<ReceivedUpload>((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      req.unpipe();
      req.resume(); // Drain the rest so the client can read our answer.
      void rm(tmpPath, { force: true }).finally(() =>
        reject(
          err instanceof ApiError
            ? err
            : invalidRequest(`The multipart body could not be read: ${describe(err)}`),
        ),
      );
    };

    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        limits: { fileSize: maxBytes, files: 1, fields: 8, fieldSize: 4096, parts: 10 },
      });
    } catch (err) {
      fail(invalidRequest(`Expected a multipart/form-data body: ${describe(err)}`));
      return;
    }

    const fields = new Map<string, string>();
    let written: Promise<void> | undefined;
    let filename = 'upload';
    let bytes = 0;
    let truncated = false;
    const sniffer = new JsonlSniffer();

    parser.on('file', (name, stream, info) => {
      if (name !== 'file' || written) {
        stream.resume();
        fail(invalidRequest(`Unexpected file field '${name}'; send one file as the 'file' field.`, name));
        return;
      }
      filename = cleanFilename(info.filename);
      stream.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      stream.on('limit', () => {
        truncated = true;
      });
      written = pipeline(stream, sniffer, createWriteStream(tmpPath));
      written.catch(fail);
    });
    parser.on('field', (name, value, info) => {
      if (info.valueTruncated) fail(invalidRequest(`The field '${name}' is too long.`, name));
      else fields.set(name, value);
    });
    for (const event of ['partsLimit', 'filesLimit', 'fieldsLimit'] as const) {
      parser.on(event, () => fail(invalidRequest('The multipart body has too many parts.')));
    }
    parser.on('error', fail);
    parser.on('close', () => {
      if (!written) {
        fail(invalidRequest("Missing required parameter: 'file'.", 'file', 'missing_required_parameter'));
        return;
      }
      written.then(() => {
        if (truncated) {
          fail(
            invalidRequest(
              `The file exceeds the maximum upload size of ${maxBytes} bytes.`,
              'file',
              'file_too_large',
            ),
          );
          return;
        }
        if (settled) return;
        settled = true;
        resolve({ tmpPath, bytes, filename, fields, notJsonlReason: sniffer.notJsonlReason() });
      }, fail);
    });
    req.on('error', fail);
    req.on('close', () => {
      if (!req.complete)
        fail(invalidRequest('The request body ended before the multipart form was complete.'));
    });
    req.pipe(parser);
  });
}

/** Keeps a filename printable and short; it is only ever metadata, never a path. */
function cleanFilename(name: string | undefined): string {
  const cleaned = (name ?? '').replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 255);
  return cleaned.length > 0 ? cleaned : 'upload';
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

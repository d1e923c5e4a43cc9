import { randomBytes } from 'node:crypto';
import { hexHash } from './prng.js';

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const LOWER36 = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** File ids look like OpenAI's: `file-` and 22 base62 characters. Anything else is never looked up on disk. */
export const FILE_ID_PATTERN = /^file-[A-Za-z0-9]{22}$/;
/** Batch ids look like OpenAI's: `batch_` and 32 hex characters. */
export const BATCH_ID_PATTERN = /^batch_[0-9a-f]{32}$/;

/** `length` random characters of `alphabet` (62 or 36 of them), without modulo bias. */
function randomChars(length: number, alphabet: string): string {
  const bytes = randomBytes(length * 2);
  const cut = 256 - (256 % alphabet.length);
  let out = '';
  for (let i = 0; out.length < length && i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b < cut) out += alphabet[b % alphabet.length];
  }
  return out.length === length ? out : randomChars(length, alphabet);
}

export function newFileId(): string {
  return `file-${randomChars(22, BASE62)}`;
}

/**
 * A file id whose tail is lower-case (`file-` and 22 of `[a-z0-9]`): a Gemini file is named `files/` and
 * that tail, which the Gemini SDK can also read back out of a file's `uri`.
 */
export function newGeminiFileId(): string {
  return `file-${randomChars(22, LOWER36)}`;
}

/** The Gemini name of a file (`files/…`). */
export function geminiFileName(fileId: string): string {
  return `files/${fileId.slice('file-'.length)}`;
}

/** The file id behind a Gemini file name's tail (`files/{tail}`), if it could be one. */
export function fileIdOfGemini(tail: string): string | undefined {
  return /^[a-z0-9]{22}$/.test(tail) ? `file-${tail}` : undefined;
}

/** Anthropic's id of a batch: `msgbatch_` and the batch id's 32 hex characters. */
export function anthropicBatchId(batchId: string): string {
  return `msgbatch_${batchId.slice('batch_'.length)}`;
}

/** The batch id behind an Anthropic batch id, if it could be one. */
export function batchIdOfAnthropic(id: string): string | undefined {
  return /^msgbatch_[0-9a-f]{32}$/.test(id) ? `batch_${id.slice('msgbatch_'.length)}` : undefined;
}

/** Gemini's name of a batch: `batches/` and the batch id's 32 hex characters. */
export function geminiBatchName(batchId: string): string {
  return `batches/${batchId.slice('batch_'.length)}`;
}

/** The batch id behind a Gemini batch name's tail (`batches/{tail}`), if it could be one. */
export function batchIdOfGemini(tail: string): string | undefined {
  return /^[0-9a-f]{32}$/.test(tail) ? `batch_${tail}` : undefined;
}

export function newBatchId(): string {
  return `batch_${randomBytes(16).toString('hex')}`;
}

/** A fresh `req_…` id for API responses. */
export function newRequestId(): string {
  return `req_${randomBytes(16).toString('hex')}`;
}

/** Output-line ids are derived from the batch and custom_id, so a resumed batch writes the same ids. */
export function batchRequestId(batchId: string, customId: string): string {
  return `batch_req_${hexHash('line', batchId, customId)}`;
}

/** The `request_id` of a request the server answered itself: stable per batch and custom_id, and cheap. */
export function lineRequestId(batchId: string, customId: string): string {
  return `req_${hexHash('request', batchId, customId)}`;
}

export function isFileId(id: string): boolean {
  return FILE_ID_PATTERN.test(id);
}

export function isBatchId(id: string): boolean {
  return BATCH_ID_PATTERN.test(id);
}

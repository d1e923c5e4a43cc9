import { randomBytes } from 'node:crypto';
import { hexHash } from './prng.js';

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** File ids look like OpenAI's: `file-` and 22 base62 characters. Anything else is never looked up on disk. */
export const FILE_ID_PATTERN = /^file-[A-Za-z0-9]{22}$/;
/** Batch ids look like OpenAI's: `batch_` and 32 hex characters. */
export const BATCH_ID_PATTERN = /^batch_[0-9a-f]{32}$/;

function base62(length: number): string {
  const bytes = randomBytes(length * 2);
  let out = '';
  for (let i = 0; out.length < length && i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b < 248) out += BASE62[b % 62];
  }
  return out.length === length ? out : base62(length);
}

export function newFileId(): string {
  return `file-${base62(22)}`;
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

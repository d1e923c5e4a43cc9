/**
 * Errors as plain data, so a worker's error reaches the thread that waits for it as the same
 * `BatchpipeError` (code, file, line, seq, field) or, for any other error, its message and stack.
 * Owns only that shape; used by the worker pool (worker-pool.ts) on both sides.
 */
import { BatchpipeError, type ErrorCode } from '../errors.js';

/** An error as plain data, to cross a thread boundary. */
export interface ErrorData {
  code?: ErrorCode | undefined;
  message: string;
  file?: string | undefined;
  line?: number | undefined;
  seq?: number | undefined;
  field?: string | undefined;
  stack?: string | undefined;
}

export function errorToData(err: unknown): ErrorData {
  if (err instanceof BatchpipeError) {
    return {
      code: err.code,
      message: err.message,
      file: err.file,
      line: err.line,
      seq: err.seq,
      field: err.field,
    };
  }
  const e = err as Error;
  return { message: e?.message ?? String(err), stack: e?.stack };
}

export function errorFromData(data: ErrorData): Error {
  if (data.code) {
    return new BatchpipeError(data.code, data.message, {
      file: data.file,
      line: data.line,
      seq: data.seq,
      field: data.field,
    });
  }
  const err = new Error(data.message);
  if (data.stack) err.stack = data.stack;
  return err;
}

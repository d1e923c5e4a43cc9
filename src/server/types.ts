/** Wire shapes of the Files and Batches API, as the local server stores and returns them (snake_case). */

import { ENDPOINTS } from '../types.js';

/**
 * Which provider's API a batch or file belongs to. Every batch runs through the one engine in the
 * OpenAI shapes below; each API shows only its own batches and files, in its own shapes.
 */
export type Dialect = 'openai' | 'anthropic' | 'gemini';

/**
 * Who may see a file: the OpenAI Files API (`openai`), the Gemini Files API (`gemini`), or nobody
 * (`internal`: the engine-form input and the journals of Anthropic and Gemini batches).
 */
export type FileDialect = 'openai' | 'gemini' | 'internal';

/**
 * The endpoints `POST /v1/batches` accepts: every one batchpipe writes requests for, and OpenAI's
 * image and video endpoints, which the server answers with small placeholder outputs of the right shape.
 */
export const BATCH_ENDPOINTS = [
  ...ENDPOINTS,
  '/v1/images/generations',
  '/v1/images/edits',
  '/v1/videos',
] as const satisfies readonly string[];

export const UPLOAD_PURPOSES = ['assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals'] as const;
export type UploadPurpose = (typeof UPLOAD_PURPOSES)[number];
export type FilePurpose = UploadPurpose | 'batch_output';

export interface FileObject {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  expires_at: number | null;
  filename: string;
  purpose: FilePurpose;
  status: 'uploaded' | 'processed' | 'error';
  status_details: string | null;
}

export const BATCH_STATUSES = [
  'validating',
  'failed',
  'in_progress',
  'finalizing',
  'completed',
  'expired',
  'cancelling',
  'cancelled',
] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

/** The statuses a batch ends in once its engine finalizes it. */
export type FinalStatus = Extract<BatchStatus, 'completed' | 'expired' | 'cancelled'>;

/** Statuses after which a batch never changes again. */
export const TERMINAL_STATUSES: ReadonlySet<BatchStatus> = new Set([
  'failed',
  'completed',
  'expired',
  'cancelled',
]);

export interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

export interface RequestCounts {
  total: number;
  completed: number;
  failed: number;
}

export interface BatchUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export interface BatchObject {
  id: string;
  object: 'batch';
  endpoint: string;
  model: string | null;
  errors: { object: 'list'; data: BatchError[] } | null;
  input_file_id: string;
  completion_window: string;
  status: BatchStatus;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: RequestCounts;
  usage: BatchUsage;
  metadata: Record<string, string> | null;
}

/** What the server keeps about a batch beyond its public object. */
export interface BatchInternals {
  /** When the completion window closes, in milliseconds (the public `expires_at` is whole seconds). */
  deadlineMs: number;
  /** Estimated input tokens of the batch, counted against `--enqueued-token-limit` while it is unfinished. */
  tokens: number;
  /** File ids reserved for the output and error files, so finalizing twice after a crash reuses them. */
  outputFileId: string;
  errorFileId: string;
  /** `output_expires_after.seconds`, applied to the output and error files. */
  outputExpiresAfter: number | null;
  /** The API the batch was created through; absent (batches stored before dialects) means `openai`. */
  dialect?: Dialect;
  /** Requests in the batch when known at creation (Anthropic and inline Gemini batches). */
  requestCount?: number;
  /** Error-file lines for requests that never ran, by why; set when the batch ends. */
  unrun?: UnrunCounts;
  /** What only a Gemini batch has. */
  gemini?: GeminiBatchInternals;
}

/** Error-file lines written for requests a stop left unrun: the window closed, or a cancel (Anthropic). */
export interface UnrunCounts {
  expired: number;
  cancelled: number;
}

/** A Gemini batch: the kind of requests, where they came from, and where its results go. */
export interface GeminiBatchInternals {
  kind: 'generate' | 'embed';
  /** `models/…`, as the batch's URL named it. */
  model: string;
  displayName: string | null;
  /** The user's JSONL file (`{key, request}` lines), converted to the engine's form while validating. */
  sourceFileId: string | null;
  /** The results in input order (`{key, response | error}` lines); a Gemini file for a file-sourced batch. */
  resultsFileId: string;
}

/** Engine error codes of the lines written for requests that never ran. */
export const EXPIRED_CODE = 'batch_expired';
export const CANCELLED_CODE = 'batch_cancelled';

/** One line of an output or error file. */
export interface OutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: { code: string; message: string } | null;
}

export function emptyUsage(): BatchUsage {
  return {
    input_tokens: 0,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: 0,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 0,
  };
}

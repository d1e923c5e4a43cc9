import type { ErrorCode } from './errors.js';

/** A record with its provenance: `seq` is 0-based input order, `line` the 1-based source line it starts on. */
export interface Envelope<R = SourceRecord> {
  seq: number;
  line: number;
  record: R;
}

/** A parsed source record: CSV rows are flat string maps; JSONL rows are any JSON object. */
export type SourceRecord = Record<string, unknown>;

/** The Batch API endpoints batchpipe can write requests for. */
export const ENDPOINTS = [
  '/v1/chat/completions',
  '/v1/embeddings',
  '/v1/responses',
  '/v1/completions',
  '/v1/moderations',
] as const;
export type Endpoint = (typeof ENDPOINTS)[number];

/** One line of a Batch API input file (wire format: snake_case). */
export interface RequestLine {
  custom_id: string;
  method: 'POST';
  url: string;
  body: Record<string, unknown>;
}

// ── Rejects: one shape, from the reader to every output ─────────────────────────────────────────

/** Why a record can never become a request: a stable `BP_*` code, a message, and the field at fault. */
export interface RecordProblem {
  code: ErrorCode;
  message: string;
  field?: string | undefined;
}

/** A problem with record `index` of a chunk, found before the record has its seq. */
export interface ChunkReject extends RecordProblem {
  index: number;
}

/**
 * A record set aside, with why: what `onReject` is called with, what the ledger's `rejects` table,
 * the rejects file and the results (a `rejected` row, with its `line`) hold. `record` is its source
 * text exactly as it came.
 */
export interface Reject extends RecordProblem {
  seq: number;
  line: number;
  record: string;
}

/** @deprecated The same shape as {@link Reject}, by its earlier name. */
export type RejectedRecord = Reject;

/** What a line says happened to its request, in the ledger's terms (`result` is JSON text). */
export interface LineOutcome {
  customId: string;
  state: 'succeeded' | 'failed' | 'expired' | 'cancelled';
  statusCode: number | null;
  result: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
  /** Sending the request again may succeed (429, 5xx, `batch_expired`, `invalid_output`…). */
  retryable: boolean;
}

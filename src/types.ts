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

/** A request built from an envelope, on its way to the sink. */
export interface PreparedRequest {
  seq: number;
  line: number;
  customId: string;
  /** The encoded request line, without the trailing newline. */
  json: string;
  /** The source record as JSON text, kept in the ledger for the rejoin. */
  recordJson: string;
  /** Rough token estimate of the request, for the scheduler's queue limits. */
  tokens: number;
}

/** A record that failed a stage, routed to the rejects file instead of stopping the run. */
export interface Reject {
  line: number;
  seq: number;
  code: string;
  message: string;
  field?: string | undefined;
  record: unknown;
}

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

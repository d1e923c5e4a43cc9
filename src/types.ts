import type { ErrorCode } from './errors.js';

/** A record with its provenance: `seq` is 0-based input order, `line` the 1-based source line it starts on. */
export interface Envelope<R = SourceRecord> {
  seq: number;
  line: number;
  record: R;
  /**
   * The record's bytes exactly as the source read them (what the ledger keeps, and what results
   * give back). Set by `csvSource` and `jsonlSource`, with `origin`; an envelope built by hand has
   * neither, and its record is kept as its JSON text.
   */
  source?: Uint8Array | undefined;
  /** Where the record was read (shared by every envelope of one source); with `source`. */
  origin?: RecordOrigin | undefined;
}

// --- The stream stages' provenance (owned with src/streams.ts) ---

/**
 * What a source knows of its records, shared by reference by every envelope it yields: part of the
 * run identity a ledger built from the stages records, as `prepare` records it.
 */
export interface RecordOrigin {
  /** How the records were read (and are read back from the ledger). */
  format: 'csv' | 'jsonl';
  /** A CSV input's header; empty for JSONL. */
  columns: readonly string[];
  /** The input's name in messages (its path, or `-`). */
  name: string;
  /** The encoding the input was read in. */
  encoding: string;
}

/** A parsed source record: CSV rows are flat string maps; JSONL rows are any JSON object. */
export type SourceRecord = Record<string, unknown>;

/** The providers batchpipe speaks to, each through its own official SDK. */
export const PROVIDERS = ['openai', 'anthropic', 'gemini'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** The Batch API endpoints batchpipe can write requests for (`/v1/messages`: Anthropic's). */
export const ENDPOINTS = [
  '/v1/chat/completions',
  '/v1/embeddings',
  '/v1/responses',
  '/v1/completions',
  '/v1/moderations',
  '/v1/messages',
  '/v1beta/generateContent',
  '/v1beta/embedContent',
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

/**
 * The tokens a provider billed for one request, in provider-neutral terms: what the ledger stores per
 * request and what `actualCost` prices. Each provider maps its response's usage onto it:
 * - OpenAI (`src/cost/usage.ts`, `openAiUsage`): `prompt_tokens` / `input_tokens`, their details'
 *   `cached_tokens`, `completion_tokens` / `output_tokens`, their details' `reasoning_tokens`.
 * - Anthropic: `inputTokens` = `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`,
 *   `cachedInputTokens` = `cache_read_input_tokens`, `cacheWriteTokens` = `cache_creation_input_tokens`.
 * - Gemini: `promptTokenCount`, `cachedContentTokenCount`, `candidatesTokenCount + thoughtsTokenCount`
 *   as output and `thoughtsTokenCount` as reasoning.
 *
 * `inputTokens` includes the cached and cache-write tokens and `outputTokens` the reasoning tokens
 * (each billed once, at its own rate); a count the provider does not report is 0.
 */
export interface Usage {
  inputTokens: number;
  /** Input tokens read from the prompt cache (billed at the cached-input rate). */
  cachedInputTokens: number;
  /** Input tokens written to the prompt cache, where a provider bills writes apart (Anthropic). */
  cacheWriteTokens: number;
  outputTokens: number;
  /** Output tokens spent on reasoning, reported apart by reasoning models. */
  reasoningTokens: number;
}

/**
 * The usage of requests that share a model, a path and a price tier, summed. `uncachedInputTokens`
 * is each request's input neither read from nor written to the cache, summed (each at least 0).
 */
export interface UsageSum extends Usage {
  uncachedInputTokens: number;
}

/** What a line says happened to its request, in the ledger's terms (`result` is JSON text). */
export interface LineOutcome {
  customId: string;
  state: 'succeeded' | 'failed' | 'expired' | 'cancelled';
  statusCode: number | null;
  result: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  /** What the response billed; null when it reports no usage (an error line, a moderation). */
  usage: Usage | null;
  /** Sending the request again may succeed (429, 5xx, `batch_expired`, `invalid_output`…). */
  retryable: boolean;
}

// --- The run and its batches (W: the ledger's run identity, the provider-neutral remote batch). ---

/** The options that decide what requests a run makes; a ledger belongs to exactly one identity. */
export interface RunIdentity {
  format: 'csv' | 'jsonl' | 'json';
  /** The provider whose dialect the requests are written in (ledgers made before it: `openai`). */
  provider: ProviderName;
  endpoint: string;
  model: string | null;
  prompt: string | null;
  system: string | null;
  body: unknown;
  idColumn: string | null;
  id: string | null;
  maxLines: number;
  maxBytes: number;
  /** The input's encoding; ledgers made before it was recorded read UTF-8. */
  encoding: string;
  /** JSON input: the keys leading to the array (null: the top-level array, or not JSON). */
  jsonPath: string[] | null;
}

/**
 * Where a batch stands, in the ledger's vocabulary (the OpenAI Batch API's statuses). Each provider
 * maps its own statuses onto these and keeps its own as `RemoteBatch.rawStatus`.
 */
export type BatchStatus =
  | 'validating'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'failed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

/** The statuses a batch ends in: its results are final and can be read. */
export const TERMINAL_BATCH_STATUSES: ReadonlySet<BatchStatus> = new Set([
  'completed',
  'failed',
  'expired',
  'cancelled',
]);

/** A batch's progress: `completed + failed` of its `total` requests have a line in its result files. */
export interface BatchRequestCounts {
  total: number;
  completed: number;
  failed: number;
}

/** Why a batch (or one line of its input) was refused; `line` is 1-based in its input file. */
export interface RemoteBatchError {
  code: string | null;
  message: string | null;
  line: number | null;
}

/** A batch as a provider reports it, in terms every provider can fill; the ledger stores it. */
export interface RemoteBatch {
  /** The provider's id of the batch. */
  id: string;
  /** The provider that holds it (`openai` for OpenAI and every compatible API). */
  provider: string;
  status: BatchStatus;
  /** The provider's own status word. */
  rawStatus: string;
  counts: BatchRequestCounts | null;
  /** The file of result lines (an id, or a URL), or null while there is none. */
  outputFile: string | null;
  /** A separate file of failed lines, for providers that split them out. */
  errorFile: string | null;
  errors: RemoteBatchError[];
  /** Refused whole for the provider's limit of enqueued tokens: none of it ran. */
  refusedForTokenLimit: boolean;
  /** The provider's token usage report, as JSON, if it gives one. */
  usage: unknown;
  /** Unix seconds by the provider's clock. */
  createdAt: number | null;
  endedAt: number | null;
  /** The provider's whole object, for display. */
  raw: unknown;
}

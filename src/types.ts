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

// --- The run and its batches (W: the ledger's run identity, the provider-neutral remote batch). ---

/** The options that decide what requests a run makes; a ledger belongs to exactly one identity. */
export interface RunIdentity {
  format: 'csv' | 'jsonl' | 'json';
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

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

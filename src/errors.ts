/**
 * One error base with stable codes. Users (and scripts) match on `code`; the message says what was
 * expected, what came, and where. Record-level errors carry the source `file` and 1-based `line`.
 */
export const ErrorCodes = {
  /** The input could not be parsed as CSV or JSONL. */
  PARSE: 'BP_PARSE',
  /** A `{{field}}` placeholder names a field the record does not have. */
  TEMPLATE_MISSING_FIELD: 'BP_TEMPLATE_MISSING_FIELD',
  /** A body template or prompt is malformed (unclosed `{{`, bad JSON). */
  TEMPLATE_INVALID: 'BP_TEMPLATE_INVALID',
  /** The id column is missing or empty for a record. */
  ID_MISSING: 'BP_ID_MISSING',
  /** Two records produced the same `custom_id`. */
  DUPLICATE_ID: 'BP_DUPLICATE_ID',
  /** A request line or its body does not match the Batch API schema. */
  INVALID_REQUEST: 'BP_INVALID_REQUEST',
  /** One request is larger than the per-file byte limit. */
  REQUEST_TOO_LARGE: 'BP_REQUEST_TOO_LARGE',
  /** The ledger was created for a different run (options differ) or has an unknown schema. */
  LEDGER_MISMATCH: 'BP_LEDGER_MISMATCH',
  /** The input changed between a run and its resume. */
  INPUT_CHANGED: 'BP_INPUT_CHANGED',
  /** Another process has the ledger open for writing (one writer per ledger). */
  LEDGER_BUSY: 'BP_LEDGER_BUSY',
  /** The ledger's prepare stopped before it read all its input, or requests are left that nothing can send. */
  INCOMPLETE_RUN: 'BP_INCOMPLETE_RUN',
  /** Bad command-line usage. */
  USAGE: 'BP_USAGE',
  /** The openai backend was chosen without an API key. */
  USAGE_NO_KEY: 'BP_NO_API_KEY',
  /** A Batch API call failed (after the SDK's retries). */
  API: 'BP_API',
  /** A file cannot fit the enqueued-token limit even alone. */
  TOKEN_LIMIT: 'BP_TOKEN_LIMIT',
  /** An output schema (`--output-schema`) is not valid JSON Schema, or uses what zod cannot express. */
  OUTPUT_SCHEMA: 'BP_OUTPUT_SCHEMA',
  /** A line of a Batch API output or error file is not a valid output line. */
  RESULT_LINE: 'BP_RESULT_LINE',
  /** An ended batch's output and error files hold fewer lines than the batch reports, download after download. */
  RESULT_INCOMPLETE: 'BP_RESULT_INCOMPLETE',
  /** A file could not be read or written. */
  IO: 'BP_IO',
  /** The input holds no records (it is empty, or a CSV header alone, or an empty JSON array). */
  NO_RECORDS: 'BP_NO_RECORDS',
  /** Input bytes that are not valid in the input's encoding (UTF-8 unless `--encoding` says otherwise). */
  ENCODING: 'BP_ENCODING',
  /** A model (or its batch/flex path) has no price in prices.json or the `--price-file`s given. */
  UNPRICED: 'BP_UNPRICED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface BatchpipeErrorOptions {
  /** Source file (or `-` for stdin) the offending record came from. */
  file?: string | undefined;
  /** 1-based line of the source where the offending record starts. */
  line?: number | undefined;
  /** 0-based input order of the offending record. */
  seq?: number | undefined;
  /** The field (or JSON path) at fault. */
  field?: string | undefined;
  customId?: string | undefined;
  cause?: unknown;
}

/** The base of every error batchpipe throws on purpose. */
export class BatchpipeError extends Error {
  readonly code: ErrorCode;
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly seq: number | undefined;
  readonly field: string | undefined;
  readonly customId: string | undefined;

  constructor(code: ErrorCode, message: string, options: BatchpipeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BatchpipeError';
    this.code = code;
    this.file = options.file;
    this.line = options.line;
    this.seq = options.seq;
    this.field = options.field;
    this.customId = options.customId;
  }

  /** Compiler-style `file:line: CODE message`, the form the CLI prints. */
  format(): string {
    const where = this.file === undefined ? '' : `${this.file}:${this.line ?? ''}: `.replace(/:: $/, ': ');
    return `${where}${this.code} ${this.message}`;
  }
}

export function isBatchpipeError(err: unknown): err is BatchpipeError {
  return err instanceof BatchpipeError;
}

/**
 * A failed file operation as a `BP_IO` error naming the path, e.g. `cannot write out/x.csv: no space
 * left on device (ENOSPC)`. `action` is what was tried: `write`, `create`, `read`…
 */
export function ioError(action: string, path: string, err: unknown): BatchpipeError {
  const e = err as NodeJS.ErrnoException;
  const message = err instanceof Error ? err.message : String(err);
  // Node's messages read `ENOSPC: no space left on device, write`: keep the middle, then the code.
  const reason = e?.code ? `${/^[A-Z0-9_]+: ([^,]*)/.exec(message)?.[1] ?? message} (${e.code})` : message;
  return new BatchpipeError(ErrorCodes.IO, `cannot ${action} ${path}: ${reason}`, { cause: err });
}

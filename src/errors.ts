/**
 * Every code family batchpipe gives, in one typed place, each stable for users and scripts to match
 * on (all listed in the README's error tables):
 * - {@link ErrorCodes} (`BP_*`): what a thrown {@link BatchpipeError} and a rejected record carry;
 * - {@link ResultErrorCodes} (snake_case): why an answered request has no usable result (beside the
 *   API's own error codes, which pass through as they came);
 * - {@link IssueCodes} (snake_case): what `validate` and the request checks report as issues.
 *
 * One error base: the message says what was expected, what came, and where; record-level errors
 * carry the source `file` and 1-based `line`.
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
  /** A request file holds more than the provider takes in one batch (Anthropic: 100,000 requests, 256 MB). */
  BATCH_TOO_LARGE: 'BP_BATCH_TOO_LARGE',
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
  /** `--max-usd`: the run's estimate, or the next batch on top of what is spent and queued, is over the budget. */
  BUDGET: 'BP_BUDGET',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** The codes extraction and result application give failures (besides the API's own error codes). */
export const ResultErrorCodes = {
  /** The model refused (chat `message.refusal`, responses `refusal` part). Not retried. */
  REFUSAL: 'refusal',
  /** The output was withheld by the content filter (`finish_reason: content_filter`). Not retried. */
  CONTENT_FILTER: 'content_filter',
  /** JSON was asked for and the output is not JSON (often cut off at the token limit). Retried. */
  INVALID_JSON: 'invalid_json',
  /** The parsed output does not match the output schema. Retried. */
  INVALID_OUTPUT: 'invalid_output',
  /** A 2xx body without the parts this endpoint's result lives in. Retried. */
  EMPTY_RESPONSE: 'empty_response',
  /** A `/v1/responses` body whose `status` is `failed`, without an error code of its own. */
  RESPONSE_FAILED: 'response_failed',
  /** A non-2xx response whose body names no error code: the code is `http_<status>`. */
  HTTP_PREFIX: 'http_',
} as const;

export type ResultErrorCode = (typeof ResultErrorCodes)[keyof typeof ResultErrorCodes];

/** Every code a validator can report. Listed in the README's error-code table. */
export const IssueCodes = {
  /** The line is not valid JSON. */
  INVALID_JSON: 'invalid_json',
  /** The line is not valid UTF-8. */
  INVALID_UTF8: 'invalid_utf8',
  /** The line is JSON but not an object. */
  NOT_AN_OBJECT: 'not_an_object',
  /** A required field is absent. */
  MISSING_FIELD: 'missing_field',
  /** A field has the wrong JSON type (e.g. a number where a string belongs). */
  INVALID_TYPE: 'invalid_type',
  /** A field has the right type but a value the API refuses (out of range, not in the enum, empty, pattern). */
  INVALID_VALUE: 'invalid_value',
  /** `custom_id` is an empty string. */
  EMPTY_CUSTOM_ID: 'empty_custom_id',
  /** `method` is not `POST`. */
  INVALID_METHOD: 'invalid_method',
  /** `url` is not an endpoint batchpipe supports. */
  UNKNOWN_ENDPOINT: 'unknown_endpoint',
  /** The file starts with a UTF-8 byte order mark. */
  BOM: 'bom',
  /** The file holds no request at all. */
  EMPTY_FILE: 'empty_file',
  /** An empty (or whitespace-only) line. */
  BLANK_LINE: 'blank_line',
  /** A `custom_id` already used earlier in the file. */
  DUPLICATE_CUSTOM_ID: 'duplicate_custom_id',
  /** The line's `url` differs from the file's first one (one endpoint per file). */
  URL_MISMATCH: 'url_mismatch',
  /** The line's `body.model` differs from the file's first one (one model per file). */
  MODEL_MISMATCH: 'model_mismatch',
  /** The file holds more requests than the line limit. */
  TOO_MANY_LINES: 'too_many_lines',
  /** The file (or a single line) is larger than the byte limit. */
  TOO_MANY_BYTES: 'too_many_bytes',
  /** An embeddings file carries more inputs in total than the API accepts in one batch. */
  TOO_MANY_EMBEDDING_INPUTS: 'too_many_embedding_inputs',
} as const;

export type IssueCode = (typeof IssueCodes)[keyof typeof IssueCodes];

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

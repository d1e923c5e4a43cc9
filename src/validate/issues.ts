/**
 * What the validators report: issues as data `{ code, path, message }`, never thrown. Codes are stable
 * snake_case strings that users and scripts match on. As in zod, the message does not repeat the path:
 * present an issue with `formatIssue` (`body.messages[1].content: expected string or array, got number`).
 */
export interface ValidationIssue {
  /** One of {@link IssueCodes}. */
  code: IssueCode;
  /** Where in the request line, e.g. `body.messages[1].content`; `''` for the line as a whole or the file. */
  path: string;
  /** What was expected and what came, without the path. */
  message: string;
}

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

/** An issue with the 1-based line of the file it was found on. */
export interface LineIssue extends ValidationIssue {
  line: number;
}

export function issue(code: IssueCode, path: string, message: string): ValidationIssue {
  return { code, path, message };
}

/**
 * An issue for people: `path: message`, or the message alone for issues about the whole line or file.
 * @example formatIssue({ code: 'missing_field', path: 'body.model', message: 'required, expected string' })
 * // → 'body.model: required, expected string'
 */
export function formatIssue(found: Pick<ValidationIssue, 'path' | 'message'>): string {
  return found.path === '' ? found.message : `${found.path}: ${found.message}`;
}

/** A short, bounded rendering of a JSON value for messages: strings quoted and cut, containers by kind. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? `an array of ${value.length}` : 'an object';
}

/** The JSON type name of a value, as messages say it: `string`, `number`, `array`, `object`, `null`... */
export function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

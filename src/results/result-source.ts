/**
 * The result source: every input record the ledger accounts for, once, with its outcome, as an
 * object-mode Readable in input order (or completion order), in bounded memory.
 */
import { Readable } from 'node:stream';
import { ResultErrorCodes } from '../errors.js';
import { parseCsvRecords } from '../internal/csv-cells.js';
import { parseJsonLossless } from '../internal/lossless-json.js';
import { inputColumnsOf, storedRunIdentity } from '../ledger/identity.js';
import type { Ledger, RequestResultRow as LedgerRequestRow } from '../ledger/ledger.js';
import type { Reject, SourceRecord } from '../types.js';
import type { ResultUsage } from './extract.js';
import { type LedgerRow, ledgerRowPages, type ResultStatus, statusOf } from './ledger-rows.js';
import { formatZodPath, type OutputSchema, validateOutput } from './output-validation.js';

export type { ResultStatus } from './ledger-rows.js';

/** Why a record has no result (or, while pending, why its last attempt failed). */
export interface ResultError {
  /** The API's error code, one of batchpipe's result codes (`refusal`, `invalid_output`…) or a `BP_*` reject code. */
  code: string;
  message: string;
  /** The HTTP status of the response, when there was one. */
  status_code: number | null;
  /** For rejects: the source line of the record at fault (as in the JSONL output's `error`). */
  line?: number;
  /** For rejects: the field at fault, if known. */
  field?: string;
}

/** A record that became a request, and what became of it so far. */
export interface RequestResultRow<T = unknown, R = SourceRecord> {
  /** 0-based input order. */
  seq: number;
  /** 1-based line of the source where the record starts. */
  line: number;
  custom_id: string;
  /**
   * The source record: a CSV row keyed by the header, or the JSONL object (numbers JSON.parse would
   * alter kept as their exact text).
   */
  record: R;
  status: Exclude<ResultStatus, 'rejected'>;
  /** The extracted result (text, parsed object, vector…), for `succeeded`; otherwise `null`. */
  result: T | null;
  error: ResultError | null;
  usage: ResultUsage | null;
}

/** A record that never became a request, and why. */
export interface RejectedResultRow<R = SourceRecord> {
  seq: number;
  line: number;
  custom_id: null;
  /** The source record as an object; its raw text when it does not parse as one (bad JSON, cut-off CSV). */
  record: R | string;
  status: 'rejected';
  result: null;
  error: ResultError & { line: number };
  usage: null;
}

/**
 * One input record and what became of it: `R` types the records (a CSV row, a JSONL object), `T`
 * the results. Narrow on `status` to reach a request's record or a reject's error.
 */
export type ResultRow<T = unknown, R = SourceRecord> = RequestResultRow<T, R> | RejectedResultRow<R>;

/** The result source: a Readable whose async iteration yields typed rows. */
export interface ResultSource<T = unknown, R = SourceRecord> extends Readable {
  [Symbol.asyncIterator](): NodeJS.AsyncIterator<ResultRow<T, R>>;
}

export interface ResultSourceOptions {
  ledger: Ledger;
  /** `input` (default) or `completion`: outcomes in the order they came, then pending and rejected by seq. */
  order?: 'input' | 'completion' | undefined;
  /** Only these statuses (default: all). */
  status?: readonly ResultStatus[] | undefined;
  /**
   * Parses each succeeded result with this zod schema (typing it, and applying its transforms). A
   * result that does not match (it was recorded under another schema) comes as `failed` with
   * `invalid_output`; the ledger is not changed.
   */
  outputSchema?: OutputSchema | undefined;
  /** Records read from the ledger per page (default 2000). */
  pageSize?: number | undefined;
}

/**
 * Streams the ledger's records with their results, one `ResultRow` each, in input order by default.
 * Type the records with `R` and the results with `T`; nothing checks them (an output schema checks
 * results).
 *
 * @example
 * for await (const row of resultSource<{ id: string; text: string }, string>({ ledger })) {
 *   if (row.status === 'succeeded') console.log(row.record.id, row.record.text, row.result);
 *   if (row.status === 'rejected') console.error(`line ${row.line}: ${row.error.code}`);
 * }
 */
export function resultSource<R = SourceRecord, T = unknown>(
  options: ResultSourceOptions,
): ResultSource<T, R> {
  const pages = ledgerRowPages(options.ledger, options);
  const decode = recordDecoder(options.ledger);
  return Readable.from(
    (function* rows() {
      for (const page of pages) yield* toResultRows(page, decode, options.outputSchema);
    })(),
    { objectMode: true, highWaterMark: 64 },
  ) as ResultSource<T, R>;
}

/** Turns one page of ledger rows into result rows (records parsed a page at a time). */
export function toResultRows(
  page: LedgerRow[],
  decode: RecordDecoder,
  outputSchema?: OutputSchema | undefined,
): ResultRow[] {
  const records = decode(page.map((row) => (row.request ? row.request.record : row.reject.record)));
  return page.map((row, i) =>
    row.request ? requestRow(row.request, records[i]!, outputSchema) : rejectRow(row.reject, records[i]!),
  );
}

function requestRow(
  row: LedgerRequestRow,
  record: SourceRecord | string,
  outputSchema?: OutputSchema,
): ResultRow {
  const status = statusOf(row.state);
  let result: unknown = null;
  let error: ResultError | null =
    row.error_code === null
      ? null
      : { code: row.error_code, message: row.error_message ?? '', status_code: row.status_code };
  if (status === 'succeeded' && row.result !== null) {
    result = JSON.parse(row.result);
    if (outputSchema) {
      const checked = validateOutput(outputSchema, result);
      if (!checked.ok) {
        const path = formatZodPath(checked.issue.path);
        const where = path === '' ? '' : `${path}: `;
        error = {
          code: ResultErrorCodes.INVALID_OUTPUT,
          message: `the output does not match the output schema: ${where}${checked.issue.message}`,
          status_code: row.status_code,
        };
        return rowOf(row, record, 'failed', null, error);
      }
      result = checked.value;
    }
  }
  return rowOf(row, record, status, result, error);
}

function rowOf(
  row: LedgerRequestRow,
  record: SourceRecord | string,
  status: Exclude<ResultStatus, 'rejected'>,
  result: unknown,
  error: ResultError | null,
): ResultRow {
  const usage =
    row.input_tokens === null && row.output_tokens === null
      ? null
      : { input_tokens: row.input_tokens, output_tokens: row.output_tokens };
  // A request's stored record was parsed once already: it decodes to an object.
  const object = record as SourceRecord;
  return {
    seq: row.seq,
    line: row.line,
    custom_id: row.custom_id,
    record: object,
    status,
    result,
    error,
    usage,
  };
}

function rejectRow(row: Reject, record: SourceRecord | string): ResultRow {
  const error: ResultError & { line: number } = {
    code: row.code,
    message: row.message,
    status_code: null,
    line: row.line,
  };
  if (row.field !== undefined) error.field = row.field;
  return {
    seq: row.seq,
    line: row.line,
    custom_id: null,
    record,
    status: 'rejected',
    result: null,
    error,
    usage: null,
  };
}

/** Parses a page of stored records into objects. */
export type RecordDecoder = (records: readonly (Buffer | string)[]) => (SourceRecord | string)[];

/** The decoder for the run's input format (meta `identity`, `columns`). */
export function recordDecoder(ledger: Ledger): RecordDecoder {
  const format = inputFormat(ledger);
  if (format === 'csv') {
    const columns = inputColumnsOf(ledger);
    return (records) =>
      parseCsvRecords(records).map((values, i) => {
        if (values === undefined) return text(records[i]!);
        const record: SourceRecord = {};
        for (let c = 0; c < columns.length; c++) record[columns[c]!] = values[c] ?? '';
        return record;
      });
  }
  return (records) =>
    records.map((raw) => {
      const source = text(raw);
      try {
        const value = parseJsonLossless(source);
        return typeof value === 'object' && value !== null && !Array.isArray(value)
          ? (value as SourceRecord)
          : source;
      } catch {
        return source;
      }
    });
}

/** The run's input format, from meta `identity`. */
export function inputFormat(ledger: Ledger): 'csv' | 'jsonl' {
  const format = storedRunIdentity(ledger)?.format;
  return format === 'jsonl' || format === 'json' ? 'jsonl' : 'csv';
}

function text(record: Buffer | string): string {
  return typeof record === 'string' ? record : record.toString('utf8');
}

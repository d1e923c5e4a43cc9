/**
 * CSV records of result rows: the input's cells (a CSV input's canonical records as their bytes,
 * anything else through src/internal/csv-cells.ts), then the result cells. Plain functions of the rows and a
 * plain-data config, so the ledger's thread and a format worker format alike.
 */
import { csvCell, csvRow, isCanonicalCsvRecord, parseCsvRecord } from '../internal/csv-cells.js';
import { type SeqRange, sqlCsvRange } from '../ledger/csv-pages.js';
import {
  type Ledger,
  type PackedPage,
  type RequestOutcomeRow,
  type RequestState,
  unpackOutcomePage,
} from '../ledger/ledger.js';
import type { Reject } from '../types.js';
import { jsonObjectCells } from './json-cells.js';
import { type LedgerRow, statusOf } from './ledger-rows.js';
import { PageBuffer } from './page-buffer.js';
import type { ExpandColumns } from './result-columns.js';

/** What formatting a CSV page needs besides the rows: plain data, so a format worker can have it. */
export interface CsvPageConfig {
  columns: string[];
  escapeCells: boolean;
  expand: ExpandColumns | undefined;
}

/** Formats pages of rows as CSV records. */
export interface CsvPageFormatter {
  /** `lastCell`: a cell more after the result columns (`results --cost`), already CSV-safe. */
  (rows: LedgerRow<RequestOutcomeRow>[], lastCell?: (row: LedgerRow<RequestOutcomeRow>) => string): Buffer;
  /** The input's cells of a stored record, formatted (for a record that is not canonical CSV). */
  inputCells(raw: Buffer | string): string;
  config: CsvPageConfig;
}

/** Formats a page of rows as CSV records, of a CSV input's records or a JSONL input's. */
export function csvPageFormatter(config: CsvPageConfig, input: 'csv' | 'jsonl' = 'csv'): CsvPageFormatter {
  const { columns, escapeCells, expand } = config;
  const empty = new Array<string>(columns.length).fill('');
  const out = new PageBuffer();

  /** The input's cells of a non-canonical or JSONL record. */
  const inputCells = (raw: Buffer | string): string => {
    if (input === 'csv') {
      const values = parseCsvRecord(raw) ?? empty;
      return csvRow(
        columns.map((_, c) => values[c] ?? ''),
        escapeCells,
      );
    }
    // Each value's own text in the line: nested numbers keep their digits (json-cells.ts).
    const cells = jsonObjectCells(typeof raw === 'string' ? raw : raw.toString('utf8'));
    if (cells === undefined) return csvRow(empty, escapeCells); // a reject that is not an object
    return csvRow(
      columns.map((name) => cells.get(name) ?? ''),
      escapeCells,
    );
  };

  const format = (
    rows: LedgerRow<RequestOutcomeRow>[],
    lastCell?: (row: LedgerRow<RequestOutcomeRow>) => string,
  ): Buffer => {
    for (const row of rows) {
      const record = row.request ? row.request.record : row.reject.record;
      if (
        input === 'csv' &&
        typeof record !== 'string' &&
        isCanonicalCsvRecord(record, columns.length, escapeCells)
      ) {
        out.bytes(record); // what a csv-parse → csv-stringify round trip gives back
      } else {
        out.text(inputCells(record));
      }
      out.text(`${columns.length > 0 ? ',' : ''}${resultCells(row, expand, escapeCells)}`);
      out.text(lastCell ? `,${lastCell(row)}\n` : '\n');
    }
    return out.take();
  };
  return Object.assign(format, { inputCells, config });
}

function resultCells(
  row: LedgerRow<RequestOutcomeRow>,
  expand: ExpandColumns | undefined,
  escapeCells: boolean,
): string {
  if (row.reject) {
    return `${expand ? ','.repeat(expandWidth(expand)) : ','}rejected,${csvCell(rejectError(row.reject), escapeCells)}`;
  }
  const r = row.request;
  const status = statusOf(r.state);
  const error =
    r.error_code === null ? '' : csvCell(`${r.error_code}: ${r.error_message ?? ''}`, escapeCells);
  const result = status === 'succeeded' && r.result !== null ? r.result : undefined;
  let cells: string;
  if (!expand) {
    cells = result === undefined ? '' : csvCell(resultText(result), escapeCells);
  } else {
    cells = expandedCells(result, expand, escapeCells);
  }
  return `${cells},${status},${error}`;
}

function expandWidth(expand: ExpandColumns): number {
  return expand.fields.length + (expand.other ? 1 : 0);
}

/** The `result.<field>` cells; a result that is not an object goes whole into the `result` column. */
function expandedCells(result: string | undefined, expand: ExpandColumns, escapeCells: boolean): string {
  const cells: string[] = [];
  const value = result === undefined ? undefined : (JSON.parse(result) as unknown);
  const object = isObject(value) ? value : undefined;
  if (expand.other)
    cells.push(value === undefined || object ? '' : csvCell(resultText(result!), escapeCells));
  for (const field of expand.fields) cells.push(object ? csvCell(cellText(object[field]), escapeCells) : '');
  return cells.join(',');
}

/** A stored result (JSON text) as a cell: a string as itself, anything else as JSON. */
function resultText(json: string): string {
  return json.startsWith('"') ? (JSON.parse(json) as string) : json;
}

/** A JSON value as a cell: strings as they are, `null`/absent empty, the rest as JSON. */
function cellText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** A reject's `result_error` cell: its code, the line of the record at fault, and the message. */
function rejectError(reject: Reject): string {
  return `${reject.code}: line ${reject.line}: ${reject.message}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A formatted page and how many records it holds. */
export interface FormattedPage {
  bytes: Buffer;
  rows: number;
}

const EMPTY: FormattedPage = { bytes: Buffer.alloc(0), rows: 0 };

/**
 * Reads the requests of a range and formats them (on whichever thread calls it): built by SQLite
 * where it can (src/ledger/csv-pages.ts), else by `format`.
 */
export function formatRange(
  ledger: Ledger,
  range: SeqRange,
  states: readonly RequestState[] | undefined,
  format: CsvPageFormatter,
): FormattedPage {
  const { columns, escapeCells, expand } = format.config;
  if (expand === undefined && columns.length > 0) {
    const built = sqlCsvRange(ledger, range, states, {
      fields: columns.length,
      escapeFormulas: escapeCells,
      inputCells: format.inputCells,
    });
    if (built !== undefined) return built;
  }
  const page = ledger.packedOutcomeRange(range.after, range.last, states);
  if (page === undefined) return EMPTY;
  return { bytes: format(packedRows(page)), rows: page.count };
}

/** A packed page's rows, as the CSV formatter takes them. */
function packedRows(page: Pick<PackedPage, 'records' | 'json'>): LedgerRow<RequestOutcomeRow>[] {
  return unpackOutcomePage(page).map((request) => ({ request }));
}

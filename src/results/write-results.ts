/**
 * The rejoined records as CSV or JSONL: every input record once, in input order, with its result,
 * status and error beside it. `batchpipe results` and `batchpipe run` write through this.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { csvRow } from '../internal/csv-cells.js';
import { inputColumnsOf } from '../ledger/identity.js';
import type { Ledger, RequestResultRow } from '../ledger/ledger.js';
import { type CsvPageConfig, csvPageFormatter } from './csv-format.js';
import { formatRanges } from './format-pages.js';
import { isJsonObjectText } from './json-cells.js';
import {
  type LedgerRow,
  type LedgerRowsOptions,
  ledgerRowPages,
  outcomeRanges,
  outcomeRowPages,
  type ResultStatus,
  statusOf,
} from './ledger-rows.js';
import { PageBuffer } from './page-buffer.js';
import { type ExpandColumns, expandColumns, jsonlInputColumns } from './result-columns.js';
import { inputFormat, recordDecoder } from './result-source.js';
import type { RowCosts } from './row-costs.js';

export interface WriteResultsOptions {
  format: 'csv' | 'jsonl';
  /** Only these statuses (default: all). */
  status?: readonly ResultStatus[] | undefined;
  /** `input` (default) or `completion`. */
  order?: 'input' | 'completion' | undefined;
  /** CSV: one `result.<field>` column per field of object results, instead of one `result` column. */
  expand?: boolean | undefined;
  /** CSV: prefix cells starting with `=`, `+`, `-`, `@`, tab or CR with `'` (csv-stringify's `escape_formulas`). */
  escapeFormulas?: boolean | undefined;
  /** CSV: prefix of the result columns (default none: `result`, `result_status`, `result_error`). */
  resultPrefix?: string | undefined;
  /**
   * Each request's cost (`results --cost`): a `result_cost_usd` column (CSV) or `cost_usd` field
   * (JSONL), exact dollars to the micro-dollar, empty / null without usage. CSV is then formatted on
   * this thread.
   */
  cost?: RowCosts | undefined;
  /**
   * CSV: pages formatted on this thread before a format worker takes over (default
   * {@link THREAD_AFTER_PAGES}); `false`: never. For tests.
   */
  threadAfterPages?: number | false | undefined;
}

/**
 * Output is built a page of records at a time and written as one buffer. A page of typical rows stays
 * under the malloc mmap threshold the bin fixes (128 KB), so its memory (often a buffer SQLite's
 * driver allocates) comes from the heap and is reused; a larger page would be mapped, zeroed by the
 * kernel and unmapped again, page after page.
 */
const PAGE = 300;
/** Pages formatted here before a worker is started (50,000 rows): small outputs are not worth its start-up. */
export const THREAD_AFTER_PAGES = Math.ceil(50_000 / PAGE);

/**
 * Writes the results to `out` (not ended: the caller owns it), waiting for `drain` when it is full.
 * CSV: the input's columns in order (a CSV input's cells byte-identical to a csv-parse →
 * csv-stringify round trip), then `result`, `result_status`, `result_error`. JSONL: one
 * `{ custom_id, status, record, result, error, usage }` per line.
 *
 * @example
 * const { rows } = await writeResults(ledger, process.stdout, { format: 'csv', expand: true });
 */
export async function writeResults(
  ledger: Ledger,
  out: Writable,
  options: WriteResultsOptions,
): Promise<{ rows: number }> {
  const rowsOptions = { order: options.order, status: options.status, pageSize: PAGE };
  const format =
    options.format === 'jsonl'
      ? jsonlFormatter(ledger, rowsOptions, options.cost)
      : csvFormatter(ledger, options, rowsOptions);
  const header = format.header();
  if (header !== '') await write(out, Buffer.from(header));
  // Each page is read and formatted when the output has room for it: no statement stays open.
  for await (const page of format.pages()) await write(out, page);
  return { rows: format.rows() };
}

/**
 * Writes one page, waiting for `drain` when `out` is full. A synchronous `out` (stdout on a file)
 * never is, so the event loop gets a turn anyway: V8 frees the pages' buffers in tasks that run there
 * (without it, RSS grew by ~50 MB over 1,000,000 rows).
 */
async function write(out: Writable, bytes: Buffer): Promise<void> {
  if (!out.write(bytes)) await once(out, 'drain');
  else await new Promise(setImmediate);
}

interface Formatter {
  header(): string;
  /** The output, a page of records at a time. */
  pages(): Generator<Buffer> | AsyncGenerator<Buffer>;
  /** Records written so far. */
  rows(): number;
}

function jsonlFormatter(ledger: Ledger, rowsOptions: LedgerRowsOptions, cost?: RowCosts): Formatter {
  const isJsonl = inputFormat(ledger) === 'jsonl';
  const decode = recordDecoder(ledger);
  const out = new PageBuffer();
  let count = 0;
  const page = (rows: LedgerRow[]): Buffer => {
    const costs = cost?.(rows.flatMap((r) => (r.request ? [r.request.seq] : [])));
    // A JSONL request's stored record is already a JSON object's text: it is embedded as it is.
    const decoded = isJsonl
      ? undefined
      : decode(rows.map((r) => (r.request ? r.request.record : r.reject.record)));
    rows.forEach((row, i) => {
      if (row.request) {
        const r = row.request;
        const status = statusOf(r.state);
        out.text(`{"custom_id":${JSON.stringify(r.custom_id)},"status":"${status}","record":`);
        if (decoded) out.text(JSON.stringify(decoded[i]));
        else out.bytes(r.record);
        out.text(
          `,"result":${status === 'succeeded' ? (r.result ?? 'null') : 'null'},"error":${requestErrorJson(r)},"usage":${usageJson(r)}${costs ? `,"cost_usd":${costs.get(r.seq) || 'null'}` : ''}}\n`,
        );
      } else {
        const j = row.reject;
        const error = {
          code: j.code,
          message: j.message,
          status_code: null,
          line: j.line,
          field: j.field ?? null,
        };
        out.text('{"custom_id":null,"status":"rejected","record":');
        // A JSONL input's rejected line that is a JSON object is embedded as it is, as a request's
        // is; one that is not (bad JSON, an array…) comes as its text.
        if (decoded) out.text(JSON.stringify(decoded[i]));
        else if (isJsonObjectText(j.record)) out.text(j.record);
        else out.text(JSON.stringify(j.record));
        out.text(
          `,"result":null,"error":${JSON.stringify(error)},"usage":null${costs ? ',"cost_usd":null' : ''}}\n`,
        );
      }
    });
    return out.take();
  };
  return {
    header: () => '',
    *pages() {
      for (const rows of ledgerRowPages(ledger, rowsOptions)) {
        count += rows.length;
        yield page(rows);
      }
    },
    rows: () => count,
  };
}

function requestErrorJson(r: RequestResultRow): string {
  if (r.error_code === null) return 'null';
  return JSON.stringify({ code: r.error_code, message: r.error_message ?? '', status_code: r.status_code });
}

function usageJson(r: RequestResultRow): string {
  if (r.input_tokens === null && r.output_tokens === null) return 'null';
  return `{"input_tokens":${r.input_tokens},"output_tokens":${r.output_tokens}}`;
}

function csvFormatter(
  ledger: Ledger,
  options: WriteResultsOptions,
  rowsOptions: LedgerRowsOptions,
): Formatter {
  const escapeCells = options.escapeFormulas === true;
  const prefix = options.resultPrefix ?? '';
  const isJsonl = inputFormat(ledger) === 'jsonl';
  const columns = isJsonl ? jsonlInputColumns(ledger) : inputColumnsOf(ledger);
  const expand = options.expand ? expandColumns(ledger) : undefined;
  const resultColumns = [
    ...resultColumnNames(prefix, expand),
    ...(options.cost ? [`${prefix}result_cost_usd`] : []),
  ];
  checkCollisions(columns, resultColumns, prefix);
  const config: CsvPageConfig = { columns, escapeCells, expand };
  const page = csvPageFormatter(config, isJsonl ? 'jsonl' : 'csv');
  // A CSV input's pages can be read and formatted on two threads at once.
  const ranges =
    isJsonl || options.threadAfterPages === false || options.cost
      ? undefined
      : outcomeRanges(ledger, rowsOptions);
  let count = 0;

  return {
    header: () => `${csvRow([...columns, ...resultColumns], escapeCells)}\n`,
    async *pages() {
      if (ranges) {
        const threadAfter = options.threadAfterPages;
        const after = typeof threadAfter === 'number' ? threadAfter : THREAD_AFTER_PAGES;
        for await (const formatted of formatRanges(ledger, ranges, page, after)) {
          count += formatted.rows;
          if (formatted.rows > 0) yield formatted.bytes;
        }
        return;
      }
      for (const rows of outcomeRowPages(ledger, rowsOptions)) {
        count += rows.length;
        const costs = options.cost?.(rows.flatMap((r) => (r.request ? [r.request.seq] : [])));
        yield costs ? page(rows, (r) => (r.request ? (costs.get(r.request.seq) ?? '') : '')) : page(rows);
      }
    },
    rows: () => count,
  };
}

/** `result` (or the expanded columns), `result_status`, `result_error`, each with the prefix. */
function resultColumnNames(prefix: string, expand: ExpandColumns | undefined): string[] {
  const names = expand
    ? [...(expand.other ? [`${prefix}result`] : []), ...expand.fields.map((f) => `${prefix}result.${f}`)]
    : [`${prefix}result`];
  return [...names, `${prefix}result_status`, `${prefix}result_error`];
}

function checkCollisions(columns: readonly string[], resultColumns: readonly string[], prefix: string): void {
  const input = new Set(columns);
  const clash = resultColumns.find((name) => input.has(name));
  if (clash !== undefined) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `the input already has a column ${JSON.stringify(clash)}; give --result-prefix${prefix === '' ? '' : ' another prefix'} (e.g. --result-prefix llm_) to name the result columns apart`,
    );
  }
}

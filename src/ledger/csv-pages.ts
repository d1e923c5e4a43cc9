/**
 * CSV result pages built by SQLite itself: each row's stored record followed by its result cells
 * (`,result,result_status,result_error\n`), formatted in SQL the way `csvCell` formats them, as one
 * blob per page. The caller's thread then only checks that each record is canonical CSV (what csv-parse →
 * csv-stringify gives back); for a page where all are, the blob is the output as it is.
 *
 * Why: formatting 1,000,000 rows in JavaScript (unpacking each row, decoding its result, quoting
 * cells) cost about as much as reading them; SQLite does the same string work in C while it reads.
 * Only the plain `result` column is built here (no `--expand`), and a page whose results hold a
 * `\u0000` or a surrogate escape (which SQLite's JSON decoding does not turn into the bytes
 * JavaScript would write) is left to the JavaScript formatter.
 */
import type Database from 'better-sqlite3';
import { FORMULA_LEADS, isCanonicalCsvRecord } from '../internal/csv-cells.js';
import { connectionOf, type Ledger, type RequestState } from './ledger.js';

/** Requests with `after < seq <= last`: a span of seqs that any thread with the ledger can read. */
export interface SeqRange {
  after: number;
  last: number;
}

/** A page as SQLite built it: records and result cells back to back, and where each row lies. */
interface SqlCsvPage {
  count: number;
  bytes: Buffer;
  /** Each row's seq, the byte length of its record and of its result cells, and so on, comma-separated. */
  layout: string;
  /** 1 when some row must be formatted in JavaScript instead. */
  fallback: number;
}

/** {@link FORMULA_LEADS} as SQL: `char(61), char(43), …`. */
const FORMULA_LEADS_SQL = FORMULA_LEADS.map((lead) => `char(${lead.codePointAt(0)})`).join(', ');

/** A text with a leading `'` when it starts like a formula (csvCell's `escapeFormulas`). */
function formulaEscapedSql(value: string): string {
  return `(CASE WHEN substr(${value}, 1, 1) IN (${FORMULA_LEADS_SQL}) THEN '''' || ${value} ELSE ${value} END)`;
}

/** One cell as `csvCell` writes it, for a SQL text expression (repeated: SQLite has no variables). */
function csvCellSql(value: string, escapeFormulas: boolean): string {
  const v = escapeFormulas ? formulaEscapedSql(value) : value;
  return `(CASE WHEN ${v} GLOB '*[",' || char(10, 13) || ']*' THEN '"' || replace(${v}, '"', '""') || '"' ELSE ${v} END)`;
}

/** The text `resultText` gives a stored result: a JSON string decoded, anything else as its JSON. */
const RESULT_TEXT = `(CASE WHEN state <> 'succeeded' OR result IS NULL THEN ''
  WHEN result GLOB '"*' THEN result ->> '$' ELSE result END)`;

/**
 * The `result` cell. Most results are JSON strings without an escape: their text is what lies
 * between the quotes and holds no quote, CR or LF, so only a comma calls for quoting, and the cell
 * needs no JSON decoding and no pattern scan (which cost 1.5 s → 1.0 s per 1,000,000 rows).
 */
function resultCellSql(escapeFormulas: boolean): string {
  const text = `trim(result, '"')`;
  const plain = escapeFormulas
    ? `(CASE WHEN instr(result, ',') > 0 THEN '"' || ${formulaEscapedSql(text)} || '"' ELSE ${formulaEscapedSql(text)} END)`
    : `(CASE WHEN instr(result, ',') > 0 THEN result ELSE ${text} END)`;
  return `(CASE WHEN state <> 'succeeded' OR result IS NULL THEN ''
    WHEN result GLOB '"*' AND instr(result, '\\') = 0 THEN ${plain}
    ELSE ${csvCellSql(RESULT_TEXT, escapeFormulas)} END)`;
}

const ERROR_TEXT = `(CASE WHEN error_code IS NULL THEN '' ELSE error_code || ': ' || coalesce(error_message, '') END)`;
const STATUS = `(CASE WHEN state IN ('staged', 'submitted') THEN 'pending' ELSE state END)`;
/** Escapes whose decoding differs between SQLite and JavaScript: NUL, and UTF-16 surrogates. */
const NEEDS_JS = `(instr(result, '\\u') > 0
  AND (result GLOB '*\\u[dD][89abcdefABCDEF]*' OR result GLOB '*\\u0000*'))`;

const statements = new WeakMap<Database.Database, Map<string, Database.Statement<[number, number]>>>();

function statement(
  db: Database.Database,
  states: readonly RequestState[] | undefined,
  escapeFormulas: boolean,
): Database.Statement<[number, number], [number, Buffer | null, string, number | null]> {
  const key = `${escapeFormulas}:${states?.join(',') ?? ''}`;
  let byKey = statements.get(db);
  if (!byKey) {
    byKey = new Map();
    statements.set(db, byKey);
  }
  let stmt = byKey.get(key);
  if (!stmt) {
    const filter = states === undefined ? '' : ` AND state IN (${states.map((s) => `'${s}'`).join(', ')})`;
    stmt = db
      .prepare(
        `SELECT count(*), CAST(group_concat(CAST(record AS TEXT) || cells, '') AS BLOB),
           group_concat(seq || ',' || octet_length(record) || ',' || octet_length(cells)), max(needs_js)
         FROM (
           SELECT seq, record,
             ',' || ${resultCellSql(escapeFormulas)} || ',' || ${STATUS} || ','
               || ${csvCellSql(ERROR_TEXT, escapeFormulas)} || char(10) AS cells,
             ${NEEDS_JS} AS needs_js
           FROM requests JOIN records USING (seq)
           WHERE seq > ? AND seq <= ?${filter} ORDER BY seq
         )`,
      )
      .raw();
    byKey.set(key, stmt);
  }
  return stmt as Database.Statement<[number, number], [number, Buffer | null, string, number | null]>;
}

function readPage(
  ledger: Ledger,
  range: SeqRange,
  states: readonly RequestState[] | undefined,
  escapeFormulas: boolean,
): SqlCsvPage | undefined {
  const [count, bytes, layout, fallback] = statement(connectionOf(ledger), states, escapeFormulas).get(
    range.after,
    range.last,
  )!;
  if (count === 0 || bytes === null) return undefined;
  return { count, bytes, layout, fallback: fallback ?? 0 };
}

/**
 * The CSV output of the requests in `range` (`rows: 0` when there are none), or `undefined` when the
 * page must go through the JavaScript formatter. `inputCells` formats a record that is not canonical.
 */
export function sqlCsvRange(
  ledger: Ledger,
  range: SeqRange,
  states: readonly RequestState[] | undefined,
  options: { fields: number; escapeFormulas: boolean; inputCells: (record: Buffer) => string },
): { bytes: Buffer; rows: number } | undefined {
  const page = readPage(ledger, range, states, options.escapeFormulas);
  if (page === undefined) return { bytes: Buffer.alloc(0), rows: 0 };
  if (page.fallback !== 0) return undefined;
  const rows = JSON.parse(`[${page.layout}]`) as number[];
  // The aggregates see the rows in the subquery's order, which SQLite gives as asked; should it
  // not, the JavaScript formatter (which sorts) does the page.
  for (let i = 3; i < rows.length; i += 3) if (rows[i]! <= rows[i - 3]!) return undefined;
  const { bytes } = page;
  // Records that are not canonical CSV are formatted again; most pages have none, and then the
  // blob is the output as it is.
  const parts: Buffer[] = [];
  let offset = 0;
  let copied = 0;
  for (let i = 0; i < rows.length; i += 3) {
    const record = bytes.subarray(offset, offset + rows[i + 1]!);
    if (!isCanonicalCsvRecord(record, options.fields, options.escapeFormulas)) {
      parts.push(bytes.subarray(copied, offset), Buffer.from(options.inputCells(record)));
      copied = offset + record.length;
    }
    offset += rows[i + 1]! + rows[i + 2]!;
  }
  if (parts.length === 0) return { bytes, rows: page.count };
  parts.push(bytes.subarray(copied));
  return { bytes: Buffer.concat(parts), rows: page.count };
}

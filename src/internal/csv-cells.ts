/**
 * CSV output the way csv-stringify writes it (its defaults: `,` delimiter, `"` quote doubled, `\n`
 * between records, quotes only where needed), plus a fast path that keeps a source row's bytes when
 * a csv-parse → csv-stringify round trip would give them back unchanged. The tests check both
 * against csv-parse and csv-stringify themselves.
 */
import { parse } from 'csv-parse/sync';

const COMMA = 0x2c;
const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;

/**
 * What a cell may start with for a spreadsheet to run it as a formula: csv-stringify's
 * `escape_formulas` list (`=`, `+`, `-`, `@`, tab, CR and the fullwidth `＝＋－＠`). The one list
 * every output path derives its check from: {@link startsLikeFormula} for text, the byte check of
 * the fast path below, and the SQL expression of src/ledger/csv-pages.ts. (csv-stringify leaves a `-` alone
 * in a number or bigint field; every cell here is a string, so `-` always counts.)
 */
export const FORMULA_LEADS: readonly string[] = [
  '=',
  '+',
  '-',
  '@',
  '\t',
  '\r',
  '\uFF1D',
  '\uFF0B',
  '\uFF0D',
  '\uFF20',
];
const FORMULA_LEAD_SET: ReadonlySet<string> = new Set(FORMULA_LEADS);
/** The leads as UTF-8 bytes, and which bytes begin one of them (a quick no for most cells). */
const FORMULA_LEAD_BYTES = FORMULA_LEADS.map((lead) => Buffer.from(lead, 'utf8'));
const FORMULA_FIRST_BYTE = new Uint8Array(256);
for (const lead of FORMULA_LEAD_BYTES) FORMULA_FIRST_BYTE[lead[0]!] = 1;

const NEEDS_QUOTES = /[,"\r\n]/;
/** In an unquoted field: 1 ends it (a comma), 2 is not canonical there (a quote, CR or LF). */
const UNQUOTED_CLASS = new Uint8Array(256);
UNQUOTED_CLASS[COMMA] = 1;
UNQUOTED_CLASS[QUOTE] = UNQUOTED_CLASS[LF] = UNQUOTED_CLASS[CR] = 2;

/** True when a spreadsheet may run `value` as a formula (it starts with one of {@link FORMULA_LEADS}). */
export function startsLikeFormula(value: string): boolean {
  return value.length > 0 && FORMULA_LEAD_SET.has(value[0]!);
}

/** {@link startsLikeFormula} for the UTF-8 value starting at `bytes[at]` (and ending before `end`). */
function bytesStartLikeFormula(bytes: Uint8Array, at: number, end: number): boolean {
  if (at >= end || FORMULA_FIRST_BYTE[bytes[at]!] === 0) return false;
  return FORMULA_LEAD_BYTES.some(
    (lead) => at + lead.length <= end && lead.every((b, k) => bytes[at + k] === b),
  );
}

/**
 * One cell as csv-stringify writes it. With `escapeFormulas`, a cell starting with `=`, `+`, `-`,
 * `@`, a tab or CR (or a fullwidth `＝＋－＠`) gets a leading `'`, as csv-stringify's `escape_formulas`.
 */
export function csvCell(value: string, escapeFormulas = false): string {
  let v = value;
  if (escapeFormulas && startsLikeFormula(v)) v = `'${v}`;
  if (!NEEDS_QUOTES.test(v)) return v;
  return `"${v.replaceAll('"', '""')}"`;
}

/** A record's cells joined, without the record delimiter. */
export function csvRow(values: readonly string[], escapeFormulas = false): string {
  let out = '';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    out += csvCell(values[i]!, escapeFormulas);
  }
  return out;
}

/**
 * True when `record` (one CSV record's bytes, no terminator) has exactly `fields` fields and is
 * already what csv-stringify would write for its parsed values: unquoted fields without `"`, CR or
 * LF; quoted fields non-empty and holding a `,`, `"`, CR or LF, quotes doubled. With `escapeFormulas`,
 * also no field whose value (inside the quotes, for a quoted one) starts like a formula. Then the
 * bytes can be written as they are.
 */
export function isCanonicalCsvRecord(record: Uint8Array, fields: number, escapeFormulas: boolean): boolean {
  const end = record.length;
  let i = 0;
  let count = 0;
  for (;;) {
    count++;
    if (count > fields) return false;
    // The value's first character: after the opening quote of a quoted field.
    if (escapeFormulas && bytesStartLikeFormula(record, record[i] === QUOTE ? i + 1 : i, end)) return false;
    if (i < end && record[i] === QUOTE) {
      // Quoted: csv-stringify quotes only a non-empty value holding a special character.
      i++;
      let special = false;
      const start = i;
      for (;;) {
        if (i >= end) return false;
        const b = record[i]!;
        if (b === QUOTE) {
          if (record[i + 1] === QUOTE) {
            special = true;
            i += 2;
            continue;
          }
          break;
        }
        if (special) {
          // Known to need its quotes: only the next quote matters (memchr, not a byte loop).
          i = record.indexOf(QUOTE, i);
          if (i === -1) return false;
          continue;
        }
        if (b === COMMA || b === LF || b === CR) special = true;
        i++;
      }
      if (!special || i === start) return false;
      i++; // the closing quote
      if (i < end && record[i] !== COMMA) return false;
    } else {
      for (; i < end; i++) {
        const c = UNQUOTED_CLASS[record[i]!]!;
        if (c === 1) break;
        if (c === 2) return false;
      }
    }
    if (i >= end) return count === fields;
    i++; // the comma; a record ending in one has an empty last field
  }
}

/**
 * Parses one stored CSV record (csv-parse with prepare's options) into its values; `undefined` when
 * it does not parse (a reject can be a malformed row).
 */
export function parseCsvRecord(record: Buffer | string): string[] | undefined {
  try {
    const rows = parse(record, { relax_column_count: true, skip_empty_lines: false }) as string[][];
    return rows[0] ?? [''];
  } catch {
    return undefined;
  }
}

/**
 * Parses many stored CSV records at once (they are whole records, so joined by `\n` they parse as
 * one CSV); falls back to one by one when the count does not come out right.
 */
export function parseCsvRecords(records: readonly (Buffer | string)[]): (string[] | undefined)[] {
  if (records.length === 0) return [];
  try {
    const text = records.map((r) => (typeof r === 'string' ? r : r.toString('utf8'))).join('\n');
    const rows = parse(text, { relax_column_count: true, skip_empty_lines: false }) as string[][];
    if (rows.length === records.length) return rows;
  } catch {
    // a malformed reject among them: parse each alone
  }
  return records.map(parseCsvRecord);
}

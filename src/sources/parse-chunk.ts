import { parse } from 'csv-parse/sync';
import { BatchpipeError, type ErrorCode, ErrorCodes } from '../errors.js';
import { LineCursor } from '../internal/lines.js';
import { parseJsonLossless } from '../internal/lossless-json.js';
import type { RecordProblem, SourceRecord } from '../types.js';
import type { Chunk } from './chunker.js';
import { simpleCsvValues } from './simple-csv.js';

/**
 * The records of one chunk, column-wise: record `i` starts on `lines[i]` and its source text is
 * `bytes[starts[i], ends[i])` (without its line terminator), kept byte-exact for the ledger.
 */
export interface ChunkRecords<V> {
  values: V[];
  lines: Int32Array;
  starts: Int32Array;
  ends: Int32Array;
}

/** A line the parser could not turn into a record (JSONL: invalid JSON or not an object). */
export class ParseProblem implements RecordProblem {
  constructor(
    readonly code: ErrorCode,
    readonly message: string,
  ) {}
}

const NEWLINE = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const COMMA = 0x2c;

/**
 * csv-parse's options for prepare: values as exact strings, records ended by CR, LF or CRLF outside
 * quotes (as Python's csv module reads with `newline=''`), blank lines skipped, field counts judged by
 * the caller.
 */
export const CSV_PARSE_OPTIONS = {
  record_delimiter: ['\r\n', '\n', '\r'],
  relax_column_count: true,
  skip_empty_lines: true,
};

/** Parses the header record of a CSV (the first record of the first chunk). */
export function parseCsvHeader(chunk: Chunk, file: string): { columns: string[]; bodyStart: number } {
  const rows = parse(chunk.bytes, { ...CSV_PARSE_OPTIONS, to: 1, info: true }) as unknown as {
    record: string[];
    info: { bytes: number };
  }[];
  const first = rows[0];
  if (!first) {
    throw new BatchpipeError(
      ErrorCodes.NO_RECORDS,
      'the input holds only blank lines: no header, no records',
      {
        file,
      },
    );
  }
  const columns = first.record;
  const seen = new Set<string>();
  for (const name of columns) {
    if (seen.has(name)) {
      throw new BatchpipeError(
        ErrorCodes.PARSE,
        `duplicate column name ${JSON.stringify(name)} in the header`,
        {
          file,
          line: chunk.firstLine,
          field: name,
        },
      );
    }
    seen.add(name);
  }
  // csv-parse counts the header's line break in its bytes; skip it should it ever not.
  let bodyStart = first.info.bytes;
  const last = chunk.bytes[bodyStart - 1];
  if (last !== NEWLINE && last !== CR) {
    if (chunk.bytes[bodyStart] === CR) bodyStart++;
    if (chunk.bytes[bodyStart] === NEWLINE) bodyStart++;
  }
  return { columns, bodyStart };
}

/**
 * Parses the CSV records of one record-aligned chunk (values kept as exact strings, as arrays in
 * header order): plain CSV by the fast path (simple-csv.ts), anything else by csv-parse. Lines and
 * byte ranges come from a quote-aware scan of the same bytes, cheaper than asking csv-parse for
 * per-record info. A wrong field count is the caller's to judge.
 */
export function parseCsvChunk(bytes: Buffer, firstLine: number, file: string): ChunkRecords<string[]> {
  let values = simpleCsvValues(bytes);
  try {
    values ??= parse(bytes, CSV_PARSE_OPTIONS) as string[][];
  } catch (err) {
    throw csvError(err, bytes, firstLine, file);
  }
  const bounds = csvRecordBounds(bytes, firstLine, values.length);
  if (bounds.count !== values.length) {
    // Never store a record without its text and line: the two scans must agree.
    throw new Error(
      `internal error: ${file}:${firstLine}: the parser found ${values.length} records, the record scan ${bounds.count}`,
    );
  }
  return { values, lines: bounds.lines, starts: bounds.starts, ends: bounds.ends };
}

/**
 * Start line and byte range of each record in a chunk of complete CSV records (at most `expected`):
 * a record ends at the first CR, LF or CRLF outside quotes; empty lines are skipped, as csv-parse's
 * skip_empty_lines does. `count` is how many records were found.
 */
export function csvRecordBounds(
  bytes: Buffer,
  firstLine: number,
  expected: number,
): { lines: Int32Array; starts: Int32Array; ends: Int32Array; count: number } {
  const lines = new Int32Array(expected);
  const starts = new Int32Array(expected);
  const ends = new Int32Array(expected);
  let count = 0;
  let line = firstLine;
  let pos = 0;
  let nextQuote = bytes.indexOf(QUOTE);
  let nextCR = bytes.indexOf(CR);
  while (pos < bytes.length && count < expected) {
    const b = bytes[pos];
    if (b === NEWLINE || b === CR) {
      pos += b === CR && bytes[pos + 1] === NEWLINE ? 2 : 1;
      line++;
      continue;
    }
    lines[count] = line;
    starts[count] = pos;
    let inQuotes = false;
    let end = bytes.length;
    for (;;) {
      const nl = bytes.indexOf(NEWLINE, pos);
      if (nextCR !== -1 && nextCR < pos) nextCR = bytes.indexOf(CR, pos);
      let stop = nl === -1 ? bytes.length : nl;
      if (nextCR !== -1 && nextCR < stop) stop = nextCR;
      while (nextQuote !== -1 && nextQuote < stop) {
        inQuotes = !inQuotes;
        nextQuote = bytes.indexOf(QUOTE, nextQuote + 1);
      }
      if (stop === bytes.length) {
        pos = bytes.length;
        break;
      }
      line++;
      pos = stop + (bytes[stop] === CR && bytes[stop + 1] === NEWLINE ? 2 : 1);
      if (!inQuotes) {
        end = stop;
        break;
      }
    }
    ends[count] = end;
    count++;
  }
  return { lines, starts, ends, count };
}

/** The 0-based index of the field of the CSV record starting at `start` that holds byte `at`. */
export function csvFieldIndexAt(bytes: Uint8Array, start: number, at: number): number {
  let index = 0;
  let inQuotes = false;
  for (let i = start; i < at; i++) {
    const b = bytes[i];
    if (b === QUOTE) inQuotes = !inQuotes;
    else if (b === COMMA && !inQuotes) index++;
  }
  return index;
}

/** csv-parse's error, re-pointed at the line where the offending record starts. */
function csvError(err: unknown, bytes: Buffer, firstLine: number, file: string): BatchpipeError {
  const e = err as { message?: string; code?: string; lines?: number; records?: number };
  let line = typeof e.lines === 'number' ? firstLine + e.lines - 1 : firstLine;
  if (typeof e.records === 'number') {
    // csv-parse counts the records it finished; the next one is at fault.
    const bounds = csvRecordBounds(bytes, firstLine, e.records + 1);
    line = bounds.lines[e.records] || line;
  }
  const message = (e.message ?? String(err)).replace(/ (at|on) line \d+/, '');
  return new BatchpipeError(ErrorCodes.PARSE, `invalid CSV (${e.code ?? 'parse error'}): ${message}`, {
    file,
    line,
    cause: err,
  });
}

/**
 * Parses the JSONL lines of one chunk. Blank lines are skipped; each line must be a JSON object. With
 * `known`, record `i` starts on line `known[i]` (JSON array elements); else lines are counted.
 */
export function parseJsonlChunk(
  bytes: Buffer,
  firstLine: number,
  known?: Int32Array,
): ChunkRecords<SourceRecord | ParseProblem> {
  const values: (SourceRecord | ParseProblem)[] = [];
  const lines: number[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  const cursor = new LineCursor(bytes, firstLine);
  while (cursor.advance()) {
    const text = cursor.text();
    if (text.trim() !== '') {
      lines.push(known ? known[values.length]! : cursor.line);
      values.push(parseJsonLine(text));
      starts.push(cursor.start);
      ends.push(cursor.end);
    }
  }
  return {
    values,
    lines: Int32Array.from(lines),
    starts: Int32Array.from(starts),
    ends: Int32Array.from(ends),
  };
}

function parseJsonLine(text: string): SourceRecord | ParseProblem {
  let value: unknown;
  try {
    value = parseJsonLossless(text);
  } catch (err) {
    return new ParseProblem(ErrorCodes.PARSE, `invalid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return new ParseProblem(
      ErrorCodes.PARSE,
      `expected a JSON object on this line, got ${Array.isArray(value) ? 'an array' : typeof value}`,
    );
  }
  return value as SourceRecord;
}

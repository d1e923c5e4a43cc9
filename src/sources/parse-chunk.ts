import { parse } from 'csv-parse/sync';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { SourceRecord } from '../types.js';
import type { Chunk } from './chunker.js';
import { parseJsonLossless } from './lossless-json.js';

/** A record parsed from a chunk, before it has its global `seq`. */
export interface ParsedRecord {
  line: number;
  /** CSV: the values in header order; JSONL: the object. */
  record: SourceRecord | string[];
  /** The record as compact JSON text for the ledger (CSV: the values array; JSONL: the source line). */
  recordJson: string;
}

/** A record the parser could not turn into a record (wrong field count, invalid JSON). */
export interface ParseReject {
  line: number;
  code: string;
  message: string;
  /** The offending source text, so the rejects file shows what came. */
  raw: string;
}

export type ParsedItem = ParsedRecord | ParseReject;

export function isParseReject(item: ParsedItem): item is ParseReject {
  return (item as ParseReject).code !== undefined;
}

const NEWLINE = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;

/** Parses the header record of a CSV (the first record of the first chunk). */
export function parseCsvHeader(chunk: Chunk, file: string): { columns: string[]; bodyStart: number } {
  const rows = parse(chunk.bytes, {
    to: 1,
    info: true,
    relax_column_count: true,
    skip_empty_lines: true,
  }) as unknown as {
    record: string[];
    info: { bytes: number };
  }[];
  const first = rows[0];
  if (!first) throw new BatchpipeError(ErrorCodes.PARSE, 'the CSV has no header row', { file, line: 1 });
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
  // Skip the header's own line terminator so the body starts on the next line.
  let bodyStart = first.info.bytes;
  if (chunk.bytes[bodyStart] === CR) bodyStart++;
  if (chunk.bytes[bodyStart] === NEWLINE) bodyStart++;
  return { columns, bodyStart };
}

/**
 * Parses the CSV records of one record-aligned chunk with csv-parse (values kept as exact strings,
 * as arrays in header order). Line numbers come from a quote-aware scan of the same bytes, which is
 * cheaper than asking csv-parse for per-record info.
 */
export function parseCsvChunk(
  bytes: Buffer,
  firstLine: number,
  columns: readonly string[],
  file: string,
): ParsedItem[] {
  let rows: string[][];
  try {
    rows = parse(bytes, { relax_column_count: true, skip_empty_lines: true }) as string[][];
  } catch (err) {
    throw csvError(err, firstLine, file);
  }
  const lines = recordStartLines(bytes, firstLine, rows.length);
  const out: ParsedItem[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const values = rows[i]!;
    const line = lines[i]!;
    out[i] =
      values.length === columns.length
        ? { line, record: values, recordJson: JSON.stringify(values) }
        : {
            line,
            code: ErrorCodes.PARSE,
            message: `expected ${columns.length} fields (as in the header), got ${values.length}`,
            raw: JSON.stringify(values),
          };
  }
  return out;
}

/**
 * The 1-based start line of each record in a chunk of complete CSV records: a record starts at each
 * newline outside quotes, except where the line is empty (csv-parse's skip_empty_lines).
 */
export function recordStartLines(bytes: Buffer, firstLine: number, expected: number): Int32Array {
  const starts = new Int32Array(expected);
  let count = 0;
  let line = firstLine;
  let pos = 0;
  let nextQuote = bytes.indexOf(QUOTE);
  while (pos < bytes.length && count < expected) {
    const b = bytes[pos];
    if (b === NEWLINE || (b === CR && bytes[pos + 1] === NEWLINE)) {
      // An empty line: skipped by the parser.
      pos += b === CR ? 2 : 1;
      line++;
      continue;
    }
    starts[count++] = line;
    // Walk to this record's terminating newline, skipping newlines inside quotes.
    let inQuotes = false;
    for (;;) {
      const nl = bytes.indexOf(NEWLINE, pos);
      const stop = nl === -1 ? bytes.length : nl;
      while (nextQuote !== -1 && nextQuote < stop) {
        inQuotes = !inQuotes;
        nextQuote = bytes.indexOf(QUOTE, nextQuote + 1);
      }
      if (nl === -1) {
        pos = bytes.length;
        break;
      }
      line++;
      pos = nl + 1;
      if (!inQuotes) break;
    }
  }
  return starts;
}

function csvError(err: unknown, firstLine: number, file: string): BatchpipeError {
  const e = err as { message?: string; code?: string; lines?: number };
  // csv-parse counts lines from 1 within the chunk it was given.
  const line = typeof e.lines === 'number' ? firstLine + e.lines - 1 : firstLine;
  const message = (e.message ?? String(err)).replace(/ at line \d+/, '').replace(/ on line \d+/, '');
  return new BatchpipeError(ErrorCodes.PARSE, `invalid CSV (${e.code ?? 'parse error'}): ${message}`, {
    file,
    line,
    cause: err,
  });
}

/** Parses the JSONL lines of one chunk. Blank lines are skipped; each line must be a JSON object. */
export function parseJsonlChunk(bytes: Buffer, firstLine: number): ParsedItem[] {
  const text = bytes.toString('utf8');
  const out: ParsedItem[] = [];
  let line = firstLine;
  let pos = 0;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl === -1) nl = text.length;
    let raw = text.slice(pos, nl);
    if (raw.endsWith('\r')) raw = raw.slice(0, -1);
    if (raw.trim() !== '') out.push(parseJsonLine(raw, line));
    pos = nl + 1;
    line++;
  }
  return out;
}

function parseJsonLine(raw: string, line: number): ParsedItem {
  let value: unknown;
  try {
    value = parseJsonLossless(raw);
  } catch (err) {
    return { line, code: ErrorCodes.PARSE, message: `invalid JSON: ${(err as Error).message}`, raw };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { line, code: ErrorCodes.PARSE, message: 'expected a JSON object on this line', raw };
  }
  return { line, record: value as SourceRecord, recordJson: raw.trim() };
}

import { parse } from 'csv-parse/sync';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { SourceRecord } from '../types.js';
import type { Chunk } from './chunker.js';
import { parseJsonLossless } from './lossless-json.js';

/** A record parsed from a chunk, before it has its global `seq`. */
export interface ParsedRecord {
  line: number;
  record: SourceRecord;
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
 * Parses the CSV records of one record-aligned chunk with csv-parse (values kept as exact strings).
 * Line numbers come from csv-parse's byte offsets: each record starts on the first non-blank line
 * after the previous record ends.
 */
export function parseCsvChunk(
  bytes: Buffer,
  firstLine: number,
  columns: readonly string[],
  file: string,
): ParsedItem[] {
  let rows: { record: string[]; info: { bytes: number } }[];
  try {
    rows = parse(bytes, {
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
    }) as unknown as typeof rows;
  } catch (err) {
    throw csvError(err, bytes, firstLine, file);
  }
  const out: ParsedItem[] = new Array(rows.length);
  let cursor = 0;
  let line = firstLine;
  for (let i = 0; i < rows.length; i++) {
    const { record: values, info } = rows[i]!;
    // Blank lines and the previous record's terminator sit between cursor and this record's start.
    let start = cursor;
    while (start < bytes.length && (bytes[start] === NEWLINE || bytes[start] === CR)) {
      if (bytes[start] === NEWLINE) line++;
      start++;
    }
    const startLine = line;
    const end = info.bytes;
    for (let nl = bytes.indexOf(NEWLINE, start); nl !== -1 && nl < end; nl = bytes.indexOf(NEWLINE, nl + 1))
      line++;
    cursor = end;
    if (values.length !== columns.length) {
      out[i] = {
        line: startLine,
        code: ErrorCodes.PARSE,
        message: `expected ${columns.length} fields (as in the header), got ${values.length}`,
        raw: bytes.toString('utf8', start, end),
      };
      continue;
    }
    const record: SourceRecord = {};
    for (let c = 0; c < columns.length; c++) record[columns[c]!] = values[c];
    out[i] = { line: startLine, record, recordJson: JSON.stringify(values) };
  }
  return out;
}

function csvError(err: unknown, bytes: Buffer, firstLine: number, file: string): BatchpipeError {
  const e = err as { message?: string; code?: string; lines?: number };
  // csv-parse counts lines from 1 within the chunk it was given.
  const line = typeof e.lines === 'number' ? firstLine + e.lines - 1 : firstLine;
  const message = (e.message ?? String(err)).replace(/ at line \d+/, '').replace(/ on line \d+/, '');
  void bytes;
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

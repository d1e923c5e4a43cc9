import { closeSync, openSync, writeSync } from 'node:fs';
import { ioError } from '../errors.js';
import { parseCsvRecord } from '../internal/csv-cells.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Reject } from '../types.js';

/** Rejects copied from the ledger per read (and per write to the file). */
const COPY_PAGE = 1000;

/**
 * Writes rejected records as JSONL `{ line, seq, code, message, field?, record }`, with `record` as the
 * user would want to read it: a CSV row as an object keyed by the header, a JSONL line as its object
 * (or its raw text when it was not valid JSON).
 *
 * The ledger's `rejects` table is the truth; the file is its readable copy. It starts as a copy of
 * every reject the ledger holds (those an interrupted or finished earlier run kept, in seq order), and
 * the run appends its new ones, so a resumed run never loses a line and a repeated one writes the
 * same file again.
 */
export function openRejectsFile(
  path: string,
  format: 'csv' | 'jsonl',
  columns: readonly string[],
  ledger: Ledger,
): { write: (r: Reject) => void; close: () => void } {
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (err) {
    throw ioError('write', path, err);
  }
  // A full disk or a closed descriptor names the file.
  const append = (text: string) => {
    try {
      writeSync(fd, text);
    } catch (err) {
      throw ioError('write', path, err);
    }
  };
  const lineOf = (r: Reject) =>
    `${JSON.stringify({
      line: r.line,
      seq: r.seq,
      code: r.code,
      message: r.message,
      ...(r.field ? { field: r.field } : {}),
      record: readable(r.record, format, columns),
    })}\n`;
  try {
    for (let page = ledger.rejectPage(-1, COPY_PAGE); page.length > 0; ) {
      append(page.map(lineOf).join(''));
      page = ledger.rejectPage(page[page.length - 1]!.seq, COPY_PAGE);
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return {
    write: (r) => append(lineOf(r)),
    close: () => closeSync(fd),
  };
}

function readable(raw: string, format: 'csv' | 'jsonl', columns: readonly string[]): unknown {
  if (format === 'csv') {
    const values = parseCsvRecord(raw);
    if (values === undefined) return raw;
    if (values.length !== columns.length) return values;
    return Object.fromEntries(columns.map((c, i) => [c, values[i]]));
  }
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

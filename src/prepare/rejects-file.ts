import { closeSync, openSync, writeSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import type { RejectedRecord } from '../sink/batch-writer.js';

/**
 * Writes rejected records as JSONL `{ line, seq, code, message, field?, record }`, with `record` as the
 * user would want to read it: a CSV row as an object keyed by the header, a JSONL line as its object
 * (or its raw text when it was not valid JSON).
 */
export function openRejectsFile(
  path: string,
  format: 'csv' | 'jsonl',
  columns: readonly string[],
): { write: (r: RejectedRecord) => void; close: () => void } {
  const fd = openSync(path, 'w');
  return {
    write(r) {
      const line = {
        line: r.line,
        seq: r.seq,
        code: r.code,
        message: r.message,
        ...(r.field ? { field: r.field } : {}),
        record: readable(r.record, format, columns),
      };
      writeSync(fd, `${JSON.stringify(line)}\n`);
    },
    close: () => closeSync(fd),
  };
}

function readable(raw: string, format: 'csv' | 'jsonl', columns: readonly string[]): unknown {
  try {
    if (format === 'jsonl') return JSON.parse(raw);
    const values = (parse(raw, { relax_column_count: true }) as string[][])[0] ?? [];
    if (values.length !== columns.length) return values;
    return Object.fromEntries(columns.map((c, i) => [c, values[i]]));
  } catch {
    return raw;
  }
}

/**
 * A fast path in front of csv-parse for chunks of plain, well-formed CSV: LF line ends, fields either
 * unquoted (no `"` in them) or quoted with `""` for a quote. Such a chunk is split here into exactly
 * the values csv-parse gives with prepare's options (`relax_column_count`, `skip_empty_lines`, the
 * rest default); anything else (a CR anywhere, a quote inside an unquoted field, text after a
 * closing quote, an unterminated quote) returns `undefined` and csv-parse reads the chunk, so its
 * values and its errors stay the reference.
 *
 * Why: csv-parse took ~6 of prepare's ~14 CPU seconds on 1,000,000 rows (306 MB); this takes about
 * a fifth of that. test/sources-simple-csv.test.ts checks it against csv-parse itself, on the
 * shared data, the bench's messy data and random CSV.
 */

const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const COMMA = 0x2c;

/** The chunk's records as csv-parse would give them, or `undefined` to let csv-parse read it. */
export function simpleCsvValues(bytes: Buffer): string[][] | undefined {
  if (bytes.indexOf(CR) !== -1) return undefined;
  const end = bytes.length;
  const records: string[][] = [];
  let pos = 0;
  while (pos < end) {
    if (bytes[pos] === LF) {
      pos++; // an empty line: skip_empty_lines
      continue;
    }
    const fields: string[] = [];
    for (;;) {
      // Each field is decoded on its own: slices of one chunk-wide string would keep whole chunks
      // alive as long as any of their values (+15 MB peak, measured).
      if (bytes[pos] === QUOTE) {
        const closing = closingQuote(bytes, pos + 1);
        if (closing === -1) return undefined;
        const raw = bytes.toString('utf8', pos + 1, closing);
        fields.push(raw.includes('""') ? raw.replaceAll('""', '"') : raw);
        pos = closing + 1;
        const next = bytes[pos];
        if (pos < end && next !== COMMA && next !== LF) return undefined;
      } else {
        let p = pos;
        let c = 0;
        for (; p < end; p++) {
          c = bytes[p]!;
          if (c === COMMA || c === LF || c === QUOTE) break;
        }
        if (p < end && c === QUOTE) return undefined;
        fields.push(bytes.toString('utf8', pos, p));
        pos = p;
      }
      if (pos >= end) break;
      // A comma: another field follows (empty if the record or chunk ends here). A newline: the end.
      if (bytes[pos++] === LF) break;
    }
    records.push(fields);
  }
  return records;
}

/** The index of the quote closing a quoted field whose text starts at `from` (`""` is a quote in it). */
function closingQuote(bytes: Buffer, from: number): number {
  for (let p = from; ; ) {
    const q = bytes.indexOf(QUOTE, p);
    if (q === -1 || bytes[q + 1] !== QUOTE) return q;
    p = q + 2;
  }
}

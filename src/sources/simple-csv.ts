/**
 * A fast path in front of csv-parse for chunks of plain, well-formed CSV: LF or CRLF line ends, fields
 * either unquoted (no `"`, CR or LF in them) or quoted with `""` for a quote. Such a chunk is split
 * here into exactly the values csv-parse gives with prepare's options (CSV_PARSE_OPTIONS); anything
 * else (a bare CR outside quotes, a quote inside an unquoted field, text after a closing quote, an
 * unterminated quote) returns `undefined` and csv-parse reads the chunk, so its values and its errors
 * stay the reference.
 *
 * Why: csv-parse took ~6 of prepare's ~14 CPU seconds on 1,000,000 rows (306 MB); this takes about
 * a fifth of that. test/sources-simple-csv.test.ts checks it against csv-parse itself, on the
 * shared data, the bench's messy data and random CSV.
 */

const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const COMMA = 0x2c;
/** Bytes that end an unquoted field's scan: 1 for a comma, LF, CR or quote. */
const FIELD_STOP = new Uint8Array(256);
FIELD_STOP[COMMA] = FIELD_STOP[LF] = FIELD_STOP[CR] = FIELD_STOP[QUOTE] = 1;

/** The chunk's records as csv-parse would give them, or `undefined` to let csv-parse read it. */
export function simpleCsvValues(bytes: Buffer): string[][] | undefined {
  const end = bytes.length;
  const records: string[][] = [];
  // Fields are gathered in one scratch array and each record kept as a copy of it (slice). A fresh
  // literal per record would carry V8's allocation mementos, and since every record of a chunk lives
  // until the chunk is encoded, V8 would soon allocate them straight in the old generation
  // (pretenuring), where only full mark-compacts free them.
  const fields: string[] = [];
  let pos = 0;
  while (pos < end) {
    const first = bytes[pos];
    if (first === LF || (first === CR && bytes[pos + 1] === LF)) {
      pos += first === LF ? 1 : 2; // an empty line: skip_empty_lines
      continue;
    }
    fields.length = 0;
    for (;;) {
      // Each field is decoded on its own: slices of one chunk-wide string would keep whole chunks
      // alive as long as any of their values (+15 MB peak, measured).
      if (bytes[pos] === QUOTE) {
        const closing = closingQuote(bytes, pos + 1);
        if (closing === -1) return undefined;
        const raw = bytes.toString('utf8', pos + 1, closing);
        fields.push(raw.includes('""') ? raw.replaceAll('""', '"') : raw);
        pos = closing + 1;
        if (pos < end && FIELD_STOP[bytes[pos]!] === 0) return undefined; // text after the quote
      } else {
        let p = pos;
        while (p < end && FIELD_STOP[bytes[p]!] === 0) p++;
        if (p < end && bytes[p] === QUOTE) return undefined;
        fields.push(bytes.toString('utf8', pos, p));
        pos = p;
      }
      if (pos >= end) break;
      // A comma: another field follows (empty if the record or chunk ends here). A line end: the end.
      const stop = bytes[pos++];
      if (stop === COMMA) continue;
      if (stop === QUOTE) return undefined;
      if (stop === CR) {
        if (bytes[pos] !== LF) return undefined; // a bare CR ends records only in csv-parse's hands
        pos++;
      }
      break;
    }
    records.push(fields.slice());
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

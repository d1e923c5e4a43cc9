/**
 * Splits a byte stream into chunks that end on record boundaries, so each chunk can be parsed on its
 * own (in this thread or in a worker). Owns where records end and which line each chunk starts on;
 * touches nothing but the bytes it is given.
 *
 * CSV records end as Python's csv module (reading with `newline=''`) and csv-parse with
 * `record_delimiter: ['\r\n', '\n', '\r']` end them: outside quotes, `\r\n`, `\r` and `\n` each end a
 * record; inside quotes they are data. With RFC 4180 quoting (`""` escapes a quote), "outside quotes"
 * is exactly where the count of `"` bytes since the chunk start is even. A chunk is never cut between
 * a `\r` and its `\n`. JSONL ("lines") ends a record at `\n` only: JSON strings cannot hold a raw
 * line break, and a `\r` outside strings is JSON whitespace.
 *
 * Line numbers count `\r\n`, `\r` and `\n` each as one line break in CSV, `\n` in JSONL.
 */
export interface Chunk {
  /** 0-based chunk number, in input order. */
  index: number;
  /** Complete records (plus any blank lines); the last chunk may lack a final line break. */
  bytes: Buffer;
  /** 1-based line number of the first byte of `bytes`. */
  firstLine: number;
  /** Line breaks in `bytes` (or, for an oversize record, in the whole record): the next chunk starts at `firstLine + lineBreaks`. */
  lineBreaks: number;
  /** Byte offset of `bytes[0]` in the input stream (plus the chunker's `startOffset`). */
  offset: number;
  /**
   * Set when the chunk is one record larger than `maxRecordBytes`, set aside unread: `bytes` hold only
   * its first bytes, so that memory stays bounded however large the record.
   */
  oversize?: OversizeRecord | undefined;
}

/** A record too large to read, as far as the chunker followed it. */
export interface OversizeRecord {
  /** Bytes of the record (without its line break), or as many as were seen before the input stopped. */
  bytes: number;
  /** False when the chunker stopped at this record (`onOversize: 'stop'`) without finding its end. */
  complete: boolean;
}

export type RecordSyntax = 'csv' | 'lines';

export interface ChunkerOptions {
  /** `csv`: honour quotes; CR, LF and CRLF end records. `lines`: LF ends a record. */
  syntax: RecordSyntax;
  /** A chunk is cut at the first boundary at or after this many bytes. */
  targetBytes?: number | undefined;
  /** Offset of the stream's first byte in the input (a stripped BOM), for `Chunk.offset`. */
  startOffset?: number | undefined;
  /** A record longer than this is not accumulated: it becomes an `oversize` chunk. */
  maxRecordBytes?: number | undefined;
  /** At an oversize record: `skip` it (read on to its end, keeping nothing) or `stop` the input there. */
  onOversize?: 'skip' | 'stop' | undefined;
}

/** How many bytes of an oversize record its chunk keeps (cut back to a whole UTF-8 character). */
export const OVERSIZE_PREFIX_BYTES = 1024;

const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;

/** Counts the line breaks in `buf[from, to)`: `\n`, plus (CSV) each `\r` not followed by `\n`. */
export function countLineBreaks(buf: Buffer, syntax: RecordSyntax, from = 0, to = buf.length): number {
  let n = 0;
  for (let i = buf.indexOf(LF, from); i !== -1 && i < to; i = buf.indexOf(LF, i + 1)) n++;
  if (syntax === 'csv') {
    for (let i = buf.indexOf(CR, from); i !== -1 && i < to; i = buf.indexOf(CR, i + 1)) {
      if (i + 1 >= to || buf[i + 1] !== LF) n++;
    }
  }
  return n;
}

/**
 * Finds record ends in one piece of input after another, carrying across pieces whether the position
 * is inside quotes and whether the last piece ended on a `\r` outside quotes (its record ends there,
 * or after a `\n` that starts the next piece). The next quote and CR are cached per piece, so input
 * without them is not searched once per record.
 */
class BoundaryScanner {
  private inQuotes = false;
  private endedOnCR = false;
  private piece: Buffer = Buffer.alloc(0);
  private pos = 0;
  private nextQuote = -1;
  private nextCR = -1;
  /** Bytes of the line break that ended the record `next()` last returned (1 or 2). */
  terminator = 0;

  constructor(private readonly csv: boolean) {}

  /**
   * Starts on a new piece. Returns the record end that a `\r` ending the previous piece makes in this
   * one (0 or 1), or -1.
   */
  start(piece: Buffer): number {
    this.piece = piece;
    this.pos = 0;
    this.nextQuote = this.csv ? piece.indexOf(QUOTE) : -1;
    this.nextCR = this.csv ? piece.indexOf(CR) : -1;
    if (!this.endedOnCR) return -1;
    this.endedOnCR = false;
    if (piece[0] === LF) {
      this.pos = 1;
      this.terminator = 2;
      return 1;
    }
    this.terminator = 1;
    return 0;
  }

  /** Offset just past the next record end in the piece, or -1 when the piece ends inside a record. */
  next(): number {
    const piece = this.piece;
    for (;;) {
      const lf = piece.indexOf(LF, this.pos);
      let stop = lf === -1 ? piece.length : lf;
      if (this.csv) {
        if (this.nextCR !== -1 && this.nextCR < this.pos) this.nextCR = piece.indexOf(CR, this.pos);
        if (this.nextCR !== -1 && this.nextCR < stop) stop = this.nextCR;
        while (this.nextQuote !== -1 && this.nextQuote < stop) {
          this.inQuotes = !this.inQuotes;
          this.nextQuote = piece.indexOf(QUOTE, this.nextQuote + 1);
        }
      }
      if (stop === piece.length) {
        this.pos = stop;
        return -1;
      }
      this.pos = stop + 1;
      if (this.inQuotes) continue;
      if (piece[stop] === LF) {
        this.terminator = 1;
        return this.pos;
      }
      // A CR outside quotes ends the record; a LF right after it belongs to the same line break.
      if (stop + 1 === piece.length) {
        this.endedOnCR = true;
        return -1;
      }
      if (piece[stop + 1] === LF) {
        this.pos++;
        this.terminator = 2;
      } else this.terminator = 1;
      return this.pos;
    }
  }

  /** True when the input ended on a `\r` outside quotes: the bytes read so far end a record. */
  get pendingCR(): boolean {
    return this.endedOnCR;
  }
}

/** Counts line breaks over consecutive byte ranges, a `\r\n` split between two ranges counted once. */
class LineBreakCounter {
  count = 0;
  private lastWasCR = false;

  constructor(private readonly syntax: RecordSyntax) {}

  add(buf: Buffer, from: number, to: number): void {
    if (from >= to) return;
    this.count += countLineBreaks(buf, this.syntax, from, to);
    if (this.syntax === 'csv') {
      if (this.lastWasCR && buf[from] === LF) this.count--;
      this.lastWasCR = buf[to - 1] === CR;
    }
  }
}

/** The bytes waiting to become a chunk, as the pieces they arrived in (concatenated once, at a cut). */
class PendingBytes {
  pieces: Buffer[] = [];
  length = 0;

  push(piece: Buffer): void {
    this.pieces.push(piece);
    this.length += piece.length;
  }

  /** Removes and returns the first `n` bytes. */
  take(n: number): Buffer {
    const first = this.pieces[0];
    let out: Buffer;
    if (first !== undefined && first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.pieces.shift();
      else this.pieces[0] = first.subarray(n);
    } else {
      const parts: Buffer[] = [];
      let left = n;
      while (left > 0) {
        const piece = this.pieces[0]!;
        if (piece.length <= left) {
          parts.push(piece);
          this.pieces.shift();
          left -= piece.length;
        } else {
          parts.push(piece.subarray(0, left));
          this.pieces[0] = piece.subarray(left);
          left = 0;
        }
      }
      out = Buffer.concat(parts, n);
    }
    this.length -= n;
    return out;
  }

  /** A copy of up to the first `n` bytes, leaving them in place. */
  peek(n: number): Buffer {
    return Buffer.concat(this.pieces, Math.min(n, this.length));
  }

  clear(): void {
    this.pieces = [];
    this.length = 0;
  }
}

/**
 * Turns an async iterable of byte chunks into record-aligned chunks. Memory is bounded by
 * `targetBytes` plus the largest record, and with `maxRecordBytes` by `targetBytes + maxRecordBytes`.
 */
export async function* recordChunks(
  input: AsyncIterable<Buffer | string>,
  options: ChunkerOptions,
): AsyncGenerator<Chunk> {
  const { syntax } = options;
  const target = options.targetBytes ?? 1 << 20;
  const maxRecord = options.maxRecordBytes ?? Number.POSITIVE_INFINITY;
  const scanner = new BoundaryScanner(syntax === 'csv');
  const pending = new PendingBytes();
  /** Input offset of the first pending byte, and of the first byte after the last record end seen. */
  let pendingStart = options.startOffset ?? 0;
  let recordStart = pendingStart;
  let index = 0;
  let line = 1;
  /** While an oversize record is being skipped: its line breaks, size and first bytes. */
  let skipping: { lines: LineBreakCounter; prefix: Buffer; line: number; start: number } | undefined;

  const emit = (bytes: Buffer): Chunk => {
    const lineBreaks = countLineBreaks(bytes, syntax);
    const chunk: Chunk = { index: index++, bytes, firstLine: line, lineBreaks, offset: pendingStart };
    line += lineBreaks;
    pendingStart += bytes.length;
    return chunk;
  };
  const oversize = (skipped: NonNullable<typeof skipping>, bytes: number, complete: boolean): Chunk => {
    const chunk: Chunk = {
      index: index++,
      bytes: skipped.prefix,
      firstLine: skipped.line,
      lineBreaks: skipped.lines.count,
      offset: skipped.start,
      oversize: { bytes, complete },
    };
    line = skipped.line + skipped.lines.count;
    return chunk;
  };

  let pieceStart = pendingStart;
  for await (const raw of input) {
    const piece = typeof raw === 'string' ? Buffer.from(raw) : raw;
    if (piece.length === 0) continue;
    const pieceEnd = pieceStart + piece.length;
    const from = 0; // where the part of the piece being skipped starts
    if (!skipping) pending.push(piece);
    const seam = scanner.start(piece); // a record end that a CR ending the last piece makes here
    for (let end = seam === -1 ? scanner.next() : seam; end !== -1; end = scanner.next()) {
      const at = pieceStart + end;
      if (skipping) {
        skipping.lines.add(piece, from, end);
        yield oversize(skipping, at - scanner.terminator - skipping.start, true);
        skipping = undefined;
        pendingStart = recordStart = at;
        pending.push(piece.subarray(end));
        continue;
      }
      recordStart = at;
      if (at - pendingStart >= target) yield emit(pending.take(at - pendingStart));
    }
    if (skipping) skipping.lines.add(piece, from, piece.length);
    else if (pieceEnd - recordStart - (scanner.pendingCR ? 1 : 0) > maxRecord) {
      // Too large to keep: the records before it go out as a chunk; the rest of it is only followed.
      if (recordStart > pendingStart) yield emit(pending.take(recordStart - pendingStart));
      const lines = new LineBreakCounter(syntax);
      for (const p of pending.pieces) lines.add(p, 0, p.length);
      skipping = {
        lines,
        prefix: wholeCharacters(pending.peek(OVERSIZE_PREFIX_BYTES)),
        line,
        start: recordStart,
      };
      pending.clear();
      if (options.onOversize === 'stop') {
        yield oversize(skipping, pieceEnd - recordStart, false);
        return;
      }
    }
    pieceStart = pieceEnd;
  }
  if (skipping) yield oversize(skipping, pieceStart - (scanner.pendingCR ? 1 : 0) - skipping.start, true);
  else if (pending.length > 0) yield emit(pending.take(pending.length));
}

/** `buf` without an incomplete UTF-8 character at its end. */
function wholeCharacters(buf: Buffer): Buffer {
  let lead = buf.length - 1;
  while (lead >= 0 && buf.length - lead < 4 && (buf[lead]! & 0xc0) === 0x80) lead--;
  if (lead < 0 || buf[lead]! < 0xc0) return buf;
  const need = buf[lead]! >= 0xf0 ? 4 : buf[lead]! >= 0xe0 ? 3 : 2;
  return buf.length - lead < need ? buf.subarray(0, lead) : buf;
}

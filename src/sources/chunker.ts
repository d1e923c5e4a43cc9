import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import type { ChunkReject } from '../types.js';
import { wholeCharactersEnd } from './utf8.js';

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
  /** Records whose start lines are not consecutive (JSON array elements): the line of each. */
  lines?: Int32Array | undefined;
  /** Records the reader already knows are bad, by index in the chunk. */
  rejects?: ChunkReject[] | undefined;
}

/** A record too large to read, as far as the chunker followed it. */
export interface OversizeRecord {
  /** Bytes of the record (without its line break), or as many as were seen before the input stopped. */
  bytes: number;
  /** False when the chunker stopped at this record (`onOversize: 'stop'`) without finding its end. */
  complete: boolean;
  /** The `maxRecordBytes` it is over. */
  limit: number;
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
  /** Where a large record may wait while it grows (asked when first needed); default: in memory. */
  spillPath?: (() => string) | undefined;
  /** A record waits in the spill file once it is this large (default 16 MB). */
  spillAfterBytes?: number | undefined;
}

/**
 * A record still growing past this many bytes waits in a spill file (with `spillPath`), not in memory:
 * records this large are rare, and one larger than `maxRecordBytes` is never held whole.
 */
const SPILL_AFTER_BYTES = 16 << 20;

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
 * or after a `\n` that starts the next piece). The next LF, CR and quote are cached per piece, so
 * input without them is not searched once per record, and inside quotes the scan goes straight to
 * the closing quote.
 */
class BoundaryScanner {
  private inQuotes = false;
  private endedOnCR = false;
  private piece: Buffer = Buffer.alloc(0);
  private pos = 0;
  private nextLF = -1;
  private nextCR = -1;
  private nextQuote = -1;
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
    this.nextLF = piece.indexOf(LF);
    this.nextCR = this.csv ? piece.indexOf(CR) : -1;
    this.nextQuote = this.csv ? piece.indexOf(QUOTE) : -1;
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
    const end = piece.length;
    for (;;) {
      if (this.nextQuote !== -1 && this.nextQuote < this.pos) this.nextQuote = piece.indexOf(QUOTE, this.pos);
      if (this.inQuotes) {
        // Line breaks inside quotes are data: on to the closing quote (`""` reopens at once).
        if (this.nextQuote === -1) {
          this.pos = end;
          return -1;
        }
        this.pos = this.nextQuote + 1;
        this.inQuotes = false;
        continue;
      }
      if (this.nextLF !== -1 && this.nextLF < this.pos) this.nextLF = piece.indexOf(LF, this.pos);
      let stop = this.nextLF === -1 ? end : this.nextLF;
      if (this.nextCR !== -1 && this.nextCR < this.pos) this.nextCR = piece.indexOf(CR, this.pos);
      if (this.nextCR !== -1 && this.nextCR < stop) stop = this.nextCR;
      if (this.nextQuote !== -1 && this.nextQuote < stop) {
        this.inQuotes = true;
        this.pos = this.nextQuote + 1;
        continue;
      }
      if (stop === end) {
        this.pos = end;
        return -1;
      }
      this.pos = stop + 1;
      if (piece[stop] === LF) {
        this.terminator = 1;
        return this.pos;
      }
      // A CR outside quotes ends the record; a LF right after it belongs to the same line break.
      if (stop + 1 === end) {
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

/**
 * The bytes waiting to become a chunk, as the pieces they arrived in (concatenated once, at a cut).
 * The start of one large record can wait in a file instead (`spill`), so that memory stays flat
 * until the record turns out to fit `maxRecordBytes` (then it is read back) or not (then it is dropped).
 */
class PendingBytes {
  pieces: Buffer[] = [];
  length = 0;
  /** A file holding the first `bytes` pending bytes, and their line breaks. */
  private spilled: { path: string; fd: number; bytes: number; lines: LineBreakCounter } | undefined;

  push(piece: Buffer): void {
    this.pieces.push(piece);
    this.length += piece.length;
  }

  /** Moves the pieces in memory to the end of the spill file (created at `path` the first time). */
  spill(path: string, syntax: RecordSyntax): void {
    this.spilled ??= { path, fd: openSync(path, 'w+'), bytes: 0, lines: new LineBreakCounter(syntax) };
    for (const piece of this.pieces) {
      writeSync(this.spilled.fd, piece);
      this.spilled.bytes += piece.length;
      this.spilled.lines.add(piece, 0, piece.length);
    }
    this.pieces = [];
  }

  /** Line breaks in all pending bytes, spilled or not. */
  countLines(syntax: RecordSyntax): LineBreakCounter {
    const lines = this.spilled?.lines ?? new LineBreakCounter(syntax);
    for (const piece of this.pieces) lines.add(piece, 0, piece.length);
    return lines;
  }

  /** Removes and returns the first `n` bytes (all the spilled ones among them). */
  take(n: number): Buffer {
    let out: Buffer;
    const first = this.pieces[0];
    if (this.spilled) {
      out = Buffer.allocUnsafe(n);
      let filled = this.readSpilled(out, this.spilled.bytes);
      this.dispose();
      while (filled < n) {
        const piece = this.pieces[0]!;
        const used = Math.min(piece.length, n - filled);
        piece.copy(out, filled, 0, used);
        filled += used;
        if (used === piece.length) this.pieces.shift();
        else this.pieces[0] = piece.subarray(used);
      }
    } else if (first !== undefined && first.length >= n) {
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
    const want = Math.min(n, this.length);
    if (!this.spilled) return Buffer.concat(this.pieces, want);
    const out = Buffer.allocUnsafe(want);
    const filled = this.readSpilled(out, Math.min(want, this.spilled.bytes));
    return Buffer.concat([out.subarray(0, filled), ...this.pieces], want);
  }

  clear(): void {
    this.dispose();
    this.pieces = [];
    this.length = 0;
  }

  /** Closes and removes the spill file, if any. */
  dispose(): void {
    if (!this.spilled) return;
    closeSync(this.spilled.fd);
    rmSync(this.spilled.path, { force: true });
    this.spilled = undefined;
  }

  private readSpilled(into: Buffer, bytes: number): number {
    let filled = 0;
    while (filled < bytes) {
      const read = readSync(this.spilled!.fd, into, filled, bytes - filled, filled);
      if (read === 0) throw new Error(`internal error: spill file ${this.spilled!.path} is short`);
      filled += read;
    }
    return filled;
  }
}

/**
 * Turns an async iterable of byte chunks into record-aligned chunks. Memory is bounded by
 * `targetBytes` plus the largest record; with `maxRecordBytes` by `targetBytes + maxRecordBytes`, and
 * with `spillPath` too by `targetBytes + spillAfterBytes` until a record is whole.
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
  const spillAfter = options.spillAfterBytes ?? SPILL_AFTER_BYTES;
  let spillFile: string | undefined;
  /** While an oversize record is being skipped: its line breaks, size and first bytes. */
  let skipping: { lines: LineBreakCounter; prefix: Buffer; line: number; start: number } | undefined;

  const emit = (bytes: Buffer): Chunk => {
    const lineBreaks = countLineBreaks(bytes, syntax);
    const chunk: Chunk = { index: index++, bytes, firstLine: line, lineBreaks, offset: pendingStart };
    line += lineBreaks;
    pendingStart += bytes.length;
    return chunk;
  };
  /** The first bytes of an oversize record (whole characters), which its chunk keeps. */
  const firstBytes = (record: Buffer): Buffer =>
    record.subarray(0, wholeCharactersEnd(record, Math.min(record.length, OVERSIZE_PREFIX_BYTES)));
  const oversize = (skipped: NonNullable<typeof skipping>, bytes: number, complete: boolean): Chunk => {
    const chunk: Chunk = {
      index: index++,
      bytes: skipped.prefix,
      firstLine: skipped.line,
      lineBreaks: skipped.lines.count,
      offset: skipped.start,
      oversize: { bytes, complete, limit: maxRecord },
    };
    line = skipped.line + skipped.lines.count;
    return chunk;
  };
  /** A record too large but whole in memory (its line break included) goes out alone, as its first bytes. */
  const heldOversize = (record: Buffer, bytes: number): Chunk => {
    const lines = new LineBreakCounter(syntax);
    lines.add(record, 0, record.length);
    return oversize({ lines, prefix: firstBytes(record), line, start: recordStart }, bytes, true);
  };

  let pieceStart = pendingStart;
  try {
    for await (const raw of input) {
      const piece = typeof raw === 'string' ? Buffer.from(raw) : raw;
      if (piece.length === 0) continue;
      const pieceEnd = pieceStart + piece.length;
      if (!skipping) pending.push(piece);
      const seam = scanner.start(piece); // a record end that a CR ending the last piece makes here
      for (let end = seam === -1 ? scanner.next() : seam; end !== -1; end = scanner.next()) {
        const at = pieceStart + end;
        if (skipping) {
          skipping.lines.add(piece, 0, end);
          yield oversize(skipping, at - scanner.terminator - skipping.start, true);
          skipping = undefined;
          pendingStart = recordStart = at;
          pending.push(piece.subarray(end));
          continue;
        }
        if (at - scanner.terminator - recordStart > maxRecord) {
          if (recordStart > pendingStart) yield emit(pending.take(recordStart - pendingStart));
          const record = pending.take(at - recordStart);
          yield heldOversize(record, record.length - scanner.terminator);
          pendingStart = recordStart = at;
          if (options.onOversize === 'stop') return;
          continue;
        }
        recordStart = at;
        if (at - pendingStart >= target) yield emit(pending.take(at - pendingStart));
      }
      pieceStart = pieceEnd;
      if (skipping) {
        skipping.lines.add(piece, 0, piece.length);
        continue;
      }
      const recordBytes = pieceEnd - recordStart - (scanner.pendingCR ? 1 : 0);
      if (recordBytes <= maxRecord && (recordBytes <= spillAfter || !options.spillPath)) continue;
      // A large record: the records before it go out as a chunk; it waits alone.
      if (recordStart > pendingStart) yield emit(pending.take(recordStart - pendingStart));
      if (recordBytes <= maxRecord) {
        spillFile ??= options.spillPath!();
        pending.spill(spillFile, syntax);
        continue;
      }
      // Too large to keep: only its first bytes are, and the rest of it is only followed.
      skipping = {
        lines: pending.countLines(syntax),
        prefix: firstBytes(pending.peek(OVERSIZE_PREFIX_BYTES)),
        line,
        start: recordStart,
      };
      pending.clear();
      if (options.onOversize === 'stop') {
        yield oversize(skipping, recordBytes, false);
        return;
      }
    }
    if (skipping) yield oversize(skipping, pieceStart - (scanner.pendingCR ? 1 : 0) - skipping.start, true);
    else if (pending.length > 0) {
      const last = pieceStart - recordStart - (scanner.pendingCR ? 1 : 0);
      if (last > maxRecord) {
        if (recordStart > pendingStart) yield emit(pending.take(recordStart - pendingStart));
        yield heldOversize(pending.take(pending.length), last);
      } else yield emit(pending.take(pending.length));
    }
  } finally {
    pending.dispose();
  }
}

/**
 * Splits a byte stream into chunks that end on record boundaries, so each chunk can be parsed on its
 * own (in this thread or in a worker). For CSV a newline ends a record only outside quotes: with
 * RFC 4180 quoting (`""` escapes a quote) that is exactly where the count of `"` bytes since the
 * chunk start is even. JSONL strings cannot hold a raw newline, so every newline is a boundary.
 */
export interface Chunk {
  /** 0-based chunk number, in input order. */
  index: number;
  /** Complete records (plus any blank lines); the last chunk may lack a final newline. */
  bytes: Buffer;
  /** 1-based line number of the first byte of `bytes`. */
  firstLine: number;
  /** Newlines in `bytes`: the next chunk starts at `firstLine + newlines`. */
  newlines: number;
}

export interface ChunkerOptions {
  /** Honour CSV quoting when looking for boundaries. */
  quoted: boolean;
  /** A chunk is cut at the first boundary at or after this many bytes. */
  targetBytes?: number;
}

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Counts `\n` bytes in `buf[from, to)`. */
export function countNewlines(buf: Buffer, from = 0, to = buf.length): number {
  let n = 0;
  for (let i = buf.indexOf(NEWLINE, from); i !== -1 && i < to; i = buf.indexOf(NEWLINE, i + 1)) n++;
  return n;
}

/**
 * Walks a growing buffer once, tracking whether the position is inside quotes, and reports the first
 * newline outside quotes at or after `minCut`. State survives between calls, so a huge record is
 * never rescanned; `nextQuote` is cached so a quote-free input is not searched once per line.
 */
class BoundaryScanner {
  private pos = 0;
  private inQuotes = false;
  private nextQuote = -2; // -2: not searched yet, -1: none in the buffer

  constructor(private readonly quoted: boolean) {}

  /** Offset just past the boundary newline, or -1 when `buf` has none at or after `minCut` yet. */
  next(buf: Buffer, minCut: number): number {
    for (;;) {
      const nl = buf.indexOf(NEWLINE, this.pos);
      const stop = nl === -1 ? buf.length : nl;
      if (this.quoted) this.toggleQuotesBefore(buf, stop);
      if (nl === -1) {
        this.pos = buf.length;
        this.nextQuote = -2; // the buffer will grow: search again next time
        return -1;
      }
      this.pos = nl + 1;
      if (!this.inQuotes && this.pos >= minCut) return this.pos;
    }
  }

  /** Restart at the beginning of the remainder after a cut (a cut is always outside quotes). */
  rebase(cut: number): void {
    this.pos -= cut;
    if (this.nextQuote >= 0) this.nextQuote -= cut;
  }

  private toggleQuotesBefore(buf: Buffer, stop: number): void {
    for (;;) {
      if (this.nextQuote === -2 || (this.nextQuote >= 0 && this.nextQuote < this.pos)) {
        this.nextQuote = buf.indexOf(QUOTE, this.pos);
      }
      if (this.nextQuote === -1 || this.nextQuote >= stop) return;
      this.inQuotes = !this.inQuotes;
      this.pos = this.nextQuote + 1;
      this.nextQuote = buf.indexOf(QUOTE, this.pos);
    }
  }
}

/**
 * Turns an async iterable of byte chunks into record-aligned chunks. Strips a leading UTF-8 BOM.
 * Memory is bounded by `targetBytes` plus the largest single record.
 */
export async function* recordChunks(
  input: AsyncIterable<Buffer | string>,
  options: ChunkerOptions,
): AsyncGenerator<Chunk> {
  const target = options.targetBytes ?? 1 << 20;
  const scanner = new BoundaryScanner(options.quoted);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let index = 0;
  let line = 1;
  let first = true;

  const emit = (bytes: Buffer): Chunk => {
    const newlines = countNewlines(bytes);
    const chunk: Chunk = { index: index++, bytes, firstLine: line, newlines };
    line += newlines;
    return chunk;
  };

  for await (const piece of input) {
    let buf = typeof piece === 'string' ? Buffer.from(piece) : piece;
    if (first) {
      first = false;
      if (buf.subarray(0, 3).equals(BOM)) buf = buf.subarray(3);
    }
    pending.push(buf);
    pendingBytes += buf.length;
    if (pendingBytes < target) continue;
    let joined = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    for (let cut = scanner.next(joined, target); cut !== -1; cut = scanner.next(joined, target)) {
      yield emit(joined.subarray(0, cut));
      joined = joined.subarray(cut);
      scanner.rebase(cut);
    }
    pending = joined.length > 0 ? [joined] : [];
    pendingBytes = joined.length;
  }
  if (pendingBytes > 0) yield emit(pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes));
}

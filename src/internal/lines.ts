/**
 * The one line splitter for line-oriented input (JSONL requests, output files, the local server's
 * files): `\n` ends a line, a `\r` just before it (or at the end of a last line without one) is not
 * part of the line, and a last line without `\n` is still a line. Owns where lines end, how they are
 * numbered and what is kept between reads; touches nothing but the bytes it is given.
 *
 * Three layers, each over the one below: {@link LineCursor} walks the lines of a buffer of whole
 * lines; {@link LineChunker} cuts a byte stream into such buffers, keeping only the unfinished line
 * between reads (optionally capped); {@link LineSplitter} hands out one line at a time. CSV records,
 * which end at a bare `\r` too and may hold line breaks in quotes, are the chunker's of src/sources.
 */
import { asBuffer } from './bytes.js';

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

/**
 * Walks the lines of `bytes` (whole lines; the last may lack its `\n`). After each `advance()` that
 * returns true, the line's content is `bytes[start, end)`.
 *
 * @example
 * const lines = new LineCursor(chunk.bytes, chunk.firstLine);
 * while (lines.advance()) console.log(lines.line, lines.text());
 */
export class LineCursor {
  /** The current line's content, without its terminator: `bytes[start, end)`. */
  start = 0;
  end = 0;
  /** Where the next line starts (just past the current line's `\n`). */
  next: number;
  /** The current line's 1-based number. */
  line: number;

  /** `from`: where the first line starts (past a byte order mark, say). */
  constructor(
    readonly bytes: Buffer,
    firstLine = 1,
    from = 0,
  ) {
    this.next = from;
    this.line = firstLine - 1;
  }

  /** Moves to the next line; false when there is none. */
  advance(): boolean {
    const bytes = this.bytes;
    const start = this.next;
    if (start >= bytes.length) return false;
    const lf = bytes.indexOf(LF, start);
    const stop = lf === -1 ? bytes.length : lf;
    this.start = start;
    this.end = stop > start && bytes[stop - 1] === CR ? stop - 1 : stop;
    this.next = lf === -1 ? bytes.length : lf + 1;
    this.line++;
    return true;
  }

  /** The current line's content as UTF-8 text. */
  text(): string {
    return this.bytes.toString('utf8', this.start, this.end);
  }

  /** False only for a last line without `\n`. */
  get terminated(): boolean {
    return this.bytes[this.next - 1] === LF;
  }
}

/** The `\n`s in `bytes`: how many lines a buffer of whole lines advances the count by. */
export function countLines(bytes: Uint8Array): number {
  const buf = asBuffer(bytes);
  let n = 0;
  for (let i = buf.indexOf(LF); i !== -1; i = buf.indexOf(LF, i + 1)) n++;
  return n;
}

/** Whole lines of a stream (the last may lack its `\n`), and the 1-based number of the first. */
export interface LineChunk {
  bytes: Buffer;
  firstLine: number;
  /**
   * Set for a line longer than the chunker's `maxLineBytes` that was never held whole: `bytes` is
   * empty and the chunk stands for that one line, `oversize` bytes long with its terminator.
   */
  oversize?: number | undefined;
}

export interface LineChunkerOptions {
  /** Reads are gathered until there are at least this many bytes (default 0: every read is cut). */
  minBytes?: number | undefined;
  /** An unfinished line past this many bytes is no longer kept, only measured (default: no cap). */
  maxLineBytes?: number | undefined;
}

/**
 * Cuts a byte stream into chunks of whole lines: each read (gathered up to `minBytes`) is cut after
 * its last `\n`, and what follows waits for the next read. Memory is the reads gathered plus one
 * unfinished line, which with `maxLineBytes` is never held past that size.
 */
export class LineChunker {
  readonly #minBytes: number;
  readonly #maxLineBytes: number;
  /** Copies of what was read since the last cut: the stream may reuse its buffers. */
  #pending: Buffer[] = [];
  #pendingSize = 0;
  /** The unfinished line is over the cap: `#pendingSize` counts its bytes, none are kept. */
  #dropping = false;
  #line = 1;

  constructor(options: LineChunkerOptions = {}) {
    this.#minBytes = options.minBytes ?? 0;
    this.#maxLineBytes = options.maxLineBytes ?? Number.POSITIVE_INFINITY;
  }

  /** The chunks a read completes (often none or one). */
  push(piece: Uint8Array | string): LineChunk[] {
    let buf = typeof piece === 'string' ? Buffer.from(piece) : asBuffer(piece);
    const out: LineChunk[] = [];
    if (this.#dropping) {
      const lf = buf.indexOf(LF);
      if (lf === -1) {
        this.#pendingSize += buf.length;
        return out;
      }
      out.push(this.#oversize(this.#pendingSize + lf + 1));
      buf = buf.subarray(lf + 1);
    }
    if (this.#pendingSize + buf.length < this.#minBytes) {
      if (buf.length > 0) this.#pending.push(Buffer.from(buf));
      this.#pendingSize += buf.length;
      return out;
    }
    const bytes =
      this.#pendingSize === 0 ? buf : Buffer.concat([...this.#pending, buf], this.#pendingSize + buf.length);
    const last = bytes.lastIndexOf(LF);
    if (last !== -1) {
      const whole = bytes.subarray(0, last + 1);
      out.push({ bytes: whole, firstLine: this.#line });
      this.#line += countLines(whole);
    }
    this.#carry(bytes.subarray(last + 1));
    return out;
  }

  /** The last line, when the stream did not end with `\n`. */
  end(): LineChunk[] {
    if (this.#pendingSize === 0) return [];
    const last = this.#dropping
      ? this.#oversize(this.#pendingSize)
      : { bytes: Buffer.concat(this.#pending, this.#pendingSize), firstLine: this.#line };
    this.#pending = [];
    this.#pendingSize = 0;
    return [last];
  }

  /** Keeps the unfinished line (a copy) for the next read; past the cap, only its size. */
  #carry(rest: Buffer): void {
    this.#pendingSize = rest.length;
    this.#dropping = rest.length > this.#maxLineBytes;
    this.#pending = rest.length === 0 || this.#dropping ? [] : [Buffer.from(rest)];
  }

  #oversize(size: number): LineChunk {
    this.#dropping = false;
    this.#pendingSize = 0;
    return { bytes: EMPTY, firstLine: this.#line++, oversize: size };
  }
}

/**
 * Cuts an iterable of reads into chunks of whole lines (see {@link LineChunker}).
 *
 * @example
 * for await (const chunk of lineChunks(fs.createReadStream(path), { minBytes: 512 * 1024 })) …
 */
export async function* lineChunks(
  input: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>,
  options: LineChunkerOptions = {},
): AsyncGenerator<LineChunk> {
  const chunker = new LineChunker(options);
  for await (const piece of input) yield* chunker.push(piece);
  yield* chunker.end();
}

/** One line of input. `bytes` excludes the terminator and is only valid during the callback. */
export interface RawLine {
  /** 1-based line number. */
  number: number;
  /** The line's content without `\n` or `\r\n`; empty when `oversized`. */
  bytes: Buffer;
  /** The line's size in the input, terminator included. */
  size: number;
  /** True when the line was longer than `maxLineBytes`: its content was dropped, only its size counted. */
  oversized: boolean;
  /** False only for a last line without `\n`. */
  terminated: boolean;
}

/**
 * Push reads in, get whole lines out through `onLine`; a final line without `\n` comes out at `end()`.
 * Memory is one read plus the longest line, capped at `maxLineBytes` (a longer line, counted by its
 * content with any `\r`, is measured and reported `oversized`, never kept).
 *
 * @example
 * const splitter = new LineSplitter((line) => console.log(line.number, line.bytes.toString()));
 * for await (const chunk of fs.createReadStream(path)) splitter.push(chunk);
 * splitter.end();
 */
export class LineSplitter {
  readonly #onLine: (line: RawLine) => void;
  readonly #maxLineBytes: number;
  readonly #chunker: LineChunker;

  constructor(onLine: (line: RawLine) => void, maxLineBytes = Number.POSITIVE_INFINITY) {
    this.#onLine = onLine;
    this.#maxLineBytes = maxLineBytes;
    this.#chunker = new LineChunker({ maxLineBytes });
  }

  /** Splits a read, emitting every line it completes. */
  push(piece: Uint8Array): void {
    for (const chunk of this.#chunker.push(piece)) this.#emit(chunk, true);
  }

  /** Emits the last line if the input did not end with `\n`. */
  end(): void {
    for (const chunk of this.#chunker.end()) this.#emit(chunk, false);
  }

  /** `beforeEnd`: the chunk came from a read (an over-long line then had its `\n`), not from `end()`. */
  #emit(chunk: LineChunk, beforeEnd: boolean): void {
    if (chunk.oversize !== undefined) {
      const size = chunk.oversize;
      this.#onLine({ number: chunk.firstLine, bytes: EMPTY, size, oversized: true, terminated: beforeEnd });
      return;
    }
    const lines = new LineCursor(chunk.bytes, chunk.firstLine);
    while (lines.advance()) {
      const size = lines.next - lines.start;
      const terminated = lines.terminated;
      // The content as it came, `\r` included, is what the cap measures.
      const length = terminated ? size - 1 : size;
      if (length > this.#maxLineBytes) {
        this.#onLine({ number: lines.line, bytes: EMPTY, size, oversized: true, terminated });
      } else {
        const bytes = lines.bytes.subarray(lines.start, lines.end);
        this.#onLine({ number: lines.line, bytes, size, oversized: false, terminated });
      }
    }
  }
}

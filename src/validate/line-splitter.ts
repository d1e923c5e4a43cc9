/**
 * A byte-level line splitter for JSONL: splits on `\n` in raw bytes (never decoding a chunk that may end
 * inside a character), strips a `\r` before it, and keeps only the one unfinished line between chunks.
 */

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
}

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

/**
 * Push chunks in, get whole lines out through `onLine`. A final line without `\n` comes out at `end()`.
 * Memory is one chunk plus the longest line, capped at `maxLineBytes` (longer lines are counted, not kept).
 *
 * @example
 * const splitter = new LineSplitter((line) => console.log(line.number, line.bytes.toString()));
 * for await (const chunk of fs.createReadStream(path)) splitter.push(chunk);
 * splitter.end();
 */
export class LineSplitter {
  readonly #onLine: (line: RawLine) => void;
  readonly #maxLineBytes: number;
  /** The pieces of the unfinished line carried over from earlier chunks. */
  #pending: Buffer[] = [];
  #pendingSize = 0;
  #lineNumber = 0;

  constructor(onLine: (line: RawLine) => void, maxLineBytes = Number.POSITIVE_INFINITY) {
    this.#onLine = onLine;
    this.#maxLineBytes = maxLineBytes;
  }

  /** Splits a chunk, emitting every line it completes. */
  push(chunk: Uint8Array): void {
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (let lf = buf.indexOf(LF, start); lf !== -1; lf = buf.indexOf(LF, start)) {
      const piece = buf.subarray(start, lf);
      if (this.#pendingSize === 0) {
        this.#emit(piece, piece.length + 1);
      } else {
        this.#carry(piece);
        this.#emitPending(1);
      }
      start = lf + 1;
    }
    if (start < buf.length) this.#carry(buf.subarray(start));
  }

  /** Emits the last line if the input did not end with `\n`. */
  end(): void {
    if (this.#pendingSize > 0) this.#emitPending(0);
  }

  /** Keeps part of an unfinished line; past the cap, only its size. */
  #carry(piece: Buffer): void {
    if (this.#pendingSize + piece.length <= this.#maxLineBytes) {
      // Copy: the caller's chunk may be reused once push() returns.
      this.#pending.push(Buffer.from(piece));
    } else {
      this.#pending = [];
    }
    this.#pendingSize += piece.length;
  }

  #emitPending(terminatorSize: number): void {
    const size = this.#pendingSize + terminatorSize;
    if (this.#pendingSize > this.#maxLineBytes) {
      this.#lineNumber += 1;
      this.#onLine({ number: this.#lineNumber, bytes: EMPTY, size, oversized: true });
    } else {
      this.#emit(Buffer.concat(this.#pending, this.#pendingSize), size);
    }
    this.#pending = [];
    this.#pendingSize = 0;
  }

  #emit(content: Buffer, size: number): void {
    this.#lineNumber += 1;
    if (content.length > this.#maxLineBytes) {
      this.#onLine({ number: this.#lineNumber, bytes: EMPTY, size, oversized: true });
      return;
    }
    const end =
      content.length > 0 && content[content.length - 1] === CR ? content.length - 1 : content.length;
    this.#onLine({ number: this.#lineNumber, bytes: content.subarray(0, end), size, oversized: false });
  }
}

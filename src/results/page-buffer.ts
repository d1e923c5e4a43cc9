/**
 * Where a page of output is built: raw record bytes and encoded text appended into one buffer, which
 * is handed over whole (one write per page). Used by every results writer, on any thread.
 */

/** Output is built a page of records at a time, in a buffer of at least this size. */
const PAGE_BUFFER_BYTES = 512 * 1024;

/** A page's output: raw record bytes and encoded text, appended into one buffer. */
export class PageBuffer {
  private buf = Buffer.allocUnsafe(PAGE_BUFFER_BYTES);
  private length = 0;

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  text(s: string): void {
    this.reserve(s.length * 3);
    this.length += this.buf.write(s, this.length);
  }

  /** The page so far; the next page starts in a fresh buffer (the written one is the stream's now). */
  take(): Buffer {
    const out = this.buf.subarray(0, this.length);
    this.buf = Buffer.allocUnsafe(Math.max(PAGE_BUFFER_BYTES, this.length));
    this.length = 0;
    return out;
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }
}

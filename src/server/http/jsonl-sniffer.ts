import { Transform, type TransformCallback } from 'node:stream';

const HEAD_BYTES = 1024 * 1024;

/**
 * A pass-through that remembers enough of an upload to tell whether it looks like JSONL: the first MiB
 * and whether any NUL byte (binary data) went by. The file itself streams on untouched.
 */
export class JsonlSniffer extends Transform {
  private head: Buffer[] = [];
  private headBytes = 0;
  private sawNul = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.sawNul && chunk.indexOf(0) !== -1) this.sawNul = true;
    if (this.headBytes < HEAD_BYTES) {
      const part = chunk.subarray(0, HEAD_BYTES - this.headBytes);
      this.head.push(part);
      this.headBytes += part.length;
    }
    callback(null, chunk);
  }

  /**
   * Why the content is not JSONL, or undefined when it looks like JSONL (or is empty): no binary bytes,
   * and the first non-blank line is a JSON object (when that line is longer than a MiB, it must at least
   * start like one). Later lines are checked when a batch validates the file, with line numbers.
   */
  notJsonlReason(): string | undefined {
    if (this.sawNul) return 'it contains binary data';
    const head = Buffer.concat(this.head).toString('utf8');
    const complete = this.headBytes < HEAD_BYTES;
    const lines = head.split('\n');
    const index = lines.findIndex((line) => line.trim().length > 0);
    if (index === -1) return undefined;
    const first = (lines[index] as string).trim();
    const isLast = index === lines.length - 1;
    if (isLast && !complete)
      return first.startsWith('{') ? undefined : `line ${index + 1} is not a JSON object`;
    try {
      const value: unknown = JSON.parse(first);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) return undefined;
    } catch {
      // Falls through to the message below.
    }
    return `line ${index + 1} is not a JSON object`;
  }
}

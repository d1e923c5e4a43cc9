import { createReadStream } from 'node:fs';

/** One line of a text file: 1-based line number and its text without the line break. */
export interface TextLine {
  lineNo: number;
  text: string;
  /** Byte offset just past this line (and its `\n`, when it has one). */
  end: number;
  /** False only for a last line that has no `\n`. */
  terminated: boolean;
}

/**
 * Streams a file's lines without holding the file: only the current chunk and one partial line are in
 * memory. Splits on `\n` (a `\r` before it is dropped); a last line without a newline is still yielded.
 */
export async function* readLines(filePath: string): AsyncGenerator<TextLine> {
  let lineNo = 0;
  let offset = 0;
  let pending: Buffer[] = [];
  for await (const chunk of createReadStream(filePath, {
    highWaterMark: 256 * 1024,
  }) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      const line = pending.length > 0 ? Buffer.concat([...pending, piece]) : piece;
      pending = [];
      yield { lineNo: ++lineNo, text: decodeLine(line), end: offset + nl + 1, terminated: true };
      start = nl + 1;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
    offset += chunk.length;
  }
  if (pending.length > 0) {
    yield { lineNo: ++lineNo, text: decodeLine(Buffer.concat(pending)), end: offset, terminated: false };
  }
}

function decodeLine(line: Buffer): string {
  const end = line.length > 0 && line[line.length - 1] === 13 ? line.length - 1 : line.length;
  return line.toString('utf8', 0, end);
}

/** True for a line that holds nothing but whitespace (skipped, but still counted for line numbers). */
export function isBlank(text: string): boolean {
  return text.trim().length === 0;
}

import { createReadStream } from 'node:fs';
import { LineSplitter } from '../../internal/lines.js';

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
 * Streams a file's lines without holding the file: only the current read and one partial line are
 * in memory (the lines of a read are decoded together). Splits as src/internal/lines.ts does.
 */
export async function* readLines(filePath: string): AsyncGenerator<TextLine> {
  let offset = 0;
  let lines: TextLine[] = [];
  const splitter = new LineSplitter((line) => {
    offset += line.size;
    const text = line.bytes.toString('utf8');
    lines.push({ lineNo: line.number, text, end: offset, terminated: line.terminated });
  });
  const taken = () => {
    const out = lines;
    lines = [];
    return out;
  };
  for await (const chunk of createReadStream(filePath, {
    highWaterMark: 256 * 1024,
  }) as AsyncIterable<Buffer>) {
    splitter.push(chunk);
    yield* taken();
  }
  splitter.end();
  yield* taken();
}

/** True for a line that holds nothing but whitespace (skipped, but still counted for line numbers). */
export function isBlank(text: string): boolean {
  return text.trim().length === 0;
}

/**
 * Opens a source for reading: a path, `-` for stdin, or a byte stream, read as UTF-8 bytes with a
 * leading BOM removed. Owns how input is opened and its first bytes; touches only the input.
 */
import { createReadStream, type Stats, statSync } from 'node:fs';
import { BatchpipeError, ErrorCodes } from '../errors.js';

export interface InputBytes {
  /** The input's bytes after any BOM. */
  bytes: AsyncIterable<Buffer>;
  /** The first piece of `bytes` (still included in `bytes`), to guess the format from. */
  head: Buffer | undefined;
  /** Size of a file input, in bytes. */
  size: number | undefined;
  /** Bytes of the input before `bytes` (a BOM), so that offsets count from the input's first byte. */
  startOffset: number;
}

export interface OpenInputOptions {
  /** Name for messages (the path, or `-`). */
  name: string;
  /** Read size for files. */
  readBytes?: number | undefined;
}

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Opens `input` and reads its first bytes (enough to see a BOM). */
export async function openInput(
  input: string | AsyncIterable<Buffer | string>,
  options: OpenInputOptions,
): Promise<InputBytes> {
  let size: number | undefined;
  let stream: AsyncIterable<Buffer | string>;
  if (typeof input !== 'string') stream = input;
  else if (input === '-') stream = process.stdin;
  else {
    size = statInput(input).size;
    stream = createReadStream(input, { highWaterMark: options.readBytes ?? 1 << 16 });
  }
  const it = stream[Symbol.asyncIterator]();
  // Gather at least a BOM's length (pipes may deliver a byte at a time).
  const first: Buffer[] = [];
  let firstBytes = 0;
  let done = false;
  while (firstBytes < UTF8_BOM.length) {
    const next = await it.next();
    if (next.done) {
      done = true;
      break;
    }
    const piece = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    first.push(piece);
    firstBytes += piece.length;
  }
  let head: Buffer | undefined = first.length === 0 ? undefined : Buffer.concat(first, firstBytes);
  let startOffset = 0;
  if (head?.subarray(0, 3).equals(UTF8_BOM)) {
    startOffset = 3;
    head = head.subarray(3);
  }
  if (head?.length === 0) head = undefined;
  async function* bytes(): AsyncGenerator<Buffer> {
    if (head) yield head;
    if (done) return;
    for (let next = await it.next(); !next.done; next = await it.next()) {
      yield typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    }
  }
  return { bytes: bytes(), head, size, startOffset };
}

function statInput(path: string): Stats {
  try {
    return statSync(path);
  } catch (err) {
    throw new BatchpipeError(
      ErrorCodes.IO,
      `cannot read input ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      { file: path },
    );
  }
}

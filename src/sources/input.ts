/**
 * Opens a source for reading: a path, `-` for stdin, or a byte stream, as UTF-8 bytes without a BOM
 * (decoded from `--encoding`, or from UTF-16 when a BOM says so). Owns how input is opened and its
 * first bytes; touches only the input.
 */
import { createReadStream, type Stats, statSync } from 'node:fs';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { byteOrderMark, toUtf8, UTF8 } from './encoding.js';

export interface InputBytes {
  /** The input as UTF-8, after any BOM. */
  bytes: AsyncIterable<Buffer>;
  /** The first piece of `bytes` (still included in `bytes`), to guess the format from. */
  head: Buffer | undefined;
  /** Size of a file input, in bytes. */
  size: number | undefined;
  /** Bytes of the input before `bytes` (a BOM), so that offsets count from the input's first byte. */
  startOffset: number;
  /** The encoding the input is read in: `--encoding`, else the one a BOM names, else `utf-8`. */
  encoding: string;
}

export interface OpenInputOptions {
  /** Name for messages (the path, or `-`). */
  name: string;
  /** Read size for files. */
  readBytes?: number | undefined;
  /** The input's encoding (normalized: see normalizeEncoding); default: a BOM's, else UTF-8. */
  encoding?: string | undefined;
}

const BOM_BYTES = 3;

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
  const raw = readAll(stream, options.name);
  // Gather at least a BOM's length (pipes may deliver a byte at a time).
  const first: Buffer[] = [];
  let firstBytes = 0;
  let ended = false;
  while (firstBytes < BOM_BYTES) {
    const next = await raw.next();
    if (next.done) {
      ended = true;
      break;
    }
    first.push(next.value);
    firstBytes += next.value.length;
  }
  const start = Buffer.concat(first, firstBytes);
  const bom = byteOrderMark(start);
  let encoding = options.encoding ?? bom?.encoding ?? UTF8;
  if (encoding === 'utf-16' && bom?.encoding.startsWith('utf-16')) encoding = bom.encoding;
  const startOffset = bom?.encoding === encoding ? bom.bytes : 0;
  async function* afterBom(): AsyncGenerator<Buffer> {
    if (start.length > startOffset) yield start.subarray(startOffset);
    if (!ended) yield* raw;
  }
  // The first decoded piece, for guessing the format; it stays the first piece of `bytes`.
  const decoded = toUtf8(afterBom(), encoding)[Symbol.asyncIterator]();
  let head: Buffer | undefined;
  for (let next = await decoded.next(); !next.done; next = await decoded.next()) {
    if (next.value.length > 0) {
      head = next.value;
      break;
    }
  }
  async function* bytes(): AsyncGenerator<Buffer> {
    if (!head) return;
    yield head;
    for (let next = await decoded.next(); !next.done; next = await decoded.next()) yield next.value;
  }
  return { bytes: bytes(), head, size, startOffset, encoding };
}

/** The stream's pieces as Buffers; a read error is a BP_IO error naming the input. */
async function* readAll(stream: AsyncIterable<Buffer | string>, name: string): AsyncGenerator<Buffer> {
  try {
    for await (const piece of stream) yield typeof piece === 'string' ? Buffer.from(piece) : piece;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BatchpipeError(ErrorCodes.IO, `cannot read input ${name}: ${code ?? (err as Error).message}`, {
      file: name,
      cause: err,
    });
  }
}

/** The input file's stats; a path that is missing, a directory or unreachable is a BP_IO error. */
function statInput(path: string): Stats {
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (err as Error).message})`;
    throw new BatchpipeError(ErrorCodes.IO, `input ${path} ${why}`, { file: path, cause: err });
  }
  if (stats.isDirectory()) {
    throw new BatchpipeError(ErrorCodes.IO, `input ${path} is a directory; name a file, or - for stdin`, {
      file: path,
    });
  }
  return stats;
}

/**
 * Output-file bytes → line-aligned chunks, and a chunk → the outcomes of its lines. The pure core of
 * `applyResultLines`, run on this thread or on the parse worker.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { lineChunks as chunkLines, type LineChunk, LineCursor } from '../internal/lines.js';
import type { LineOutcome } from '../types.js';
import { type OutcomeContext, ResultLineProblem } from './line-outcome.js';
import { resultDialectOf } from './result-dialects.js';

export type { LineChunk } from '../internal/lines.js';

/** The outcomes of one chunk's non-blank lines, with their line numbers. */
export interface ParsedChunk {
  outcomes: LineOutcome[];
  lines: number[];
  /** The last line number the chunk held (blank lines included). */
  lastLine: number;
  /** Outcomes that are not successes. */
  failures: number;
}

/** Running totals of what was staged (of a chunk, or of a file so far). */
export interface StagedTotals {
  /** Non-blank lines staged. */
  lines: number;
  /** The highest line number seen. */
  lastLine: number;
  /** Lines staged that are not successes. */
  failures: number;
}

/**
 * Bytes per chunk, about: reads are gathered up to this size (a pipe or an HTTP body comes in 64 KB
 * pieces) and cut at their last newline. Measured on 1,000,000 output lines with a parse worker:
 * 64 KB 7.0 s, 256–512 KB 6.0–6.3 s, 1 MB 6.3 s and 18 MB more peak memory, 4 MB 6.9 s.
 */
export const CHUNK_BYTES = 512 * 1024;

/** Cuts a byte stream into chunks of whole lines, keeping only the unfinished line between them. */
export function lineChunks(
  input: AsyncIterable<Buffer | string | Uint8Array> | Iterable<Buffer | string | Uint8Array>,
): AsyncGenerator<LineChunk> {
  return chunkLines(input, { minBytes: CHUNK_BYTES });
}

/** Room past `CHUNK_BYTES` in a file read, for the line a chunk's end cuts through. */
const READ_SLACK = 64 * 1024;

/**
 * A stream's pieces (a download's 16–64 KB reads) gathered into line-aligned chunks of about
 * `CHUNK_BYTES`, in one buffer reused for the whole stream, as `fileChunks` does for a file: one
 * copy of each byte, and no chunk-sized allocation per chunk (each would be a fresh mapping under
 * the bin's malloc settings, its pages faulted in and zeroed, then unmapped). Each chunk is valid
 * until the next is asked for. A line longer than the buffer goes out in pieces, which `lineChunks`
 * joins.
 */
export async function* alignedChunks(
  input: AsyncIterable<Buffer | string | Uint8Array> | Iterable<Buffer | string | Uint8Array>,
): AsyncGenerator<Buffer> {
  const buffer = Buffer.allocUnsafeSlow(CHUNK_BYTES + READ_SLACK);
  let end = 0;
  for await (const piece of input) {
    let rest = typeof piece === 'string' ? Buffer.from(piece) : piece;
    while (rest.length > 0) {
      const taken = Math.min(rest.length, buffer.length - end);
      buffer.set(rest.subarray(0, taken), end);
      end += taken;
      rest = rest.subarray(taken);
      // Cut only a full buffer, as fileChunks does: the chunk then ends past CHUNK_BYTES (unless a
      // line is longer than READ_SLACK), so lineChunks passes it on instead of gathering a copy.
      if (end === buffer.length) end = yield* cutFull(buffer);
    }
  }
  if (end > 0) yield buffer.subarray(0, end);
}

/**
 * A file's bytes in line-aligned pieces of about `CHUNK_BYTES`, read synchronously. For `batchpipe
 * ingest`, whose thread would otherwise sit idle waiting for each asynchronous read while it could be
 * parsing; an unreadable file fails with `BP_IO` naming it. One buffer is reused, and each piece ends
 * at a line's end (the unfinished line moves to the buffer's front for the next read), so
 * `lineChunks` passes the pieces on as they are instead of copying them into a new chunk each time.
 * Each piece is valid until the next is read. A line longer than the buffer goes out in pieces,
 * which `lineChunks` joins (or measures, past its cap).
 */
export function* fileChunks(path: string): Generator<Buffer> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new BatchpipeError(ErrorCodes.IO, `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES + READ_SLACK);
  let kept = 0;
  try {
    for (;;) {
      let end = kept;
      while (end < buffer.length) {
        const read = readSync(fd, buffer, end, buffer.length - end, null);
        if (read === 0) break;
        end += read;
      }
      if (end < buffer.length) {
        if (end > 0) yield buffer.subarray(0, end);
        return;
      }
      kept = yield* cutFull(buffer);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * A full buffer's whole lines (or all of it, when it holds no line end: a piece of a long line);
 * once they are done with, the unfinished line moves to the buffer's front. Returns its length.
 */
function* cutFull(buffer: Buffer): Generator<Buffer, number> {
  const cut = buffer.lastIndexOf(0x0a) + 1;
  if (cut === 0) {
    yield buffer;
    return 0;
  }
  yield buffer.subarray(0, cut);
  buffer.copyWithin(0, cut);
  return buffer.length - cut;
}

/**
 * The outcomes of a chunk's lines. An unparsable line fails with `BP_RESULT_LINE` naming `source`
 * and the line; blank lines are skipped; a UTF-8 byte order mark before line 1 is ignored.
 */
export function parseLineChunk(chunk: LineChunk, ctx: OutcomeContext, source: string): ParsedChunk {
  const { bytes } = chunk;
  const outcomes: LineOutcome[] = [];
  const lines: number[] = [];
  let failures = 0;
  const bom = chunk.firstLine === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
  const cursor = new LineCursor(bytes, chunk.firstLine, bom ? 3 : 0);
  while (cursor.advance()) {
    const text = cursor.text();
    if (text.trim() !== '') {
      const outcome = parseLine(text, cursor.line, ctx, source);
      if (outcome.state !== 'succeeded') failures++;
      outcomes.push(outcome);
      lines.push(cursor.line);
    }
  }
  return { outcomes, lines, lastLine: cursor.line, failures };
}

function parseLine(text: string, line: number, ctx: OutcomeContext, source: string): LineOutcome {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BatchpipeError(ErrorCodes.RESULT_LINE, `not a JSON line: ${(err as Error).message}`, {
      file: source,
      line,
    });
  }
  const outcome = resultDialectOf(ctx.provider).lineOutcome(value, ctx);
  if (outcome instanceof ResultLineProblem) {
    throw new BatchpipeError(ErrorCodes.RESULT_LINE, `not an output line: ${outcome.message}`, {
      file: source,
      line,
    });
  }
  return outcome;
}

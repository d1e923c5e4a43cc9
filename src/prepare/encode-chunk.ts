import { isUtf8 } from 'node:buffer';
import { ErrorCodes } from '../errors.js';
import type { EncodedChunk } from '../sink/encoded-chunk.js';
import type { Chunk, OversizeRecord } from '../sources/chunker.js';
import { guessEncoding, invalidInputMessage, UTF8 } from '../sources/encoding.js';
import {
  type ChunkRecords,
  csvFieldIndexAt,
  ParseProblem,
  parseCsvChunk,
  parseJsonlChunk,
} from '../sources/parse-chunk.js';
import { invalidUtf8Offsets } from '../sources/utf8.js';
import type { RequestTemplateOptions } from '../transforms/request-builder.js';
import { createRequestEncoder, type LineValidator } from '../transforms/request-encoder.js';
import { columnFieldResolver, objectFieldResolver } from '../transforms/template.js';
import type { ChunkReject, SourceRecord } from '../types.js';

/** Everything a thread needs to turn chunks of input into encoded requests. */
export interface EncodeContext {
  /** `csv`, else the records are JSON objects one a line (JSONL, and JSON array elements made so). */
  format: 'csv' | 'jsonl' | 'json';
  /** CSV header, parsed once by the reader. */
  columns: string[];
  template: RequestTemplateOptions;
  /** Input name for error messages. */
  source: string;
  /** Validate every record's request (decided once by templateNeedsPerRecordValidation). */
  validateEach: boolean;
  /** The input's encoding, for messages about invalid bytes (default UTF-8). */
  encoding?: string | undefined;
}

/** What a thread needs to know of a chunk besides its bytes and first line. */
export type ChunkPlacement = Partial<Pick<Chunk, 'offset' | 'oversize' | 'lines' | 'rejects'>>;

/** What parsing a chunk's records needs: the input's format, header, name and encoding. */
export type ParseContext = Pick<EncodeContext, 'format' | 'columns' | 'source' | 'encoding'>;

/** One chunk's records, parsed, and why any of them cannot become a request before templating. */
export interface ParsedChunk {
  records: ChunkRecords<SourceRecord | string[] | ParseProblem>;
  /**
   * Record `i`'s problem (one the reader already knew, bytes that are not valid text, a parse problem,
   * a CSV field count other than the header's), or undefined; asked for each `i` in increasing order.
   */
  problem(i: number): ChunkReject | undefined;
}

/**
 * Builds the per-chunk parser shared by `prepare`'s encoder and the `csvSource`/`jsonlSource`
 * stages: CSV values come as arrays in header order, JSONL records as objects.
 */
export function createChunkParser(
  ctx: ParseContext,
): (bytes: Buffer, firstLine: number, placement?: ChunkPlacement) => ParsedChunk {
  const csv = ctx.format === 'csv';
  const width = ctx.columns.length;
  return function parseChunk(bytes, firstLine, placement = {}) {
    const records: ChunkRecords<SourceRecord | string[] | ParseProblem> = csv
      ? parseCsvChunk(bytes, firstLine, ctx.source)
      : parseJsonlChunk(bytes, firstLine, placement.lines);
    const known = placement.rejects ?? [];
    let nextKnown = 0;
    // One native check for the whole chunk; records are looked at one by one only when it fails.
    const invalidText = isUtf8(bytes) ? undefined : invalidTextFinder(ctx, bytes, placement.offset ?? 0);
    const problem = (i: number): ChunkReject | undefined => {
      if (known[nextKnown]?.index === i) return known[nextKnown++]!;
      const invalid = invalidText?.(records.starts[i]!, records.ends[i]!);
      if (invalid) return { index: i, code: ErrorCodes.ENCODING, ...invalid };
      const value = records.values[i]!;
      if (value instanceof ParseProblem) return { index: i, code: value.code, message: value.message };
      if (csv && (value as string[]).length !== width) {
        const message = `expected ${width} fields (as in the header), got ${(value as string[]).length}`;
        return { index: i, code: ErrorCodes.PARSE, message };
      }
      return undefined;
    };
    return { records, problem };
  };
}

/**
 * Builds the per-chunk function: parse → template → validate → encode, all in this thread. `spare`,
 * when given, is memory nothing else holds, used for the tails if it is large enough.
 */
export function createChunkEncoder(
  ctx: EncodeContext,
  validate?: LineValidator,
): (bytes: Buffer, firstLine: number, placement?: ChunkPlacement, spare?: ArrayBuffer) => EncodedChunk {
  const resolve = ctx.format === 'csv' ? columnFieldResolver(ctx.columns) : objectFieldResolver;
  const encode = createRequestEncoder(ctx.template, resolve, ctx.validateEach ? validate : undefined);
  const parse = createChunkParser(ctx);

  return function encodeChunk(bytes, firstLine, placement = {}, spare) {
    if (placement.oversize) return oversizeChunk(bytes, firstLine, placement.oversize);
    const { records, problem } = parse(bytes, firstLine, placement);
    const count = records.values.length;
    const ids: (string | null)[] = new Array(count).fill(null);
    // Tails are UTF-8-encoded straight into one buffer: write() both encodes and counts the bytes.
    const size = Math.max(1024, bytes.length * 2);
    let tails: Buffer =
      spare !== undefined && spare.byteLength >= size ? Buffer.from(spare) : Buffer.allocUnsafeSlow(size);
    const tailEnds = new Int32Array(count);
    const tokens = new Int32Array(count);
    const rejects: ChunkReject[] = [];
    let models: (string | null)[] | null = null;
    let model: string | null | undefined;
    let tailBytes = 0;
    for (let i = 0; i < count; i++) {
      const reject = problem(i);
      if (reject) {
        rejects.push(reject);
        tailEnds[i] = tailBytes;
        continue;
      }
      const outcome = encode(records.values[i] as SourceRecord | string[]);
      if (!outcome.ok) {
        rejects.push({ index: i, code: outcome.code, message: outcome.message, field: outcome.field });
        tailEnds[i] = tailBytes;
        continue;
      }
      if (outcome.customId !== undefined) ids[i] = outcome.customId;
      const m = outcome.model ?? null;
      if (model === undefined) model = m;
      else if (m !== model && models === null) models = new Array(count).fill(model);
      if (models) models[i] = m;
      if (tails.length - tailBytes < outcome.tail.length * 3)
        tails = grow(tails, tailBytes, outcome.tail.length * 3);
      tailBytes += tails.write(outcome.tail, tailBytes);
      tailEnds[i] = tailBytes;
      tokens[i] = outcome.tokens;
    }
    const { lines, starts, ends } = records;
    return {
      count,
      lines,
      source: bytes,
      starts,
      ends,
      ids,
      model: model ?? null,
      models,
      tails: tails.subarray(0, tailBytes),
      tailEnds,
      tokens,
      rejects,
    };
  };
}

/**
 * A record the chunker set aside unread (larger than `--max-bytes`): a reject holding the record's
 * first bytes, saying so.
 */
function oversizeChunk(prefix: Buffer, line: number, oversize: OversizeRecord): EncodedChunk {
  const message = oversize.complete
    ? `record is ${oversize.bytes} bytes, more than --max-bytes (${oversize.limit}); the rejected record keeps only its first ${prefix.length} bytes`
    : `record is more than ${oversize.limit} bytes (--max-bytes); the input was not read past it`;
  return {
    count: 1,
    lines: Int32Array.of(line),
    source: prefix,
    starts: Int32Array.of(0),
    ends: Int32Array.of(prefix.length),
    ids: [null],
    model: null,
    models: null,
    tails: Buffer.allocUnsafeSlow(0),
    tailEnds: Int32Array.of(0),
    tokens: Int32Array.of(0),
    rejects: [{ index: 0, code: ErrorCodes.REQUEST_TOO_LARGE, message }],
  };
}

/**
 * For a chunk that is not valid UTF-8: what is wrong with record `bytes[start, end)`, or undefined
 * when its bytes are valid. The likely encoding is guessed once per chunk, from all its invalid bytes.
 */
function invalidTextFinder(
  ctx: ParseContext,
  bytes: Buffer,
  fileOffset: number,
): (start: number, end: number) => { message: string; field: string | undefined } | undefined {
  const encoding = ctx.encoding ?? UTF8;
  let guess: string | undefined;
  return (start, end) => {
    if (isUtf8(bytes.subarray(start, end))) return undefined;
    const at = invalidUtf8Offsets(bytes, start, end, 1)[0] ?? start;
    if (encoding === UTF8) guess ??= guessEncoding(bytes, invalidUtf8Offsets(bytes, 0, bytes.length));
    let column: string | undefined;
    if (ctx.format === 'csv') {
      const index = csvFieldIndexAt(bytes, start, at);
      column = ctx.columns[index] ?? `#${index + 1}`;
    }
    return {
      message: invalidInputMessage({ encoding, buf: bytes, at, fileOffset, column, guess }),
      field: column,
    };
  };
}

function grow(buf: Buffer, used: number, need: number): Buffer {
  const bigger = Buffer.allocUnsafeSlow(Math.max(buf.length * 2, used + need));
  buf.copy(bigger, 0, 0, used);
  return bigger;
}

/**
 * The stages as Node streams, for composing by hand with `stream.pipeline`. Each is a thin adapter
 * over the same cores `prepare` runs on its threads.
 *
 * @example
 * await pipeline(
 *   csvSource('feedback.csv'),
 *   promptTemplate({ model: 'gpt-4o-mini', prompt: 'Classify: {{text}}', idColumn: 'id' }),
 *   validateRequests(),
 *   jsonlEncode(),
 *   batchSink({ ledger: Ledger.open('fb.db'), outDir: 'fb/' }),
 * );
 */
import { Readable, Transform, Writable } from 'node:stream';
import { BatchpipeError, ErrorCodes } from './errors.js';
import type { Ledger } from './ledger/ledger.js';
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_LINES } from './prepare/prepare.js';
import { BatchWriter, failOnReject } from './sink/batch-writer.js';
import type { EncodedChunk } from './sink/encoded-chunk.js';
import { type Chunk, countLineBreaks, type RecordSyntax, recordChunks } from './sources/chunker.js';
import { checkText, UTF8 } from './sources/encoding.js';
import { openInput } from './sources/input.js';
import { ParseProblem, parseCsvChunk, parseCsvHeader, parseJsonlChunk } from './sources/parse-chunk.js';
import {
  compileRequestBuilder,
  derivedCustomId,
  type RequestTemplateOptions,
} from './transforms/request-builder.js';
import { estimateTokens } from './transforms/request-encoder.js';
import { MissingFieldError } from './transforms/template.js';
import type { Envelope, RecordProblem, RejectedRecord, RequestLine, SourceRecord } from './types.js';
import { checkRequestLine, formatIssue } from './validate/request-schema.js';

/** A record on its way through the stages: its request, or why it has none. */
export interface RequestEnvelope extends Envelope {
  request?: RequestLine;
  reject?: RecordProblem;
}

/** An encoded request line (or a reject) ready for the sink. */
export interface EncodedRequest {
  seq: number;
  line: number;
  record: SourceRecord;
  customId?: string;
  /** The request line as JSON, no trailing newline. */
  json?: string;
  reject?: RecordProblem | undefined;
  /** The request's model (one model per file). */
  model?: string | undefined;
}

type ByteInput = string | AsyncIterable<Buffer | string>;

/** The input's bytes, BOM removed. */
async function* bytesOf(input: ByteInput, name: string): AsyncGenerator<Buffer> {
  yield* (await openInput(input, { name, readBytes: 1 << 20 })).bytes;
}

/** Invalid UTF-8 stops a stream source (it has no rejects), naming the line. */
function checkUtf8(chunk: Chunk, file: string, syntax: RecordSyntax): void {
  checkText(chunk.bytes, chunk.bytes.length, {
    file,
    fileOffset: chunk.offset,
    encoding: UTF8,
    lineOf: (at) => chunk.firstLine + countLineBreaks(chunk.bytes, syntax, 0, at),
  });
}

/** CSV records (header row → field names, BOM stripped, values exact strings) as envelopes. */
export function csvSource(input: ByteInput, options: { name?: string } = {}): Readable {
  const name = options.name ?? (typeof input === 'string' ? input : '-');
  return Readable.from(
    (async function* () {
      let columns: string[] | undefined;
      let seq = 0;
      for await (const chunk of recordChunks(bytesOf(input, name), { syntax: 'csv' })) {
        checkUtf8(chunk, name, 'csv');
        let { bytes, firstLine } = chunk;
        if (columns === undefined) {
          const header = parseCsvHeader(chunk, name);
          columns = header.columns;
          firstLine += countLineBreaks(bytes, 'csv', 0, header.bodyStart);
          bytes = bytes.subarray(header.bodyStart);
        }
        const records = parseCsvChunk(bytes, firstLine, name);
        for (let i = 0; i < records.values.length; i++) {
          const values = records.values[i]!;
          const line = records.lines[i]!;
          if (values.length !== columns.length) {
            throw new BatchpipeError(
              ErrorCodes.PARSE,
              `expected ${columns.length} fields (as in the header), got ${values.length}`,
              {
                file: name,
                line,
              },
            );
          }
          const record: SourceRecord = {};
          for (let c = 0; c < columns.length; c++) record[columns[c]!] = values[c];
          yield { seq: seq++, line, record } satisfies Envelope;
        }
      }
    })(),
  );
}

/** JSONL records (one object a line, blank lines skipped, long numbers kept exact) as envelopes. */
export function jsonlSource(input: ByteInput, options: { name?: string } = {}): Readable {
  const name = options.name ?? (typeof input === 'string' ? input : '-');
  return Readable.from(
    (async function* () {
      let seq = 0;
      for await (const chunk of recordChunks(bytesOf(input, name), { syntax: 'lines' })) {
        checkUtf8(chunk, name, 'lines');
        const records = parseJsonlChunk(chunk.bytes, chunk.firstLine);
        for (let i = 0; i < records.values.length; i++) {
          const value = records.values[i]!;
          const line = records.lines[i]!;
          if (value instanceof ParseProblem)
            throw new BatchpipeError(ErrorCodes.PARSE, value.message, { file: name, line });
          yield { seq: seq++, line, record: value } satisfies Envelope;
        }
      }
    })(),
  );
}

/** Envelope → envelope with its `request` (or a `reject` when a field is missing). */
export function promptTemplate(options: RequestTemplateOptions): Transform {
  const build = compileRequestBuilder(options);
  return new Transform({
    objectMode: true,
    transform(env: Envelope, _enc, done) {
      try {
        const built = build(env.record);
        const request: RequestLine = {
          custom_id: built.customId ?? derivedCustomId(env.seq),
          method: 'POST',
          url: built.url,
          body: built.body,
        };
        done(null, { ...env, request } satisfies RequestEnvelope);
      } catch (err) {
        if (!(err instanceof MissingFieldError)) return done(err as Error);
        done(null, {
          ...env,
          reject: { code: ErrorCodes.TEMPLATE_MISSING_FIELD, message: err.message, field: err.field },
        });
      }
    },
  });
}

/** Checks each request against the Batch API schemas; a bad one becomes a `reject`. */
export function validateRequests(): Transform {
  return new Transform({
    objectMode: true,
    transform(env: RequestEnvelope, _enc, done) {
      if (env.reject || !env.request) return done(null, env);
      if (env.request.custom_id === '') {
        return done(null, {
          ...env,
          reject: { code: ErrorCodes.ID_MISSING, message: 'custom_id is empty', field: 'custom_id' },
        });
      }
      const issue = checkRequestLine(env.request)[0];
      if (!issue) return done(null, env);
      done(null, {
        ...env,
        reject: {
          code: ErrorCodes.INVALID_REQUEST,
          message: formatIssue(issue),
          field: issue.path,
        },
      });
    },
  });
}

/** Request envelope → one encoded JSONL line (`custom_id` first, as the writer expects). */
export function jsonlEncode(): Transform {
  return new Transform({
    objectMode: true,
    transform(env: RequestEnvelope, _enc, done) {
      const { seq, line, record, request, reject } = env;
      if (reject || !request) return done(null, { seq, line, record, reject } satisfies EncodedRequest);
      const { custom_id, method, url, body } = request;
      const json = JSON.stringify({ custom_id, method, url, body });
      const model = typeof body.model === 'string' ? body.model : undefined;
      done(null, { seq, line, record, customId: custom_id, json, model } satisfies EncodedRequest);
    },
  });
}

export interface BatchSinkOptions {
  ledger: Ledger;
  outDir: string;
  endpoint?: string;
  maxLines?: number;
  maxBytes?: number;
  /** Receive rejected records and go on; without it the first reject fails the stream. */
  onReject?: (reject: RejectedRecord) => void;
  /** Records per ledger transaction. */
  batchSize?: number;
}

/**
 * The batch sink as a Writable: rolls files at the limits and records every request in the ledger.
 * Resolves `pipeline` once the last file is complete.
 */
export function batchSink(options: BatchSinkOptions): Writable {
  const { ledger } = options;
  const runId = ledger.getMeta('run_id') ?? claimStreamRun(ledger);
  const writer = new BatchWriter({
    ledger,
    outDir: options.outDir,
    runId,
    endpoint: options.endpoint ?? '/v1/chat/completions',
    maxLines: options.maxLines ?? DEFAULT_MAX_LINES,
    maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
    source: 'stream',
    onReject: options.onReject ?? failOnReject('stream'),
    firstFileNumber: ledger.files().length + 1,
  });
  writer.nextSeq = Number(
    ledger.db
      .prepare(
        'SELECT coalesce(max(seq) + 1, 0) AS n FROM (SELECT seq FROM requests UNION ALL SELECT seq FROM rejects)',
      )
      .pluck()
      .get(),
  );
  const batchSize = options.batchSize ?? 2000;
  let pending: EncodedRequest[] = [];
  const flush = () => {
    if (pending.length > 0) writer.writeChunk(toChunk(pending, writer.nextSeq));
    pending = [];
  };
  return new Writable({
    objectMode: true,
    write(item: EncodedRequest, _enc, done) {
      try {
        pending.push(item);
        if (pending.length >= batchSize) flush();
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    final(done) {
      try {
        flush();
        writer.finish();
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

function claimStreamRun(ledger: Ledger): string {
  const runId = `stream-${Date.now().toString(36)}`;
  ledger.setMeta('run_id', runId);
  return runId;
}

/** Packs encoded requests into the writer's column-wise chunk; seqs must continue from `nextSeq`. */
function toChunk(items: EncodedRequest[], nextSeq: number): EncodedChunk {
  const count = items.length;
  const records: string[] = [];
  const starts = new Int32Array(count);
  const ends = new Int32Array(count);
  const tails: string[] = [];
  const tailEnds = new Int32Array(count);
  const tokens = new Int32Array(count);
  const ids: (string | null)[] = [];
  const rejects: EncodedChunk['rejects'] = [];
  let recordBytes = 0;
  let tailBytes = 0;
  for (let i = 0; i < count; i++) {
    const item = items[i]!;
    if (item.seq !== nextSeq + i) {
      throw new BatchpipeError(
        ErrorCodes.USAGE,
        `batchSink needs records in seq order: expected seq ${nextSeq + i}, got ${item.seq}`,
      );
    }
    const record = JSON.stringify(item.record);
    records.push(record);
    starts[i] = recordBytes;
    recordBytes += Buffer.byteLength(record);
    ends[i] = recordBytes;
    ids.push(item.customId ?? null);
    if (item.reject || item.json === undefined || item.customId === undefined) {
      rejects.push({
        index: i,
        ...(item.reject ?? { code: ErrorCodes.INVALID_REQUEST, message: 'no encoded request' }),
      });
    } else {
      const tail = item.json.slice(`{"custom_id":${JSON.stringify(item.customId)},`.length);
      tails.push(tail);
      tailBytes += Buffer.byteLength(tail);
      tokens[i] = estimateTokens(tail);
    }
    tailEnds[i] = tailBytes;
  }
  return {
    count,
    lines: Int32Array.from(items, (item) => item.line),
    source: Buffer.from(records.join('')),
    starts,
    ends,
    ids,
    model: null,
    models: items.map((item) => item.model ?? null),
    tails: Buffer.from(tails.join('')),
    tailEnds,
    tokens,
    rejects,
  };
}

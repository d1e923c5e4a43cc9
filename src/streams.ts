/**
 * The stages as Node streams, for composing by hand with `stream.pipeline`. Each is a thin adapter
 * over a core `prepare` runs: the sources over prepare's chunker and chunk parser, `promptTemplate`
 * over its request encoder, `batchSink` over its batch writer and the steps around it (the run's
 * identity, resuming, the end-of-input mark). So a ledger built from the stages holds exactly what
 * `prepare` would have put there for the same input and options, and `submit`, `collect`, `run`,
 * `results` and `resultSource` take it as theirs. Owns the envelopes between the stages; touches the
 * ledger only through the writer and the prepare-run steps.
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
import { claimHandBuiltRunId } from './ledger/identity.js';
import type { Ledger } from './ledger/ledger.js';
import { createChunkParser, type ParseContext } from './prepare/encode-chunk.js';
import {
  checkColumns,
  checkLimits,
  finishPreparedRun,
  linesPerFile,
  openPreparedRun,
  templateOptions,
} from './prepare/prepare-run.js';
import { runIdentity } from './prepare/run-identity.js';
import { BatchWriter, failOnReject } from './sink/batch-writer.js';
import type { EncodedChunk } from './sink/encoded-chunk.js';
import { recordChunks } from './sources/chunker.js';
import { splitCsvHeader } from './sources/csv-header.js';
import { normalizeEncoding, UTF8 } from './sources/encoding.js';
import { openInput } from './sources/input.js';
import {
  compileRequestBuilder,
  derivedCustomId,
  type RequestTemplateOptions,
} from './transforms/request-builder.js';
import { createRequestEncoder, estimateTokens, joinRequestLine } from './transforms/request-encoder.js';
import { templateNeedsPerRecordValidation, validateLine } from './transforms/request-probe.js';
import { columnFieldResolver } from './transforms/template.js';
import type {
  Envelope,
  RecordOrigin,
  RecordProblem,
  RejectedRecord,
  RequestLine,
  SourceRecord,
} from './types.js';
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_LINES } from './validate/file-rules.js';
import { checkRequestLine, formatIssue } from './validate/request-schema.js';

/** Why a record has no request: a `BP_*` code, a message, and the field at fault when known. */
export type StageReject = RecordProblem;

/**
 * What the stages know of the run, shared by reference by every envelope `promptTemplate` passes on:
 * where the records came from and the template. `batchSink` records it as the ledger's run identity.
 */
export interface StreamRun {
  /** The records' source; undefined for records built by hand (kept as JSON text: a JSONL run). */
  origin: RecordOrigin | undefined;
  template: RequestTemplateOptions;
}

/** The request `promptTemplate` made, encoded exactly as `prepare` encodes it. */
export interface EncodedLine {
  /** Undefined when the id is derived from the seq (`req-<seq>`). */
  customId: string | undefined;
  /** The request line after its `custom_id` (see joinRequestLine). */
  tail: string;
  model: string | undefined;
}

/**
 * A record on its way through the stages. A source's bad record (bytes that are not valid text, a
 * parse problem, a wrong field count) and a record the template or the checks refuse carry a
 * `reject`, which every stage passes on to `batchSink`; its `onReject` takes it, or it stops the run.
 */
export interface RequestEnvelope extends Envelope {
  /** `promptTemplate`'s request: validated and encoded as `prepare` does it. */
  encoded?: EncodedLine | undefined;
  /** A request built by hand (without `promptTemplate`): `validateRequests` checks it, `jsonlEncode` encodes it. */
  request?: RequestLine | undefined;
  reject?: StageReject | undefined;
  /** Set by `promptTemplate`: the run the record belongs to. */
  run?: StreamRun | undefined;
}

/** An encoded request line (or a reject) ready for the sink. */
export interface EncodedRequest {
  seq: number;
  line: number;
  record: SourceRecord;
  /** The record's bytes as read (see {@link Envelope.source}). */
  source?: Uint8Array | undefined;
  origin?: RecordOrigin | undefined;
  run?: StreamRun | undefined;
  customId?: string;
  /** The request line as JSON, `custom_id` first, no trailing newline. */
  json?: string;
  reject?: StageReject | undefined;
  /** The request's model (one model per file). */
  model?: string | undefined;
}

export interface SourceOptions {
  /** Name used in messages; defaults to the path (or `-`). */
  name?: string | undefined;
  /** The input's encoding, any iconv-lite knows; default UTF-8, or UTF-16 when a BOM says so. */
  encoding?: string | undefined;
}

type ByteInput = string | AsyncIterable<Buffer | string>;

/** Records are read in chunks of this size, as `prepare` reads them. */
const CHUNK_BYTES = 256 * 1024;

/**
 * CSV records (header row → field names, BOM stripped, values exact strings) as envelopes, each with
 * its source bytes. A bad record comes as an envelope with a `reject`.
 */
export function csvSource(input: ByteInput, options: SourceOptions = {}): Readable {
  return Readable.from(envelopesOf(input, 'csv', options));
}

/**
 * JSONL records (one object a line, blank lines skipped, long numbers kept exact) as envelopes, each
 * with its source bytes. A bad line comes as an envelope with a `reject`.
 */
export function jsonlSource(input: ByteInput, options: SourceOptions = {}): Readable {
  return Readable.from(envelopesOf(input, 'jsonl', options));
}

async function* envelopesOf(
  input: ByteInput,
  format: RecordOrigin['format'],
  options: SourceOptions,
): AsyncGenerator<RequestEnvelope> {
  const name = options.name ?? (typeof input === 'string' ? input : '-');
  const encoding = options.encoding === undefined ? undefined : normalizeEncoding(options.encoding);
  const opened = await openInput(input, { name, readBytes: CHUNK_BYTES, encoding });
  if (opened.head === undefined) {
    throw new BatchpipeError(ErrorCodes.NO_RECORDS, 'the input is empty: there are no records to prepare', {
      file: name,
    });
  }
  const chunks = recordChunks(opened.bytes, {
    syntax: format === 'csv' ? 'csv' : 'lines',
    targetBytes: CHUNK_BYTES,
    startOffset: opened.startOffset,
  });
  let origin: RecordOrigin | undefined;
  let parse: ReturnType<typeof createChunkParser> | undefined;
  let seq = 0;
  for await (let chunk of chunks) {
    if (origin === undefined) {
      let columns: string[] = [];
      if (format === 'csv')
        ({ columns, body: chunk } = splitCsvHeader(chunk, name, opened.encoding, DEFAULT_MAX_BYTES));
      origin = Object.freeze({ format, columns: Object.freeze(columns), name, encoding: opened.encoding });
      const ctx: ParseContext = { format, columns, source: name, encoding: opened.encoding };
      parse = createChunkParser(ctx);
    }
    if (chunk.bytes.length === 0) continue;
    const { records, problem } = parse!(chunk.bytes, chunk.firstLine, chunk);
    for (let i = 0; i < records.values.length; i++) {
      const line = records.lines[i]!;
      const source = chunk.bytes.subarray(records.starts[i], records.ends[i]);
      const reject = problem(i);
      if (reject) {
        const { code, message, field } = reject;
        yield { seq: seq++, line, record: {}, source, origin, reject: { code, message, field } };
        continue;
      }
      const value = records.values[i]!;
      const record = format === 'csv' ? recordOf(origin.columns, value as string[]) : (value as SourceRecord);
      yield { seq: seq++, line, record, source, origin };
    }
  }
  if (seq === 0) {
    const only = format === 'csv' ? 'a header and no records' : 'no records';
    throw new BatchpipeError(ErrorCodes.NO_RECORDS, `the input holds ${only}: there is nothing to prepare`, {
      file: name,
    });
  }
}

/** A CSV row keyed by the header (own properties, whatever the column names). */
function recordOf(columns: readonly string[], values: readonly string[]): SourceRecord {
  return Object.fromEntries(columns.map((column, c) => [column, values[c]]));
}

/**
 * Envelope → envelope with its request, made by `prepare`'s own encoder: the template filled, the
 * request checked against the Batch API schemas wherever the template could make it invalid, and
 * encoded as the line `prepare` writes; or a `reject` (a missing field, an empty id, an invalid
 * request). A CSV source's header must have every column the template names.
 */
export function promptTemplate(options: RequestTemplateOptions): Transform {
  const template = templateOptions(options);
  compileRequestBuilder(template); // a bad template fails here, before any record
  const encode = createRequestEncoder(
    template,
    undefined,
    templateNeedsPerRecordValidation(template) ? validateLine : undefined,
  );
  let current: StreamRun | undefined;
  const runOf = (origin: RecordOrigin | undefined): StreamRun => {
    if (current === undefined || current.origin !== origin) {
      if (origin?.format === 'csv') compileRequestBuilder(template, columnFieldResolver(origin.columns));
      current = { origin, template };
    }
    return current;
  };
  return new Transform({
    objectMode: true,
    transform(env: RequestEnvelope, _enc, done) {
      try {
        const { seq, line, record, source, origin } = env;
        const run = runOf(origin);
        if (env.reject) return done(null, { seq, line, record, source, origin, run, reject: env.reject });
        const outcome = encode(record);
        if (!outcome.ok) {
          const reject = { code: outcome.code, message: outcome.message, field: outcome.field };
          return done(null, { seq, line, record, source, origin, run, reject } satisfies RequestEnvelope);
        }
        const encoded = { customId: outcome.customId, tail: outcome.tail, model: outcome.model };
        done(null, { seq, line, record, source, origin, run, encoded } satisfies RequestEnvelope);
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

/**
 * Checks requests built by hand against the Batch API schemas; a bad one becomes a `reject`.
 * `promptTemplate`'s requests pass as they are: its encoder has already checked them as `prepare`
 * does.
 */
export function validateRequests(): Transform {
  return new Transform({
    objectMode: true,
    transform(env: RequestEnvelope, _enc, done) {
      if (env.reject || env.encoded || !env.request) return done(null, env);
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
      const { seq, line, record, source, origin, run, reject, encoded, request } = env;
      const item: EncodedRequest = { seq, line, record, source, origin, run };
      if (reject) return done(null, { ...item, reject });
      if (encoded) {
        const customId = encoded.customId ?? derivedCustomId(seq);
        const json = joinRequestLine(customId, encoded.tail);
        return done(null, { ...item, customId, json, model: encoded.model });
      }
      if (!request) return done(null, item);
      const { custom_id, method, url, body } = request;
      const json = JSON.stringify({ custom_id, method, url, body });
      const model = typeof body.model === 'string' ? body.model : undefined;
      done(null, { ...item, customId: custom_id, json, model });
    },
  });
}

export interface BatchSinkOptions {
  ledger: Ledger;
  outDir: string;
  /** For requests built by hand; `promptTemplate`'s runs take the template's (giving another is an error). */
  endpoint?: string;
  maxLines?: number;
  maxBytes?: number;
  /** Receive rejected records and go on; without it the first reject fails the stream. */
  onReject?: (reject: RejectedRecord) => void;
  /** Records per ledger transaction. */
  batchSize?: number;
}

/** Records built by hand keep no source bytes: the ledger holds their JSON text, as JSONL. */
const HAND_BUILT: RecordOrigin = Object.freeze({
  format: 'jsonl',
  columns: Object.freeze([]),
  name: 'stream',
  encoding: UTF8,
});

/**
 * The batch sink as a Writable: rolls files at the limits and records every request in the ledger,
 * as `prepare` does. With `promptTemplate` upstream, the ledger is bound to the run's identity (a
 * ledger made with other options is refused with `BP_LEDGER_MISMATCH`; the same pipeline again
 * resumes, checking what complete files hold) and marked prepared once the last record is in, so
 * the CLI and `resultSource` work on it. Resolves `pipeline` once the last file is complete.
 */
export function batchSink(options: BatchSinkOptions): Writable {
  const { ledger } = options;
  const maxLines = options.maxLines ?? DEFAULT_MAX_LINES;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  checkLimits(maxLines, maxBytes);
  const batchSize = options.batchSize ?? 2000;
  let started: { writer: BatchWriter; run: StreamRun | undefined } | undefined;
  let pending: EncodedRequest[] = [];
  const flush = () => {
    if (pending.length > 0 && started) started.writer.writeChunk(toChunk(pending, started));
    pending = [];
  };
  const start = (run: StreamRun | undefined) => {
    const writer = run ? preparedRunWriter(options, run, maxLines, maxBytes) : handBuiltWriter(options);
    return { writer, run };
  };
  return new Writable({
    objectMode: true,
    write(item: EncodedRequest, _enc, done) {
      try {
        started ??= start(item.run);
        if (item.run !== started.run) {
          throw new BatchpipeError(
            ErrorCodes.USAGE,
            `batchSink takes the records of one source and one promptTemplate: record ${item.seq} (line ${item.line}) comes from another`,
          );
        }
        pending.push(item);
        if (pending.length >= batchSize) flush();
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    final(done) {
      try {
        if (!started) {
          throw new BatchpipeError(
            ErrorCodes.NO_RECORDS,
            'batchSink got no records: there is nothing to prepare',
          );
        }
        flush();
        const { writer, run } = started;
        writer.finish();
        if (run) {
          const origin = run.origin ?? HAND_BUILT;
          const totals = { read: writer.nextSeq, staged: writer.staged, rejected: writer.rejected };
          finishPreparedRun(ledger, totals, origin.format, origin.name);
        }
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

/** The writer of a run `promptTemplate` describes: the ledger bound to it as `prepare` binds it. */
function preparedRunWriter(
  options: BatchSinkOptions,
  run: StreamRun,
  maxLines: number,
  maxBytes: number,
): BatchWriter {
  const { ledger, outDir } = options;
  const origin = run.origin ?? HAND_BUILT;
  const identity = runIdentity(run.template, origin.format, { maxLines, maxBytes }, origin.encoding);
  if (options.endpoint !== undefined && options.endpoint !== identity.endpoint) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `batchSink's endpoint ${options.endpoint} differs from promptTemplate's ${identity.endpoint}; leave it out`,
    );
  }
  const { runId, resume } = openPreparedRun(ledger, identity, outDir);
  if (origin.format === 'csv') checkColumns(ledger, [...origin.columns], origin.name);
  return new BatchWriter({
    ledger,
    outDir,
    runId,
    endpoint: identity.endpoint,
    maxLines: linesPerFile(run.template, maxLines),
    maxBytes,
    source: origin.name,
    onReject: options.onReject ?? failOnReject(origin.name),
    firstFileNumber: resume.nextFileNumber,
    resumeSeq: resume.nextSeq,
  });
}

/**
 * The writer of requests built by hand (no `promptTemplate`): they are added after what the ledger
 * holds. Without a template the run has no identity, and batchpipe could not encode retries, so the
 * CLI does not take such a ledger.
 */
function handBuiltWriter(options: BatchSinkOptions): BatchWriter {
  const { ledger } = options;
  const runId = claimHandBuiltRunId(ledger);
  const writer = new BatchWriter({
    ledger,
    outDir: options.outDir,
    runId,
    endpoint: options.endpoint ?? '/v1/chat/completions',
    maxLines: options.maxLines ?? DEFAULT_MAX_LINES,
    maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
    source: HAND_BUILT.name,
    onReject: options.onReject ?? failOnReject(HAND_BUILT.name),
    firstFileNumber: ledger.files().length + 1,
  });
  writer.nextSeq = ledger.lastSeq() + 1;
  return writer;
}

/**
 * Packs encoded requests into the writer's column-wise chunk, as prepare's encoder makes it: each
 * record's source bytes (or, built by hand, its JSON text) and each request's tail. Seqs must
 * continue from the writer's.
 */
function toChunk(
  items: EncodedRequest[],
  sink: { writer: BatchWriter; run: StreamRun | undefined },
): EncodedChunk {
  const count = items.length;
  const nextSeq = sink.writer.nextSeq;
  const keepsSource = sink.run?.origin !== undefined;
  const records: Uint8Array[] = [];
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
    const record = keepsSource ? sourceOf(item) : Buffer.from(JSON.stringify(item.record));
    records.push(record);
    starts[i] = recordBytes;
    recordBytes += record.byteLength;
    ends[i] = recordBytes;
    ids.push(item.customId ?? null);
    if (item.reject || item.json === undefined || item.customId === undefined) {
      rejects.push({
        index: i,
        ...(item.reject ?? { code: ErrorCodes.INVALID_REQUEST, message: 'no encoded request' }),
      });
    } else {
      const head = joinRequestLine(item.customId, '');
      if (!item.json.startsWith(head)) {
        throw new BatchpipeError(
          ErrorCodes.USAGE,
          `batchSink needs request lines that start ${head} (as jsonlEncode writes them): record ${item.seq} (line ${item.line}) does not`,
        );
      }
      const tail = item.json.slice(head.length);
      tails.push(tail);
      tailBytes += Buffer.byteLength(tail);
      tokens[i] = estimateTokens(tail);
    }
    tailEnds[i] = tailBytes;
  }
  return {
    count,
    lines: Int32Array.from(items, (item) => item.line),
    source: Buffer.concat(records, recordBytes),
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

/** A source's record must come with its bytes: they are what the ledger keeps. */
function sourceOf(item: EncodedRequest): Uint8Array {
  if (item.source) return item.source;
  throw new BatchpipeError(
    ErrorCodes.USAGE,
    `record ${item.seq} (line ${item.line}) came from a source but lost its source bytes; a stage that changes records must drop both \`source\` and \`origin\` (the records are then kept as JSON)`,
  );
}

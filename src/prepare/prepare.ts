import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { extname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { dialectOf } from '../dialects/index.js';
import { BatchpipeError, ErrorCodes, ioError } from '../errors.js';
import type { EventListener } from '../events.js';
import type { Ledger } from '../ledger/ledger.js';
import { BatchWriter, failOnReject } from '../sink/batch-writer.js';
import { type Chunk, recordChunks } from '../sources/chunker.js';
import { splitCsvHeader } from '../sources/csv-header.js';
import { normalizeEncoding, UTF8 } from '../sources/encoding.js';
import { openInput } from '../sources/input.js';
import { jsonArrayChunks } from '../sources/json-array.js';
import { compileRequestBuilder, type RequestTemplateOptions } from '../transforms/request-builder.js';
import { templateNeedsPerRecordValidation } from '../transforms/request-probe.js';
import { columnFieldResolver } from '../transforms/template.js';
import { type ChunkSink, inlineSink, threadedSink } from './chunk-sinks.js';
import type { EncodeContext } from './encode-chunk.js';
import {
  checkColumns,
  checkLimits,
  finishPreparedRun,
  linesPerFile,
  openPreparedRun,
  templateOptions,
} from './prepare-run.js';
import { openRejectsFile } from './rejects-file.js';
import { changedInputError } from './resume.js';
import { runIdentity } from './run-identity.js';

export { DEFAULT_MAX_BYTES, DEFAULT_MAX_LINES } from '../validate/file-rules.js';

export type InputFormat = 'csv' | 'jsonl' | 'json';

/**
 * Records are parsed and encoded in chunks of about this size. Small enough that a chunk's
 * short-lived objects die young in each thread's heap (1 MB chunks promoted them and cost a third
 * more CPU and 50 MB more RSS), large enough that per-chunk overheads vanish.
 */
const DEFAULT_CHUNK_BYTES = 256 * 1024;
/** Bytes per read of a file input (see where the input is opened). */
const READ_BYTES = 64 * 1024;

export interface PrepareOptions extends RequestTemplateOptions {
  /** A path, `-` for stdin, or a byte stream. */
  input: string | Readable | AsyncIterable<Buffer>;
  /** Name used in messages; defaults to the path (or `-`). */
  inputName?: string | undefined;
  inputFormat?: InputFormat | undefined;
  /**
   * JSON input: the dotted path of object keys leading to the array of records (`data.items`); without
   * it the array is the top-level value.
   */
  jsonPath?: string | undefined;
  /**
   * The input's encoding, any iconv-lite knows (`windows-1252`, `latin1`, `macintosh`, `utf-16le`, …);
   * default UTF-8, or UTF-16 when a BOM says so. Records are decoded to UTF-8 before parsing.
   */
  encoding?: string | undefined;
  ledger: Ledger;
  outDir: string;
  maxLines?: number | undefined;
  maxBytes?: number | undefined;
  /** Set bad records aside in this JSONL file instead of stopping at the first. */
  rejectsPath?: string | undefined;
  /** Encode threads: 0 encodes in this thread; default picks by input size and cores. */
  threads?: number | undefined;
  /** Target chunk size in bytes (tests use small chunks to exercise boundaries). */
  chunkBytes?: number | undefined;
  onProgress?: ((progress: { read: number; staged: number; rejected: number }) => void) | undefined;
  /** Hears `prepare.progress` (a chunk at a time) and `file.written` events. */
  onEvent?: EventListener | undefined;
}

export interface PrepareSummary {
  runId: string;
  format: InputFormat;
  /** Input records seen; always `staged + rejected`. */
  read: number;
  staged: number;
  rejected: number;
  /** Complete request files of the run. */
  files: number;
  /** Records that an earlier, interrupted run had already put in complete files. */
  resumedFrom: number;
}

/**
 * The `prepare` flow: source → template → validate → encode → rolled files + ledger. Parsing and
 * encoding run on worker threads in record-aligned chunks; this thread keeps order, the files and the
 * ledger. Safe to run again after a crash: complete files are kept and the rest is redone.
 */
export async function prepare(options: PrepareOptions): Promise<PrepareSummary> {
  const source = options.inputName ?? (typeof options.input === 'string' ? options.input : '-');
  // The provider's own limits per batch are the default and the most a flag may ask for.
  const { limits } = dialectOf(options.provider);
  const maxLines = options.maxLines ?? limits.maxLines;
  const maxBytes = options.maxBytes ?? limits.maxBytes;
  checkLimits(maxLines, maxBytes, limits);
  const encoding = options.encoding === undefined ? undefined : normalizeEncoding(options.encoding);
  compileRequestBuilder(options); // fail on bad templates before touching the ledger or the input
  try {
    mkdirSync(options.outDir, { recursive: true });
  } catch (err) {
    throw ioError('create the folder', options.outDir, err);
  }

  // Reads smaller than a chunk: each read's buffer is new memory, and below the bin's 128 KB malloc
  // mmap threshold it is reused heap rather than pages mapped, faulted in and unmapped per read.
  // Larger reads only held more input at once, for no speed.
  const input = await openInput(options.input, {
    name: source,
    readBytes: READ_BYTES,
    encoding,
  });
  if (input.head === undefined) {
    throw new BatchpipeError(ErrorCodes.NO_RECORDS, 'the input is empty: there are no records to prepare', {
      file: source,
    });
  }
  // The first bytes decide the format; CSV is chunked honouring quotes, JSONL at every newline.
  const format = options.inputFormat ?? detectFormat(source, input.head, options.jsonPath);
  const jsonPath = checkJsonPath(format, options.jsonPath);
  const identity = runIdentity(options, format, { maxLines, maxBytes }, input.encoding, jsonPath);
  const { ledger } = options;
  const { runId, resume } = openPreparedRun(ledger, identity, options.outDir);
  const chunking = {
    targetBytes: options.chunkBytes ?? DEFAULT_CHUNK_BYTES,
    startOffset: input.startOffset,
    // A record larger than a request file can hold is set aside as soon as that is known, without
    // holding it: skipped to its end with --rejects, else the run stops there. While a large record
    // grows it waits on disk beside the request files (a resumed run sweeps it up if left behind).
    maxRecordBytes: maxBytes,
    onOversize: options.rejectsPath === undefined ? ('stop' as const) : ('skip' as const),
    spillPath: () => join(options.outDir, `.${runId}-record.partial`),
  };
  const chunks = (
    format === 'json'
      ? jsonArrayChunks(input.bytes, {
          ...chunking,
          name: source,
          path: jsonPath ?? [],
          encoding: input.encoding,
        })
      : recordChunks(input.bytes, { ...chunking, syntax: format === 'csv' ? 'csv' : 'lines' })
  )[Symbol.asyncIterator]();
  const first = await chunks.next();
  const firstChunk: Chunk | undefined = first.done ? undefined : first.value;

  let columns: string[] = [];
  let pendingFirst: Chunk | undefined = firstChunk;
  if (format === 'csv' && firstChunk) {
    ({ columns, body: pendingFirst } = splitCsvHeader(firstChunk, source, input.encoding, maxBytes));
    checkColumns(ledger, columns, source);
    compileRequestBuilder(options, columnFieldResolver(columns)); // every placeholder must name a column
  }

  const threads = ledger.path === ':memory:' ? 0 : (options.threads ?? defaultThreads(input.size));
  const template = templateOptions(options);
  const ctx: EncodeContext = {
    format,
    columns,
    template,
    source,
    validateEach: templateNeedsPerRecordValidation(template),
    encoding: input.encoding,
  };
  const writerOptions = {
    outDir: options.outDir,
    runId,
    endpoint: identity.endpoint,
    wireId: dialectOf(identity.provider).wireId,
    maxLines: linesPerFile(template, maxLines),
    maxBytes,
    source,
    firstFileNumber: resume.nextFileNumber,
    resumeSeq: resume.nextSeq,
  };
  const rejects =
    options.rejectsPath === undefined
      ? undefined
      : openRejectsFile(options.rejectsPath, format === 'csv' ? 'csv' : 'jsonl', columns, ledger);
  const writer = new BatchWriter({
    ...writerOptions,
    ledger,
    onReject: rejects?.write ?? failOnReject(source),
    onFileWritten: options.onEvent,
  });
  const progress = progressTeller(options.onEvent, writer, input.encoding === UTF8 ? input.size : undefined);
  const sink: ChunkSink = threads > 0 ? threadedSink(ctx, threads, writer) : inlineSink(ctx, writer);
  let totals: { read: number; staged: number; rejected: number };
  try {
    if (pendingFirst && holdsRecords(pendingFirst)) {
      await sink.submit(pendingFirst);
      progress?.(pendingFirst);
    }
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
      if (!holdsRecords(next.value)) continue;
      await sink.submit(next.value);
      progress?.(next.value);
    }
    totals = await sink.finish();
    progress?.(undefined);
    options.onProgress?.(totals);
  } catch (err) {
    await chunks.return(undefined); // let the reader remove a spilled record
    await sink.abort();
    throw changedInputError(err, ledger, resume, source);
  } finally {
    rejects?.close();
  }

  finishPreparedRun(ledger, totals, format, source);
  return {
    runId,
    format,
    read: totals.read,
    staged: totals.staged,
    rejected: totals.rejected,
    files: ledger.files({ complete: true }).length,
    resumedFrom: resume.nextSeq,
  };
}

/**
 * Tells `prepare.progress` after each chunk handed to the encoders (and once more at the end, with
 * the final counts); undefined when nobody listens. Records count what the writer has written so
 * far, so with encode threads they trail the bytes by the chunks in flight.
 */
function progressTeller(
  onEvent: EventListener | undefined,
  writer: BatchWriter,
  totalBytes: number | undefined,
): ((chunk: Chunk | undefined) => void) | undefined {
  if (onEvent === undefined) return undefined;
  let bytesRead = 0;
  return (chunk) => {
    if (chunk) bytesRead = chunk.offset + (chunk.oversize?.bytes ?? chunk.bytes.length);
    else if (totalBytes !== undefined) bytesRead = totalBytes;
    const { staged, rejected } = writer;
    onEvent({
      type: 'prepare.progress',
      bytesRead,
      totalBytes,
      records: staged + rejected,
      staged,
      rejected,
    });
  };
}

function holdsRecords(chunk: Chunk): boolean {
  return chunk.bytes.length > 0 || chunk.oversize !== undefined;
}

/** Two encode threads pay off only when there is enough input to amortise their start. */
function defaultThreads(size: number | undefined): number {
  if (size !== undefined && size < 4 << 20) return 0;
  // One worker plus this thread, which encodes whenever the worker is busy: two busy threads on
  // two cores, and one isolate's memory less than two workers.
  return Math.max(1, Math.min(2, availableParallelism()) - 1);
}

/**
 * `--input-format`, else the file extension, else the first non-blank byte: `[` means a JSON array,
 * `{` JSONL (or a JSON object holding the array, with --json-path). A `.json` file is a JSON array, or
 * an object holding one with --json-path; one starting with `{` without --json-path is read as JSONL,
 * as many `.json` exports are one object a line.
 */
export function detectFormat(name: string, head: Buffer | undefined, jsonPath?: string): InputFormat {
  const ext = extname(name).toLowerCase();
  if (ext === '.csv' || ext === '.tsv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  const text = head?.subarray(0, 64).toString('utf8').trimStart() ?? '';
  if (jsonPath !== undefined) return 'json';
  if (text.startsWith('[')) return 'json';
  if (text.startsWith('{') || ext === '.json') return 'jsonl';
  return 'csv';
}

/** The keys of `--json-path`, which only JSON input takes. */
function checkJsonPath(format: InputFormat, jsonPath: string | undefined): string[] | undefined {
  if (jsonPath === undefined) return undefined;
  if (format !== 'json') {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `--json-path is for JSON input; this input is read as ${format}`,
    );
  }
  const keys = jsonPath.split('.');
  if (keys.some((k) => k === '')) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `--json-path must be keys joined by dots (data.items), got ${JSON.stringify(jsonPath)}`,
    );
  }
  return keys;
}

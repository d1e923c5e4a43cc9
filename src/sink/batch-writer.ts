import { createHash, type Hash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BatchpipeError, ErrorCodes, ioError } from '../errors.js';
import type { FileWrittenEvent } from '../events.js';
import { asBuffer } from '../internal/bytes.js';
import type { KeptRecord, Ledger, StagedRow } from '../ledger/ledger.js';
import { derivedCustomId } from '../transforms/request-builder.js';
import type { Reject } from '../types.js';
import type { EncodedChunk } from './encoded-chunk.js';

export interface BatchWriterOptions {
  ledger: Ledger;
  outDir: string;
  /** Names the files: `<runId>-a<attempt>-<nnnnn>.jsonl`. */
  runId: string;
  endpoint: string;
  attempt?: number;
  maxLines: number;
  maxBytes: number;
  /** Input name for error messages (`-` for stdin). */
  source: string;
  /** Called for each rejected record; throw to stop the run (the default policy). */
  onReject: (reject: Reject) => void;
  /** Number of the first file to write (files already complete keep theirs). */
  firstFileNumber?: number;
  /** Records below this seq are already in complete files: check them, write nothing. */
  resumeSeq?: number;
  /**
   * Retry files: the requests already exist in the ledger (the chunk's seqs and ids come from
   * `writeChunk`'s `known`), so they are moved into the new file instead of inserted.
   */
  restage?: boolean;
  /** Hears of each file once it is complete (after the transaction that records it commits). */
  onFileWritten?: ((file: FileWrittenEvent) => void) | undefined;
  /**
   * The `custom_id` the provider is sent for an id it would refuse (its dialect's `wireId`): the file
   * holds that, the ledger the user's id.
   */
  wireId?: ((customId: string) => string | undefined) | undefined;
}

/** For restaging: the ledger seq and custom_id of each record of a chunk. */
export interface KnownRequests {
  seqs: readonly number[];
  customIds: readonly string[];
}

interface OpenFile {
  id: number;
  name: string;
  finalPath: string;
  tempPath: string;
  fd: number;
  model: string | null;
  lines: number;
  bytes: number;
  tokens: number;
  hash: Hash;
  /** Heads (strings) and tails (bytes) not yet written, and their total size. */
  pending: (string | Uint8Array)[];
  pendingBytes: number;
}

const NEWLINE = '\n';

/**
 * The batch sink's core: appends requests to the current file, rolling to a new one before a request
 * would pass `maxLines` or `maxBytes` (or when the model changes: one model per file), and records
 * each request in the ledger in the same transaction. A file is written under a temporary name,
 * fsynced and renamed before the transaction that marks it complete commits, so after a crash the
 * ledger never calls a file complete that is not whole on disk.
 */
export class BatchWriter {
  private current: OpenFile | undefined;
  private fileNumber: number;
  private readonly attempt: number;
  private readonly resumeSeq: number;
  /** Lines written to a file's pending bytes, not yet recorded in the ledger. */
  private unrecorded: (StagedRow & { file: OpenFile; piece: number; bytes: number; tokens: number })[] = [];
  /** Files completed in the current transaction, told to `onFileWritten` once it commits. */
  private written: FileWrittenEvent[] = [];
  /** A kept record that came cut off: an error unless the input ends there. */
  private cutShort: { seq: number; line: number; error: BatchpipeError } | undefined;
  /** Where `flush` assembles a chunk's lines. */
  private flushBuffer: Buffer = Buffer.allocUnsafeSlow(0);
  /** The seq the next record gets. */
  nextSeq = 0;
  staged = 0;
  rejected = 0;

  constructor(private readonly options: BatchWriterOptions) {
    this.attempt = options.attempt ?? 1;
    this.fileNumber = options.firstFileNumber ?? 1;
    this.resumeSeq = options.resumeSeq ?? 0;
    onDisk('create the folder', options.outDir, () => mkdirSync(options.outDir, { recursive: true }));
  }

  /** Writes one encoded chunk (chunks must come in input order) in one ledger transaction. */
  writeChunk(chunk: EncodedChunk, known?: KnownRequests): void {
    const source = asBuffer(chunk.source);
    const tails = chunk.tails;
    let nextReject = 0;
    if (this.written.length > 0) this.written = []; // only what a committed transaction completed is told
    this.options.ledger.transaction(() => {
      for (let i = 0; i < chunk.count; i++) {
        if (this.cutShort) throw this.cutShort.error; // a record after it: the input changed there
        const seq = known ? known.seqs[i]! : this.nextSeq++;
        const line = chunk.lines[i]!;
        const record = source.subarray(chunk.starts[i], chunk.ends[i]);
        const reject = chunk.rejects[nextReject];
        if (reject?.index === i) {
          nextReject++;
          if (seq < this.resumeSeq) {
            this.verifyKept(seq, line, record, { code: reject.code });
            continue;
          }
          this.reject({
            seq,
            line,
            code: reject.code,
            message: reject.message,
            field: reject.field,
            record: record.toString(),
          });
          continue;
        }
        const customId = known ? known.customIds[i]! : (chunk.ids[i] ?? derivedCustomId(seq));
        const tail = tails.subarray(i === 0 ? 0 : chunk.tailEnds[i - 1], chunk.tailEnds[i]);
        if (seq < this.resumeSeq) {
          this.verifyKept(seq, line, record, { customId, bytes: lineBytes(this.headOf(customId), tail) });
          continue;
        }
        const model = chunk.models ? chunk.models[i]! : chunk.model;
        this.stage(seq, line, customId, model, tail, chunk.tokens[i]!, record);
      }
      this.flush();
    });
    this.tellWritten();
  }

  /**
   * Closes the last file; `endSeq` is the seq after the last record read. An input that ended
   * before the records an earlier run already put in complete files is refused.
   */
  finish(): void {
    if (this.cutShort || this.nextSeq < this.resumeSeq) {
      const given = this.cutShort
        ? `${this.cutShort.seq} records and a cut-off one on line ${this.cutShort.line}`
        : `${this.nextSeq} records`;
      throw new BatchpipeError(
        ErrorCodes.INPUT_CHANGED,
        `the input is shorter than the run this ledger records: the ledger holds ${this.resumeSeq} records from it in complete files, the input gave ${given}; resume with the whole input, or use a new --ledger for new input`,
        { file: this.options.source },
      );
    }
    if (this.written.length > 0) this.written = [];
    this.options.ledger.transaction(() => this.closeFile(this.nextSeq));
    this.tellWritten();
  }

  private tellWritten(): void {
    const written = this.written;
    if (written.length === 0) return;
    this.written = [];
    for (const file of written) this.options.onFileWritten?.(file);
  }

  private stage(
    seq: number,
    line: number,
    customId: string,
    model: string | null,
    tail: Uint8Array,
    tokens: number,
    record: Buffer,
  ): void {
    const { maxLines, maxBytes } = this.options;
    const head = this.headOf(customId);
    const bytes = lineBytes(head, tail);
    if (bytes > maxBytes) {
      this.reject({
        seq,
        line,
        code: ErrorCodes.REQUEST_TOO_LARGE,
        message: `request is ${bytes} bytes, over the per-file limit of ${maxBytes} bytes`,
        record: record.toString(),
      });
      return;
    }
    let file = this.current;
    if (file && (file.lines + 1 > maxLines || file.bytes + bytes > maxBytes || file.model !== model)) {
      this.closeFile(seq);
      file = undefined;
    }
    file ??= this.openFile(seq, model);
    // Written optimistically; recordStaged() takes a line back out if its custom_id turns out taken.
    this.unrecorded.push({
      seq,
      line,
      customId,
      record,
      fileId: file.id,
      file,
      piece: file.pending.length,
      bytes,
      tokens,
    });
    file.pending.push(head, tail, NEWLINE);
    file.pendingBytes += bytes;
    file.lines++;
    file.bytes += bytes;
    file.tokens += tokens;
    this.staged++;
    if (this.unrecorded.length >= 256) this.recordStaged();
  }

  /** The start of a request line: its `custom_id` as the provider is sent it. */
  private headOf(customId: string): string {
    return requestHead(this.options.wireId?.(customId) ?? customId);
  }

  /** Records the staged lines in the ledger; a duplicate custom_id loses its line and is rejected. */
  private recordStaged(): void {
    const rows = this.unrecorded;
    if (rows.length === 0) return;
    this.unrecorded = [];
    const { ledger } = this.options;
    const lost = this.options.restage
      ? rows.filter((r) => !ledger.assignFile(r.seq, r.fileId)).map((r) => r.seq)
      : ledger.insertRequests(rows);
    for (const seq of lost) {
      const row = rows.find((r) => r.seq === seq)!;
      const { file } = row;
      file.pending[row.piece] = '';
      file.pending[row.piece + 1] = '';
      file.pending[row.piece + 2] = '';
      file.pendingBytes -= row.bytes;
      file.lines--;
      file.bytes -= row.bytes;
      file.tokens -= row.tokens;
      this.staged--;
      const first = ledger.requestById(row.customId);
      this.reject({
        seq,
        line: row.line,
        code: ErrorCodes.DUPLICATE_ID,
        message: `duplicate custom_id ${JSON.stringify(row.customId)} (first on line ${first?.line ?? '?'})`,
        field: 'custom_id',
        record: row.record.toString(),
      });
    }
  }

  private reject(item: Reject): void {
    // Settle earlier lines first, so duplicates among them are rejected in input order too.
    this.recordStaged();
    this.options.onReject(item);
    this.options.ledger.insertReject(item);
    this.rejected++;
  }

  /**
   * A record an earlier run already accounted for (before the end of its last complete file) must be
   * the same record now, byte for byte on the same line, with the same fate: the same request, or a
   * reject with the same code. It is counted, and nothing is written: its request is in a kept file,
   * its reject in the ledger (and the rejects file starts as a copy of the ledger's).
   */
  private verifyKept(
    seq: number,
    line: number,
    record: Buffer,
    now: { code: string } | { customId: string; bytes: number },
  ): void {
    const { ledger, maxBytes } = this.options;
    const kept = ledger.keptRecord(seq);
    // What this run makes of the record: the encoder's reject, or one of the writer's own two.
    const code =
      'code' in now
        ? now.code
        : now.bytes > maxBytes
          ? ErrorCodes.REQUEST_TOO_LARGE
          : kept?.kind === 'reject' && (ledger.requestById(now.customId)?.seq ?? seq) !== seq
            ? ErrorCodes.DUPLICATE_ID
            : undefined;
    const what = keptDifference(
      kept,
      line,
      record,
      'code' in now ? { code } : { code, customId: now.customId },
    );
    if (what === undefined) {
      if (kept!.kind === 'request') this.staged++;
      else this.rejected++;
      return;
    }
    const error = new BatchpipeError(
      ErrorCodes.INPUT_CHANGED,
      `the input differs from the run this ledger records: record ${seq} has ${what}; use a new --ledger for new input`,
      { file: this.options.source, line, seq },
    );
    // The start of the kept record and nothing after it: a cut-off input, told as such by finish().
    const keptBytes = kept && Buffer.from(kept.record);
    if (
      keptBytes &&
      record.length < keptBytes.length &&
      keptBytes.subarray(0, record.length).equals(record)
    ) {
      this.cutShort = { seq, line, error };
      return;
    }
    throw error;
  }

  private openFile(firstSeq: number, model: string | null): OpenFile {
    const { ledger, outDir, runId, endpoint } = this.options;
    const name = `${runId}-a${this.attempt}-${String(this.fileNumber++).padStart(5, '0')}.jsonl`;
    const finalPath = join(outDir, name);
    const tempPath = join(outDir, `.${name}.partial`);
    const fd = onDisk('write', tempPath, () => openSync(tempPath, 'w'));
    const id = ledger.insertFile({ name, path: finalPath, model, endpoint, attempt: this.attempt, firstSeq });
    this.current = {
      id,
      name,
      finalPath,
      tempPath,
      fd,
      model,
      lines: 0,
      bytes: 0,
      tokens: 0,
      hash: createHash('sha256'),
      pending: [],
      pendingBytes: 0,
    };
    return this.current;
  }

  /** Writes the pending heads and tails as one buffer: one hash update and one write per chunk. */
  private flush(): void {
    this.recordStaged();
    const file = this.current;
    if (!file || file.pendingBytes === 0) return;
    // One buffer, kept and grown, for every flush: a fresh one per chunk is a large allocation that
    // malloc may map and unmap each time (with the bin's fixed mmap threshold), page faults included.
    if (this.flushBuffer.length < file.pendingBytes) {
      this.flushBuffer = Buffer.allocUnsafeSlow(Math.max(file.pendingBytes, 2 * this.flushBuffer.length));
    }
    const out = this.flushBuffer.subarray(0, file.pendingBytes);
    let offset = 0;
    for (const piece of file.pending) {
      if (typeof piece === 'string') offset += out.write(piece, offset);
      else {
        out.set(piece, offset);
        offset += piece.byteLength;
      }
    }
    file.pending = [];
    file.pendingBytes = 0;
    file.hash.update(out);
    onDisk('write', file.tempPath, () => writeSync(file.fd, out));
  }

  private closeFile(endSeq: number): void {
    const file = this.current;
    if (!file) return;
    this.flush();
    onDisk('write', file.tempPath, () => {
      fsyncSync(file.fd);
      closeSync(file.fd);
    });
    if (file.lines === 0) {
      // Every record meant for this file was rejected: leave no empty file behind.
      rmSync(file.tempPath, { force: true });
      this.options.ledger.deleteFile(file.id);
      this.fileNumber--;
    } else {
      onDisk('write', file.finalPath, () => renameSync(file.tempPath, file.finalPath));
      this.options.ledger.completeFile(file.id, {
        lines: file.lines,
        bytes: file.bytes,
        tokens: file.tokens,
        sha256: file.hash.digest('hex'),
        endSeq,
      });
      if (this.options.onFileWritten) {
        this.written.push({
          type: 'file.written',
          file: file.name,
          path: file.finalPath,
          attempt: this.attempt,
          requests: file.lines,
          bytes: file.bytes,
          tokens: file.tokens,
          model: file.model,
        });
      }
    }
    this.current = undefined;
  }
}

/**
 * How a record read now differs from what the ledger kept of it, or `undefined` when it is the same:
 * same fate (request with the same custom_id, or reject with the same code), same bytes, same line.
 * A reject's record is kept as text, so it is compared as text.
 */
function keptDifference(
  kept: KeptRecord | undefined,
  line: number,
  record: Buffer,
  now: { code: string | undefined; customId?: string },
): string | undefined {
  if (kept === undefined) return 'nothing in the ledger';
  if (kept.kind === 'request') {
    if (now.code !== undefined) return `${now.code} now, the ledger has a request there`;
    if (kept.customId !== now.customId) {
      return `custom_id ${JSON.stringify(now.customId)}, the ledger has ${JSON.stringify(kept.customId)}`;
    }
    if (!record.equals(kept.record)) return 'different content from the ledger';
  } else {
    if (now.code !== kept.code)
      return `${now.code ?? 'a valid request'} now, the ledger has it rejected with ${kept.code}`;
    if (record.toString() !== kept.record) return 'different content from the ledger';
  }
  return kept.line === line ? undefined : `line ${line}, the ledger has line ${kept.line}`;
}

/** A request line's start; the encoder made the rest (the tail). */
function requestHead(customId: string): string {
  return `{"custom_id":${JSON.stringify(customId)},`;
}

/** The bytes of a request line: head, tail and newline. */
function lineBytes(head: string, tail: Uint8Array): number {
  return Buffer.byteLength(head) + tail.byteLength + 1;
}

/** The default reject policy: the first bad record stops the run, naming file, line and field. */
export function failOnReject(source: string): (reject: Reject) => void {
  return (reject) => {
    // A message that already names its column (an encoding error does) is not told it twice.
    const named = reject.field === undefined || reject.message.includes(`(column ${reject.field})`);
    const field = named ? '' : ` [${reject.field}]`;
    throw new BatchpipeError(reject.code, `${reject.message}${field}`, {
      file: source,
      line: reject.line,
      seq: reject.seq,
      field: reject.field,
    });
  };
}

/** A file operation of the sink; its failure (a full disk, a folder that cannot be made) names the path. */
function onDisk<T>(action: string, path: string, op: () => T): T {
  try {
    return op();
  } catch (err) {
    throw ioError(action, path, err);
  }
}

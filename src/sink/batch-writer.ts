import { createHash, type Hash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { Ledger } from '../ledger/ledger.js';
import { derivedCustomId } from '../transforms/request-builder.js';

/** A request ready for a file: the encoded tail plus what the ledger keeps. */
export interface StagedItem {
  seq: number;
  line: number;
  /** Undefined: derive from `seq`. */
  customId: string | undefined;
  model: string | undefined;
  /** The request line's JSON after `{"custom_id":…,` (see joinRequestLine). */
  tail: string;
  tailBytes: number;
  tokens: number;
  recordJson: string;
}

/** A record set aside with why; `record` is its JSON text (or the raw source text when unparsable). */
export interface RejectedItem {
  seq: number;
  line: number;
  code: string;
  message: string;
  field?: string | undefined;
  record: string;
}

export type WriterItem = ({ kind: 'staged' } & StagedItem) | ({ kind: 'rejected' } & RejectedItem);

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
  onReject: (reject: RejectedItem) => void;
  /** Number of the first file to write (files already complete keep theirs). */
  firstFileNumber?: number;
}

interface OpenFile {
  id: number;
  name: string;
  finalPath: string;
  tempPath: string;
  fd: number;
  model: string | undefined;
  lines: number;
  bytes: number;
  tokens: number;
  hash: Hash;
  pending: string[];
}

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
  staged = 0;
  rejected = 0;
  filesWritten: string[] = [];

  constructor(private readonly options: BatchWriterOptions) {
    this.attempt = options.attempt ?? 1;
    this.fileNumber = options.firstFileNumber ?? 1;
  }

  /** Writes a batch of items (in seq order) in one ledger transaction. */
  write(items: readonly WriterItem[]): void {
    const { ledger } = this.options;
    ledger.transaction(() => {
      for (const item of items) {
        if (item.kind === 'rejected') this.reject(item);
        else this.stage(item);
      }
      this.flush();
    });
  }

  /** Closes the last file; `endSeq` is the seq after the last record read. */
  finish(endSeq: number): void {
    this.options.ledger.transaction(() => this.closeFile(endSeq));
  }

  private stage(item: StagedItem): void {
    const { ledger, maxLines, maxBytes } = this.options;
    const customId = item.customId ?? derivedCustomId(item.seq);
    const head = `{"custom_id":${JSON.stringify(customId)},`;
    const bytes = Buffer.byteLength(head) + item.tailBytes + 1;
    if (bytes > maxBytes) {
      this.reject({
        seq: item.seq,
        line: item.line,
        code: ErrorCodes.REQUEST_TOO_LARGE,
        message: `request is ${bytes} bytes, over the per-file limit of ${maxBytes} bytes`,
        record: item.recordJson,
      });
      return;
    }
    let file = this.current;
    if (file && (file.lines + 1 > maxLines || file.bytes + bytes > maxBytes || file.model !== item.model)) {
      this.closeFile(item.seq);
      file = undefined;
    }
    file ??= this.openFile(item.seq, item.model);
    if (!ledger.insertRequest(item.seq, item.line, customId, item.recordJson, file.id)) {
      const first = ledger.requestById(customId);
      this.reject({
        seq: item.seq,
        line: item.line,
        code: ErrorCodes.DUPLICATE_ID,
        message: `duplicate custom_id ${JSON.stringify(customId)} (first on line ${first?.line ?? '?'})`,
        field: 'custom_id',
        record: item.recordJson,
      });
      return;
    }
    file.pending.push(head, item.tail, '\n');
    file.lines++;
    file.bytes += bytes;
    file.tokens += item.tokens;
    this.staged++;
  }

  private reject(item: RejectedItem): void {
    this.options.onReject(item);
    this.options.ledger.insertReject({ ...item, field: item.field ?? null });
    this.rejected++;
  }

  private openFile(firstSeq: number, model: string | undefined): OpenFile {
    const { ledger, outDir, runId, endpoint } = this.options;
    const name = `${runId}-a${this.attempt}-${String(this.fileNumber++).padStart(5, '0')}.jsonl`;
    const finalPath = join(outDir, name);
    const tempPath = join(outDir, `.${name}.partial`);
    const fd = openSync(tempPath, 'w');
    const id = ledger.insertFile({
      name,
      path: finalPath,
      model: model ?? null,
      endpoint,
      attempt: this.attempt,
      firstSeq,
    });
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
    };
    return this.current;
  }

  private flush(): void {
    const file = this.current;
    if (!file || file.pending.length === 0) return;
    const text = file.pending.join('');
    file.pending = [];
    file.hash.update(text);
    writeSync(file.fd, text);
  }

  private closeFile(endSeq: number): void {
    const file = this.current;
    if (!file) return;
    this.flush();
    fsyncSync(file.fd);
    closeSync(file.fd);
    if (file.lines === 0) {
      // Every record of this file was rejected: leave no empty file behind.
      rmSync(file.tempPath, { force: true });
      this.options.ledger.db.prepare('DELETE FROM files WHERE id = ?').run(file.id);
      this.fileNumber--;
    } else {
      renameSync(file.tempPath, file.finalPath);
      this.options.ledger.completeFile(file.id, {
        lines: file.lines,
        bytes: file.bytes,
        tokens: file.tokens,
        sha256: file.hash.digest('hex'),
        endSeq,
      });
      this.filesWritten.push(file.finalPath);
    }
    this.current = undefined;
  }
}

/** Thrown by the default reject policy: the first bad record stops the run. */
export function failOnReject(source: string): (reject: RejectedItem) => void {
  return (reject) => {
    throw new BatchpipeError(reject.code as never, reject.message, {
      file: source,
      line: reject.line,
      seq: reject.seq,
      field: reject.field,
    });
  };
}

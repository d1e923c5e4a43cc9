/**
 * Ledger worker: owns the ledger connection and the request files while encode workers run. Chunks
 * arrive from the encode workers' ports in any order and are written strictly in input order.
 * Messages to the main thread: `{ done, staged, rejected }` per chunk, then `{ finished }`, or `{ error }`.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { Ledger } from '../ledger/ledger.js';
import { BatchWriter, type BatchWriterOptions, failOnReject } from '../sink/batch-writer.js';
import type { EncodedChunk } from './encode-chunk.js';
import { openRejectsFile } from './rejects-file.js';
import { type ErrorData, errorToData } from './thread-errors.js';

export interface LedgerWorkerData {
  ledgerPath: string;
  writer: Omit<BatchWriterOptions, 'ledger' | 'onReject'>;
  rejectsPath?: string | undefined;
  format: 'csv' | 'jsonl';
  columns: string[];
}

const data = workerData as LedgerWorkerData;
const ledger = Ledger.open(data.ledgerPath);
const rejects =
  data.rejectsPath === undefined ? undefined : openRejectsFile(data.rejectsPath, data.format, data.columns);
const writer = new BatchWriter({
  ...data.writer,
  ledger,
  onReject: rejects ? rejects.write : failOnReject(data.writer.source),
});
const waiting = new Map<number, EncodedChunk>();
let next = 0;
let total: number | undefined;
let failed = false;

function fail(error: ErrorData): void {
  if (failed) return;
  failed = true;
  parentPort!.postMessage({ error });
}

function drain(): void {
  try {
    for (let chunk = waiting.get(next); chunk !== undefined && !failed; chunk = waiting.get(next)) {
      waiting.delete(next);
      writer.writeChunk(chunk);
      parentPort!.postMessage({ done: next, staged: writer.staged, rejected: writer.rejected });
      next++;
    }
    if (!failed && total !== undefined && next === total) {
      writer.finish();
      rejects?.close();
      ledger.close();
      parentPort!.postMessage({
        finished: { staged: writer.staged, rejected: writer.rejected, read: writer.nextSeq },
      });
    }
  } catch (err) {
    fail(errorToData(err));
  }
}

parentPort!.on('message', (msg: { port: MessagePort } | { end: number }) => {
  if ('port' in msg) {
    msg.port.on('message', (m: { index: number; chunk?: EncodedChunk; error?: ErrorData }) => {
      if (m.error) return fail(m.error);
      waiting.set(m.index, m.chunk!);
      drain();
    });
    return;
  }
  total = msg.end;
  drain();
});

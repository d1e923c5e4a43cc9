/**
 * CSV pages formatted on a worker thread while this thread reads the next pages from the ledger:
 * `batchpipe results` spends about as long formatting as reading, so the two overlap. Only the
 * packed pages' bytes and JSON text cross threads (cloning row objects would cost what it saves).
 */
import { Worker } from 'node:worker_threads';
import type { PackedPage, RequestOutcomeRow } from '../ledger/ledger.js';
import { unpackOutcomePage } from '../ledger/ledger.js';
import { errorFromData } from '../prepare/thread-errors.js';
import type { FormatWorkerReply } from './format-worker.js';
import type { LedgerRow } from './ledger-rows.js';
import type { CsvPageConfig } from './write-results.js';

/** Pages queued on the worker at most; beyond that this thread formats the next one itself. */
const WORKER_QUEUE = 2;
/** Pages formatted (or being formatted) ahead of the one written: bounds memory. */
const AHEAD = 2;

/** A modest heap: a page in flight needs a few MB (as the parse worker). */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 16, maxOldGenerationSizeMb: 128 };

/** A packed page's rows, as the CSV formatter takes them. */
export function packedRows(page: Pick<PackedPage, 'records' | 'json'>): LedgerRow<RequestOutcomeRow>[] {
  return unpackOutcomePage(page).map((request) => ({ request }));
}

/**
 * The formatted pages, in order: the first `threadAfter` formatted here by `formatHere` (a small
 * output is not worth a thread's start-up), then shared with a worker, as the parse worker does:
 * this thread also reads the pages, so it formats one whenever the worker already has one queued.
 * `counted` gets each page's rows.
 */
export async function* formatPacked(
  pages: Iterable<PackedPage>,
  formatHere: (rows: LedgerRow<RequestOutcomeRow>[]) => Buffer,
  config: CsvPageConfig,
  threadAfter: number,
  counted: (rows: number) => void,
): AsyncGenerator<Buffer> {
  let read = 0;
  let worker: FormatWorker | undefined;
  const queue: (Buffer | Promise<Buffer>)[] = [];
  try {
    for (const page of pages) {
      counted(page.count);
      if (read++ >= threadAfter) worker ??= new FormatWorker(config);
      if (worker !== undefined && worker.queued < WORKER_QUEUE) queue.push(worker.format(page));
      else queue.push(formatHere(packedRows(page)));
      while (queue.length > AHEAD) yield await queue.shift()!;
    }
    while (queue.length > 0) yield await queue.shift()!;
  } finally {
    await worker?.stop();
  }
}

/** The worker and its replies, which come in the order the pages were sent. */
class FormatWorker {
  private readonly worker: Worker;
  private readonly pending: { resolve: (b: Buffer) => void; reject: (e: Error) => void }[] = [];
  private stopping = false;

  constructor(config: CsvPageConfig) {
    this.worker = new Worker(new URL('./format-worker.js', import.meta.url), {
      workerData: config,
      resourceLimits: WORKER_LIMITS,
    });
    this.worker.on('message', (msg: FormatWorkerReply) => {
      const reply = this.pending.shift();
      if ('error' in msg) reply?.reject(errorFromData(msg.error));
      else reply?.resolve(Buffer.from(msg.bytes.buffer, msg.bytes.byteOffset, msg.bytes.byteLength));
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', (code) => {
      if (!this.stopping) this.failAll(new Error(`the format worker exited with code ${code}`));
    });
  }

  /** Pages sent and not yet formatted. */
  get queued(): number {
    return this.pending.length;
  }

  /** The page's output, from the worker. */
  format(page: PackedPage): Promise<Buffer> {
    const reply = new Promise<Buffer>((resolve, reject) => this.pending.push({ resolve, reject }));
    reply.catch(() => {}); // awaited in turn; a failure before then is not unhandled
    // Moved, not copied: the page's bytes are its own (read from SQLite), not a view of a pool.
    this.worker.postMessage({ records: page.records, json: page.json }, [page.records.buffer as ArrayBuffer]);
    return reply;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.worker.terminate();
  }

  private failAll(err: Error): void {
    for (const reply of this.pending.splice(0)) reply.reject(err);
  }
}

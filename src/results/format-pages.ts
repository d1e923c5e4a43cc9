/**
 * CSV pages read and formatted on two threads at once: this one and a format worker with a
 * read-only connection of its own to the ledger. `batchpipe results` spends about as long reading
 * pages from SQLite as formatting them, so each thread does both for its share of the seq ranges,
 * and only the ranges and the formatted bytes cross threads.
 */
import { Worker } from 'node:worker_threads';
import { errorFromData } from '../internal/thread-errors.js';
import type { SeqRange } from '../ledger/csv-pages.js';
import type { Ledger, RequestState } from '../ledger/ledger.js';
import { type CsvPageFormatter, type FormattedPage, formatRange } from './csv-format.js';
import type { FormatWorkerData, FormatWorkerReply } from './format-worker.js';

/** Ranges queued on the worker at most; beyond that this thread reads and formats the next one. */
const WORKER_QUEUE = 2;
/** Pages formatted (or being formatted) ahead of the one written: bounds memory. */
const AHEAD = 6;

/** A modest heap: a page in flight needs a few MB (as the parse worker). */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 16, maxOldGenerationSizeMb: 128 };

/**
 * The formatted pages of `ranges`, in order: the first `threadAfter` done here (a small output is
 * not worth a thread's start-up), then shared with a worker, as the parse worker shares parsing:
 * this thread takes a range itself whenever the worker already has enough queued. An in-memory
 * ledger cannot be opened by a worker, so everything is done here then.
 */
export async function* formatRanges(
  ledger: Ledger,
  selection: { states: RequestState[] | undefined; ranges: Iterable<SeqRange> },
  formatHere: CsvPageFormatter,
  threadAfter: number,
): AsyncGenerator<FormattedPage> {
  const config = formatHere.config;
  const { states, ranges } = selection;
  const threadable = ledger.path !== ':memory:';
  let done = 0;
  let worker: FormatWorker | undefined;
  const queue: { page?: FormattedPage; reply?: Promise<FormattedPage> }[] = [];
  try {
    for (const range of ranges) {
      if (threadable && done++ >= threadAfter) {
        worker ??= new FormatWorker({ config, ledgerPath: ledger.path, states });
      }
      if (worker !== undefined && worker.queued < WORKER_QUEUE) {
        const item: (typeof queue)[number] = {};
        item.reply = worker.format(range).then((page) => {
          item.page = page;
          return page;
        });
        queue.push(item);
      } else {
        queue.push({ page: formatRange(ledger, range, states, formatHere) });
        // Let the worker's replies in.
        await new Promise(setImmediate);
      }
      // Written as soon as ready; otherwise this thread goes on with the next range.
      while (queue.length > 0 && (queue[0]!.page !== undefined || queue.length > AHEAD)) {
        const head = queue.shift()!;
        yield head.page ?? (await head.reply!);
      }
    }
    while (queue.length > 0) {
      const head = queue.shift()!;
      yield head.page ?? (await head.reply!);
    }
  } finally {
    await worker?.stop();
  }
}

/** The worker and its replies, which come in the order the ranges were sent. */
class FormatWorker {
  private readonly worker: Worker;
  private readonly pending: { resolve: (p: FormattedPage) => void; reject: (e: Error) => void }[] = [];
  private stopping = false;

  constructor(data: FormatWorkerData) {
    this.worker = new Worker(new URL('./format-worker.js', import.meta.url), {
      workerData: data,
      resourceLimits: WORKER_LIMITS,
    });
    this.worker.on('message', (msg: FormatWorkerReply) => {
      const reply = this.pending.shift();
      if ('error' in msg) reply?.reject(errorFromData(msg.error));
      else {
        const bytes = Buffer.from(msg.bytes.buffer, msg.bytes.byteOffset, msg.bytes.byteLength);
        reply?.resolve({ bytes, rows: msg.rows });
      }
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', (code) => {
      if (!this.stopping) this.failAll(new Error(`the format worker exited with code ${code}`));
    });
  }

  /** Ranges sent and not yet formatted. */
  get queued(): number {
    return this.pending.length;
  }

  /** The range's output, from the worker. */
  format(range: SeqRange): Promise<FormattedPage> {
    const reply = new Promise<FormattedPage>((resolve, reject) => this.pending.push({ resolve, reject }));
    reply.catch(() => {}); // awaited in turn; a failure before then is not unhandled
    this.worker.postMessage(range);
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

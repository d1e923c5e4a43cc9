/**
 * CSV pages read and formatted on two threads at once: this one and a format worker with a
 * read-only connection of its own to the ledger. `batchpipe results` spends about as long reading
 * pages from SQLite as formatting them, so each thread does both for its share of the seq ranges,
 * and only the ranges and the formatted bytes cross threads.
 */
import { asBuffer } from '../internal/bytes.js';
import { WorkerPool } from '../internal/worker-pool.js';
import type { SeqRange } from '../ledger/csv-pages.js';
import type { Ledger, RequestState } from '../ledger/ledger.js';
import { type CsvPageFormatter, type FormattedPage, formatRange } from './csv-format.js';
import type { FormatWorkerData } from './format-worker.js';

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
  let pool: WorkerPool<SeqRange, FormattedPage> | undefined;
  /** Pages formatted, in order, not yet written. */
  const ready: FormattedPage[] = [];
  const more = () => ready.length > 0;
  try {
    for (const range of ranges) {
      if (threadable && done++ >= threadAfter) {
        pool ??= new WorkerPool<SeqRange, FormattedPage>({
          script: new URL('./format-worker.js', import.meta.url),
          threads: 1,
          data: { config, ledgerPath: ledger.path, states } satisfies FormatWorkerData,
          resourceLimits: WORKER_LIMITS,
          perWorker: WORKER_QUEUE,
          deliver: (page) => ready.push(asBufferPage(page)),
          name: 'format worker',
        });
      }
      if (pool?.hasRoom()) pool.send(range);
      else {
        const page = formatRange(ledger, range, states, formatHere);
        if (pool) pool.here(page);
        else ready.push(page);
        // Let the worker's replies in.
        await new Promise(setImmediate);
      }
      // Written as soon as ready; otherwise this thread goes on with the next range.
      while (more() || (pool !== undefined && pool.pending > AHEAD)) {
        if (!more()) await pool!.until(more);
        yield ready.shift()!;
      }
    }
    while (more() || (pool !== undefined && pool.pending > 0)) {
      if (!more()) await pool!.until(more);
      yield ready.shift()!;
    }
  } finally {
    await pool?.stop();
  }
}

/** A page from the worker comes as a Uint8Array (a moved Buffer): the same bytes as a Buffer. */
function asBufferPage(page: FormattedPage): FormattedPage {
  return { bytes: asBuffer(page.bytes), rows: page.rows };
}

/**
 * Format worker: reads seq ranges of requests from its own read-only connection to the ledger and
 * turns them into CSV output, as `writeResults` would on the ledger's thread (see format-pages.ts).
 */
import { poolWorkerData, serveTasks } from '../internal/worker-pool.js';
import type { SeqRange } from '../ledger/csv-pages.js';
import { Ledger, type RequestState } from '../ledger/ledger.js';
import { useSmallPageCache } from '../ledger/reading.js';
import { type CsvPageConfig, csvPageFormatter, type FormattedPage, formatRange } from './csv-format.js';

/** What the worker is started with. */
export interface FormatWorkerData {
  config: CsvPageConfig;
  ledgerPath: string;
  /** The request states selected (`undefined`: all). */
  states: RequestState[] | undefined;
}

const data = poolWorkerData<FormatWorkerData>();
const format = csvPageFormatter(data.config);
let ledger: Ledger | undefined;

serveTasks<SeqRange, FormattedPage>(
  (range) => {
    if (ledger === undefined) {
      ledger = Ledger.open(data.ledgerPath, { readonly: true });
      // Ranges are read in seq order, each page once.
      useSmallPageCache(ledger);
    }
    return formatRange(ledger, range, data.states, format);
  },
  {
    // Moved, not copied: a page starts in a buffer of its own. A small one may be a slice of Node's
    // shared pool, which must not be moved: it is copied (which costs nothing at that size).
    transfer: ({ bytes }) => (bytes.byteLength < Buffer.poolSize ? [] : [bytes.buffer as ArrayBuffer]),
  },
);

/**
 * Format worker: reads seq ranges of requests from its own read-only connection to the ledger and
 * turns them into CSV output, as `writeResults` would on the ledger's thread (see format-pages.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type ErrorData, errorToData } from '../internal/thread-errors.js';
import type { SeqRange } from '../ledger/csv-pages.js';
import { Ledger, type RequestState } from '../ledger/ledger.js';
import { type CsvPageConfig, csvPageFormatter, formatRange } from './csv-format.js';

/** What the worker is started with. */
export interface FormatWorkerData {
  config: CsvPageConfig;
  ledgerPath: string;
  /** The request states selected (`undefined`: all). */
  states: RequestState[] | undefined;
}

/** Messages from the worker: one per range, in order. */
export type FormatWorkerReply = { bytes: Uint8Array; rows: number } | { error: ErrorData };

const data = workerData as FormatWorkerData;
const format = csvPageFormatter(data.config);
const reply = (message: FormatWorkerReply) => parentPort!.postMessage(message);
let ledger: Ledger | undefined;

parentPort!.on('message', (range: SeqRange) => {
  try {
    if (ledger === undefined) {
      // Ranges are read in seq order, each page once: a small page cache does.
      ledger = Ledger.open(data.ledgerPath, { readonly: true, pageCacheKiB: 2048 });
    }
    const page = formatRange(ledger, range, data.states, format);
    // Moved, not copied: the formatter starts each page in a fresh buffer.
    const bytes = page.bytes;
    parentPort!.postMessage({ bytes, rows: page.rows } satisfies FormatWorkerReply, [
      bytes.buffer as ArrayBuffer,
    ]);
  } catch (err) {
    reply({ error: errorToData(err) });
  }
});

/**
 * Format worker: turns packed pages of requests into CSV output, as `writeResults` would on the
 * ledger's thread (see format-pages.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorToData } from '../prepare/thread-errors.js';
import { packedRows } from './format-pages.js';
import { type CsvPageConfig, csvPageFormatter } from './write-results.js';

/** Messages from the worker: one per page, in order. */
export type FormatWorkerReply = { bytes: Uint8Array } | { error: ReturnType<typeof errorToData> };

const format = csvPageFormatter(workerData as CsvPageConfig);
const reply = (message: FormatWorkerReply) => parentPort!.postMessage(message);

parentPort!.on('message', (msg: { records: Uint8Array; json: string }) => {
  try {
    const records = Buffer.from(msg.records.buffer, msg.records.byteOffset, msg.records.byteLength);
    const bytes = format(packedRows({ records, json: msg.json }));
    // Moved, not copied: the formatter starts each page in a fresh buffer.
    parentPort!.postMessage({ bytes } satisfies FormatWorkerReply, [bytes.buffer as ArrayBuffer]);
  } catch (err) {
    reply({ error: errorToData(err) });
  }
});

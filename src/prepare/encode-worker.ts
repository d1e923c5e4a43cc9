/**
 * Worker thread entry: encodes chunks for the main thread, which keeps the ledger and the files.
 * Messages: `{ id, bytes, firstLine }` in, `{ id, items }` or `{ id, error }` out.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { BatchpipeError } from '../errors.js';
import { createChunkEncoder, type EncodeContext } from './encode-chunk.js';

const encodeChunk = createChunkEncoder(workerData as EncodeContext);

parentPort!.on('message', (msg: { id: number; bytes: Uint8Array; firstLine: number }) => {
  try {
    const bytes = Buffer.from(msg.bytes.buffer, msg.bytes.byteOffset, msg.bytes.byteLength);
    parentPort!.postMessage({ id: msg.id, items: encodeChunk(bytes, msg.firstLine) });
  } catch (err) {
    // Errors cross the thread boundary as plain data; the pool rebuilds a BatchpipeError.
    const e = err as BatchpipeError;
    parentPort!.postMessage({
      id: msg.id,
      error: { name: e.name, code: e.code, message: e.message, file: e.file, line: e.line, field: e.field },
    });
  }
});

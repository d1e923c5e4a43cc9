/**
 * Encode worker: parses and encodes chunks, sending each result straight to the ledger worker over
 * its own MessagePort (transferring the buffers), so results never pass through the main thread.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { createChunkEncoder, type EncodeContext, transferablesOf } from './encode-chunk.js';
import { errorToData } from './thread-errors.js';

const encodeChunk = createChunkEncoder(workerData as EncodeContext);
let out: MessagePort | undefined;

parentPort!.on(
  'message',
  (msg: { port: MessagePort } | { index: number; bytes: Uint8Array; firstLine: number }) => {
    if ('port' in msg) {
      out = msg.port;
      return;
    }
    try {
      const bytes = Buffer.from(msg.bytes.buffer, msg.bytes.byteOffset, msg.bytes.byteLength);
      const chunk = encodeChunk(bytes, msg.firstLine);
      out!.postMessage({ index: msg.index, chunk }, transferablesOf(chunk));
    } catch (err) {
      out!.postMessage({ index: msg.index, error: errorToData(err) });
    }
  },
);

/**
 * Encode worker: parses and encodes chunks for the main thread, which owns the files and the ledger.
 * Results go back column-wise with their buffers transferred, not copied.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorToData } from '../internal/thread-errors.js';
import { transferablesOf } from '../sink/encoded-chunk.js';
import { type ChunkPlacement, createChunkEncoder, type EncodeContext } from './encode-chunk.js';

const { ctx, finished, slot } = workerData as { ctx: EncodeContext; finished: Int32Array; slot: number };
// Load the schemas only when the template needs each record checked.
const validate = ctx.validateEach ? (await import('../transforms/request-probe.js')).validateLine : undefined;
// Compiled while the main thread reads its first chunk. An error compiling the template goes back as
// each chunk's error (a BatchpipeError), not as the worker's crash.
let encodeChunk: ReturnType<typeof createChunkEncoder> | undefined;
let compileError: unknown;
try {
  encodeChunk = createChunkEncoder(ctx, validate);
} catch (err) {
  compileError = err;
}

type ChunkMessage = { index: number; bytes: Uint8Array; firstLine: number; placement: ChunkPlacement };

parentPort!.on('message', (msg: ChunkMessage) => {
  try {
    const bytes = Buffer.from(msg.bytes.buffer, msg.bytes.byteOffset, msg.bytes.byteLength);
    if (!encodeChunk) throw compileError;
    const chunk = encodeChunk(bytes, msg.firstLine, msg.placement);
    parentPort!.postMessage({ index: msg.index, chunk }, transferablesOf(chunk));
    Atomics.add(finished, slot, 1);
  } catch (err) {
    parentPort!.postMessage({ index: msg.index, error: errorToData(err) });
    Atomics.add(finished, slot, 1);
  }
});

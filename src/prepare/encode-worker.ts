/**
 * Encode worker: parses and encodes chunks for the main thread, which owns the files and the ledger
 * (see threadedSink). Results go back column-wise with their buffers transferred, not copied.
 */
import { asBuffer } from '../internal/bytes.js';
import { poolWorkerData, serveTasks } from '../internal/worker-pool.js';
import { type EncodedChunk, transferablesOf } from '../sink/encoded-chunk.js';
import { type ChunkPlacement, createChunkEncoder, type EncodeContext } from './encode-chunk.js';

/** A chunk as an encode worker takes it: its bytes (moved, not copied), first line and placement. */
export interface EncodeTask {
  bytes: Uint8Array;
  firstLine: number;
  placement: ChunkPlacement;
  /** Memory to write the tails into (moved here, returned as the result's tails), if the owner had some. */
  spare?: ArrayBuffer | undefined;
}

const ctx = poolWorkerData<EncodeContext>();
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

serveTasks<EncodeTask, EncodedChunk>(
  (task) => {
    if (!encodeChunk) throw compileError;
    return encodeChunk(asBuffer(task.bytes), task.firstLine, task.placement, task.spare);
  },
  { transfer: transferablesOf },
);

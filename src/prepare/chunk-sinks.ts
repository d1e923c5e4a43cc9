import { SpareBuffers } from '../internal/spare-buffers.js';
import { WorkerPool } from '../internal/worker-pool.js';
import type { BatchWriter } from '../sink/batch-writer.js';
import type { EncodedChunk } from '../sink/encoded-chunk.js';
import type { Chunk } from '../sources/chunker.js';
import { validateLine } from '../transforms/request-probe.js';
import { createChunkEncoder, type EncodeContext } from './encode-chunk.js';
import type { EncodeTask } from './encode-worker.js';

/** Where the reader sends record-aligned chunks; `submit` resolves when there is room for more. */
export interface ChunkSink {
  submit(chunk: Chunk): Promise<void>;
  /** Waits for every submitted chunk to be written and the last file closed. */
  finish(): Promise<{ read: number; staged: number; rejected: number }>;
  /** Stops all threads (after an error). */
  abort(): Promise<void>;
}

/** Everything in this thread: no start-up cost, for small inputs and `:memory:` ledgers. */
export function inlineSink(ctx: EncodeContext, writer: BatchWriter): ChunkSink {
  const encode = createChunkEncoder(ctx, validateLine);
  return {
    async submit(chunk) {
      writer.writeChunk(encode(chunk.bytes, chunk.firstLine, chunk));
    },
    async finish() {
      writer.finish();
      return totalsOf(writer);
    },
    async abort() {},
  };
}

/**
 * Each worker is a V8 isolate with its own heap; left to its defaults each grows lazily towards
 * hundreds of MB. A chunk in flight needs a few MB, so a modest heap keeps RSS flat.
 */
const WORKER_LIMITS = {
  maxYoungGenerationSizeMb: 16,
  maxOldGenerationSizeMb: 256,
};

/**
 * Parse and encode on `threads` workers, and on this thread whenever every worker has `perWorker`
 * chunks queued; this thread also writes the encoded chunks (column-wise, transferred without
 * copying) to the files and ledger in input order. At most `maxPending` chunks are between reader
 * and writer (credit-based backpressure), so memory stays flat however large the input.
 */
export function threadedSink(
  ctx: EncodeContext,
  threads: number,
  writer: BatchWriter,
  perWorker = 4,
): ChunkSink {
  const maxPending = threads * perWorker + 4;
  const spares = new SpareBuffers(2 * maxPending);
  // The sources of chunks encoded here are the reader's buffers, never ours to reuse.
  const readerOwned = new WeakSet<Uint8Array>();
  const pool = new WorkerPool<EncodeTask, EncodedChunk>({
    script: new URL('./encode-worker.js', import.meta.url),
    threads,
    data: ctx,
    resourceLimits: WORKER_LIMITS,
    perWorker,
    deliver: (chunk) => {
      writer.writeChunk(chunk);
      // Written: the writer keeps no view of the chunk's tails or (private) source past writeChunk.
      spares.put(chunk.tails.buffer as ArrayBuffer);
      if (!readerOwned.has(chunk.source)) spares.put(chunk.source.buffer as ArrayBuffer);
    },
    name: 'encode worker',
  });
  const encodeHere = createChunkEncoder(ctx, ctx.validateEach ? validateLine : undefined);

  return {
    async submit(chunk) {
      await pool.until(() => pool.pending < maxPending);
      if (!pool.hasRoom()) {
        // Every worker has work queued: this thread takes the chunk rather than wait.
        const encoded = encodeHere(chunk.bytes, chunk.firstLine, chunk, spares.take(2 * chunk.bytes.length));
        readerOwned.add(encoded.source);
        pool.here(encoded);
        return;
      }
      // A private copy to transfer, in memory a chunk written earlier has handed back.
      const bytes = spares.copy(chunk.bytes);
      const spare = spares.take(2 * bytes.length);
      const { firstLine, offset, oversize, lines, rejects } = chunk;
      const transfer = spare === undefined ? [bytes.buffer] : [bytes.buffer, spare];
      pool.send({ bytes, firstLine, placement: { offset, oversize, lines, rejects }, spare }, transfer);
    },
    async finish() {
      try {
        await pool.until(() => pool.pending === 0);
      } finally {
        await pool.stop();
      }
      writer.finish();
      return totalsOf(writer);
    },
    abort: () => pool.stop(),
  };
}

function totalsOf(writer: BatchWriter): { read: number; staged: number; rejected: number } {
  return { read: writer.nextSeq, staged: writer.staged, rejected: writer.rejected };
}

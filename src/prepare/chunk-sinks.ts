import { Worker } from 'node:worker_threads';
import { type ErrorData, errorFromData } from '../internal/thread-errors.js';
import type { BatchWriter } from '../sink/batch-writer.js';
import type { EncodedChunk } from '../sink/encoded-chunk.js';
import type { Chunk } from '../sources/chunker.js';
import { validateLine } from '../transforms/request-probe.js';
import { createChunkEncoder, type EncodeContext } from './encode-chunk.js';

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
 * Parse and encode on `threads` workers, and on this thread whenever every worker is busy; this
 * thread also writes the encoded chunks (column-wise, transferred without copying) to the files and
 * ledger in input order. At most `maxPending` chunks are between reader and writer (credit-based
 * backpressure), so memory stays flat however large the input.
 */
export function threadedSink(
  ctx: EncodeContext,
  threads: number,
  writer: BatchWriter,
  perWorker = 4,
): ChunkSink {
  const url = new URL('./encode-worker.js', import.meta.url);
  // Each worker counts the chunks it has finished in shared memory, so this thread sees how much work
  // a worker really has queued even while it is itself too busy to read the worker's messages.
  const finishedBy = new Int32Array(new SharedArrayBuffer(4 * threads));
  const workers = Array.from(
    { length: threads },
    (_, w) =>
      new Worker(url, { workerData: { ctx, finished: finishedBy, slot: w }, resourceLimits: WORKER_LIMITS }),
  );
  const sentTo = new Array<number>(threads).fill(0);
  const queued = (w: number) => sentTo[w]! - Atomics.load(finishedBy, w);
  const encodeHere = createChunkEncoder(ctx, ctx.validateEach ? validateLine : undefined);
  const maxPending = threads * perWorker + 4;
  const arrived = new Map<number, EncodedChunk>();
  let dispatched = 0;
  let written = 0;
  let failure: Error | undefined;
  // Whoever waits for room (submit) or for the end (finish) is woken on every message.
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const until = async (ready: () => boolean) => {
    while (!ready() && !failure) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    if (failure) throw failure;
  };
  const fail = (err: Error) => {
    failure ??= err;
    notify();
  };
  // Chunks finish out of order across threads; write them strictly in input order.
  const drain = () => {
    try {
      for (let chunk = arrived.get(written); chunk !== undefined && !failure; chunk = arrived.get(written)) {
        arrived.delete(written);
        writer.writeChunk(chunk);
        written++;
      }
    } catch (err) {
      fail(err as Error);
    }
    notify();
  };

  let finishing = false;
  workers.forEach((worker) => {
    worker.on('message', (msg: { index: number; chunk?: EncodedChunk; error?: ErrorData }) => {
      if (msg.error) return fail(errorFromData(msg.error));
      arrived.set(msg.index, msg.chunk!);
      drain();
    });
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (code !== 0 && !finishing) fail(new Error(`an encode worker exited with code ${code}`));
    });
  });
  const stop = async () => {
    finishing = true;
    await Promise.all(workers.map((w) => w.terminate()));
  };

  return {
    async submit(chunk) {
      await until(() => dispatched - written < maxPending);
      const index = dispatched++;
      let w = -1;
      for (let i = 0; i < threads; i++)
        if (queued(i) < perWorker && (w === -1 || queued(i) < queued(w))) w = i;
      if (w === -1) {
        // Every worker has work queued: this thread takes the chunk rather than wait.
        arrived.set(index, encodeHere(chunk.bytes, chunk.firstLine, chunk));
        drain();
        return;
      }
      sentTo[w]!++;
      const bytes = new Uint8Array(chunk.bytes); // a private copy to transfer
      const { firstLine, offset, oversize, lines, rejects } = chunk;
      const placement = { offset, oversize, lines, rejects };
      workers[w]!.postMessage({ index, bytes, firstLine, placement }, [bytes.buffer]);
    },
    async finish() {
      try {
        await until(() => written === dispatched);
      } finally {
        await stop();
      }
      writer.finish();
      return totalsOf(writer);
    },
    abort: stop,
  };
}

function totalsOf(writer: BatchWriter): { read: number; staged: number; rejected: number } {
  return { read: writer.nextSeq, staged: writer.staged, rejected: writer.rejected };
}

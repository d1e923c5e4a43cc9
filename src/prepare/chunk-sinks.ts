import { MessageChannel, Worker } from 'node:worker_threads';
import type { BatchWriter } from '../sink/batch-writer.js';
import type { Chunk } from '../sources/chunker.js';
import { createChunkEncoder, type EncodeContext } from './encode-chunk.js';
import type { LedgerWorkerData } from './ledger-worker.js';
import { type ErrorData, errorFromData } from './thread-errors.js';

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
  const encode = createChunkEncoder(ctx);
  return {
    async submit(chunk) {
      writer.writeChunk(encode(chunk.bytes, chunk.firstLine));
    },
    async finish() {
      writer.finish();
      return { read: writer.nextSeq, staged: writer.staged, rejected: writer.rejected };
    },
    async abort() {},
  };
}

/**
 * Parse and encode on `threads` workers, ledger and files on one more; this thread only reads and
 * hands out chunks. At most `maxInflight` chunks are between reader and ledger at any time (credit-
 * based backpressure), so memory stays flat however large the input.
 */
export function threadedSink(
  ctx: EncodeContext,
  threads: number,
  ledgerData: LedgerWorkerData,
  maxInflight = threads * 3,
): ChunkSink {
  const encoders = Array.from(
    { length: threads },
    () => new Worker(new URL('./encode-worker.js', import.meta.url), { workerData: ctx }),
  );
  const ledgerWorker = new Worker(new URL('./ledger-worker.js', import.meta.url), { workerData: ledgerData });
  for (const encoder of encoders) {
    const { port1, port2 } = new MessageChannel();
    encoder.postMessage({ port: port1 }, [port1]);
    ledgerWorker.postMessage({ port: port2 }, [port2]);
  }

  let dispatched = 0;
  let done = 0;
  let failure: Error | undefined;
  let finished: { read: number; staged: number; rejected: number } | undefined;
  // Whoever waits for room (submit) or for the end (finish) is woken on every message.
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const until = async (ready: () => boolean) => {
    while (!ready()) {
      if (failure) throw failure;
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

  ledgerWorker.on('message', (msg: { done?: number; finished?: typeof finished; error?: ErrorData }) => {
    if (msg.error) fail(errorFromData(msg.error));
    else if (msg.finished) finished = msg.finished;
    else if (msg.done !== undefined) done = msg.done + 1;
    notify();
  });
  for (const worker of [...encoders, ledgerWorker]) {
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (code !== 0 && finished === undefined) fail(new Error(`a prepare worker exited with code ${code}`));
    });
  }
  const stop = () => Promise.all([...encoders, ledgerWorker].map((w) => w.terminate())).then(() => {});

  return {
    async submit(chunk) {
      await until(() => dispatched - done < maxInflight);
      const bytes = new Uint8Array(chunk.bytes); // a private copy to transfer
      encoders[dispatched % threads]!.postMessage({ index: dispatched, bytes, firstLine: chunk.firstLine }, [
        bytes.buffer,
      ]);
      dispatched++;
    },
    async finish() {
      ledgerWorker.postMessage({ end: dispatched });
      try {
        await until(() => finished !== undefined);
      } finally {
        await stop();
      }
      return finished!;
    },
    abort: stop,
  };
}

import { Worker } from 'node:worker_threads';
import { BatchpipeError, type ErrorCode } from '../errors.js';
import type { Chunk } from '../sources/chunker.js';
import { createChunkEncoder, type EncodeContext, type EncodedItem } from './encode-chunk.js';

/** Encodes chunks, in this thread or spread over worker threads; results come back in input order. */
export interface ChunkEncoder {
  /** Starts encoding a chunk; the promise resolves with its items. */
  submit(chunk: Chunk): Promise<EncodedItem[]>;
  close(): Promise<void>;
}

/** In-thread encoding: no startup cost, used for small inputs and from code. */
export function inlineEncoder(ctx: EncodeContext): ChunkEncoder {
  const encode = createChunkEncoder(ctx);
  return {
    submit: async (chunk) => encode(chunk.bytes, chunk.firstLine),
    close: async () => {},
  };
}

interface WorkerError {
  code?: ErrorCode;
  message: string;
  file?: string;
  line?: number;
  field?: string;
}

/**
 * A fixed pool of encode workers, fed round-robin. Chunk bytes are copied into the message (the
 * chunker reuses nothing, but transferring a slice of a pooled Buffer would detach its neighbours).
 */
export function workerEncoder(ctx: EncodeContext, threads: number): ChunkEncoder {
  const url = new URL('./encode-worker.js', import.meta.url);
  const workers = Array.from({ length: threads }, () => new Worker(url, { workerData: ctx }));
  const waiting = new Map<
    number,
    { resolve: (items: EncodedItem[]) => void; reject: (err: Error) => void }
  >();
  let nextId = 0;
  let failure: Error | undefined;

  const fail = (err: Error) => {
    failure ??= err;
    for (const { reject } of waiting.values()) reject(err);
    waiting.clear();
  };
  for (const worker of workers) {
    worker.on('message', (msg: { id: number; items?: EncodedItem[]; error?: WorkerError }) => {
      const entry = waiting.get(msg.id);
      if (!entry) return;
      waiting.delete(msg.id);
      if (msg.error) {
        const e = msg.error;
        entry.reject(
          e.code
            ? new BatchpipeError(e.code, e.message, { file: e.file, line: e.line, field: e.field })
            : new Error(e.message),
        );
      } else entry.resolve(msg.items!);
    });
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (code !== 0) fail(new Error(`encode worker exited with code ${code}`));
    });
  }

  return {
    submit(chunk) {
      if (failure) return Promise.reject(failure);
      const id = nextId++;
      const worker = workers[id % workers.length]!;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        const copy = new Uint8Array(chunk.bytes);
        worker.postMessage({ id, bytes: copy, firstLine: chunk.firstLine }, [copy.buffer]);
      });
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/**
 * A worker script for test/internal-worker-pool.test.ts: each task says what to do. (The test runner
 * also loads this file on the main thread, as it loads every file here: then it does nothing.)
 */
import { isMainThread } from 'node:worker_threads';
import { BatchpipeError, ErrorCodes } from '../src/errors.js';
import { poolWorkerData, serveTasks } from '../src/internal/worker-pool.js';

export type PoolTestTask =
  | { kind: 'echo'; n: number; sleepMs?: number }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'fail'; plain?: boolean }
  | { kind: 'exit'; code: number }
  | { kind: 'hold'; n: number };

/** `flags[0]`: set by the worker's onClose; `flags[1]`: set by the test to end a `hold`. */
export interface PoolTestData {
  flags: Int32Array;
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

if (!isMainThread) {
  const { flags } = poolWorkerData<PoolTestData>();
  serveTasks<PoolTestTask, unknown>(
    (task) => {
      switch (task.kind) {
        case 'echo':
          if (task.sleepMs) sleep(task.sleepMs);
          return task.n;
        case 'bytes':
          // The bytes back, reversed, in a buffer of their own (moved, not copied).
          return Buffer.from(task.bytes).reverse();
        case 'fail':
          if (task.plain) throw new Error('a plain failure');
          throw new BatchpipeError(ErrorCodes.PARSE, 'bad record', { file: 'in.csv', line: 7, field: 'x' });
        case 'exit':
          process.exit(task.code);
          break;
        case 'hold':
          return task.n;
      }
    },
    {
      transfer: (result) => (Buffer.isBuffer(result) ? [result.buffer as ArrayBuffer] : []),
      afterReply: (task) => {
        // Work after the reply, which the owner does not wait for (as the join worker's checkpoints).
        if (task.kind === 'hold') while (Atomics.load(flags, 1) === 0) Atomics.wait(flags, 1, 0, 10);
      },
      onClose: () => Atomics.store(flags, 0, 1),
    },
  );
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchpipeError, ErrorCodes } from '../src/errors.js';
import { WorkerPool } from '../src/internal/worker-pool.js';
import type { PoolTestData, PoolTestTask } from './pool-test-worker.js';

const SCRIPT = new URL('./pool-test-worker.js', import.meta.url);

function pool(options: { threads?: number; perWorker?: number; deliver?: (r: unknown) => void } = {}) {
  const flags = new Int32Array(new SharedArrayBuffer(8));
  const delivered: unknown[] = [];
  const p = new WorkerPool<PoolTestTask, unknown>({
    script: SCRIPT,
    threads: options.threads ?? 1,
    data: { flags } satisfies PoolTestData,
    perWorker: options.perWorker ?? 2,
    deliver: options.deliver ?? ((r) => delivered.push(r)),
    name: 'test worker',
  });
  return { pool: p, flags, delivered };
}

/** Blocks this thread without giving the event loop a turn: no worker message is read meanwhile. */
function block(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('WorkerPool', { timeout: 30_000 }, () => {
  it('delivers results in task order, whichever thread did them and however they finish', async () => {
    const { pool: p, delivered } = pool({ threads: 2, perWorker: 3 });
    try {
      const n = 60;
      for (let i = 0; i < n; i++) {
        await p.until(() => p.pending < 8);
        // Later tasks are quicker: the workers finish out of order.
        if (p.hasRoom()) p.send({ kind: 'echo', n: i, sleepMs: (i * 7) % 5 });
        else p.here(i);
      }
      await p.until(() => p.pending === 0);
      assert.deepEqual(
        delivered,
        Array.from({ length: n }, (_, i) => i),
      );
    } finally {
      await p.stop();
    }
  });

  it('counts a worker’s queue in shared memory: room shows while this thread reads no message', async () => {
    const { pool: p } = pool({ threads: 1, perWorker: 2 });
    try {
      assert.ok(p.hasRoom());
      p.send({ kind: 'echo', n: 0, sleepMs: 50 });
      p.send({ kind: 'echo', n: 1, sleepMs: 50 });
      assert.equal(p.hasRoom(), false, 'two queued on the only worker');
      block(1000); // the worker finishes both; their replies wait unread
      assert.ok(p.hasRoom(), 'the worker finished its tasks');
      assert.equal(p.pending, 2, 'the replies are not read yet');
      assert.throws(() => {
        p.send({ kind: 'echo', n: 2 });
        p.send({ kind: 'echo', n: 3 });
        p.send({ kind: 'echo', n: 4 });
      }, /every worker busy/);
      await p.until(() => p.pending === 0);
    } finally {
      await p.stop();
    }
  });

  it('moves buffers both ways instead of copying them', async () => {
    const { pool: p, delivered } = pool();
    try {
      const bytes = new Uint8Array([1, 2, 3]);
      p.send({ kind: 'bytes', bytes }, [bytes.buffer]);
      assert.equal(bytes.byteLength, 0, 'the sent buffer is gone from this thread');
      await p.until(() => p.pending === 0);
      assert.deepEqual([...(delivered[0] as Uint8Array)], [3, 2, 1]);
    } finally {
      await p.stop();
    }
  });

  it('brings a worker’s BatchpipeError back whole, and other errors by message', async () => {
    for (const plain of [false, true]) {
      const { pool: p } = pool();
      try {
        p.send({ kind: 'fail', plain });
        const failed = await p
          .until(() => p.pending === 0)
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        if (plain) {
          assert.ok(failed instanceof Error && !(failed instanceof BatchpipeError));
          assert.equal(failed.message, 'a plain failure');
        } else {
          assert.ok(failed instanceof BatchpipeError, String(failed));
          assert.deepEqual(
            [failed.code, failed.message, failed.file, failed.line, failed.field],
            [ErrorCodes.PARSE, 'bad record', 'in.csv', 7, 'x'],
          );
        }
        assert.throws(() => p.check(), failed as Error);
      } finally {
        await p.stop();
      }
    }
  });

  it('fails when a worker ends on its own, naming it', async () => {
    const { pool: p } = pool();
    try {
      p.send({ kind: 'exit', code: 3 });
      await assert.rejects(
        p.until(() => false),
        /the test worker exited with code 3/,
      );
    } finally {
      await p.stop();
    }
  });

  it('fails when delivering a result throws', async () => {
    const { pool: p } = pool({
      deliver: () => {
        throw new Error('cannot write');
      },
    });
    try {
      p.here('x');
      await assert.rejects(
        p.until(() => false),
        /cannot write/,
      );
    } finally {
      await p.stop();
    }
  });

  it('replies before work the owner does not wait for, and closes each worker after it', async () => {
    const { pool: p, flags, delivered } = pool();
    p.send({ kind: 'hold', n: 5 });
    await p.until(() => p.pending === 0);
    assert.deepEqual(delivered, [5], 'the result came while the worker still holds');
    assert.equal(Atomics.load(flags, 0), 0, 'not closed yet');
    Atomics.store(flags, 1, 1);
    await p.close();
    assert.equal(Atomics.load(flags, 0), 1, 'the worker ran its onClose');
  });
});

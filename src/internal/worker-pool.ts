/**
 * The one worker pool: ordered tasks shared between worker threads and the thread that owns the
 * pool. Owns the threads it starts (their resource limits, their end), how much work each has
 * queued, the order results are delivered in, and how errors reach the owner; it knows nothing of
 * what the tasks are. Prepare's encoder, the result parser, the joiner and the CSV formatter all
 * run on it, each with its own policy on top:
 *
 * - credits: `hasRoom()` says whether some worker has fewer than `perWorker` tasks queued. Each
 *   worker counts the tasks it has finished in shared memory, so the owner sees how much a worker
 *   really has queued even while it is itself too busy to read the worker's messages. When every
 *   worker is busy, the owner does the task itself (`here`) rather than wait.
 * - order: every task, sent or done here, gets the next index, and `deliver` sees the results in
 *   that order however the threads finish.
 * - backpressure: `pending` counts tasks not yet delivered; `until(ready)` waits (on messages)
 *   until the caller's condition holds, and throws the pool's first failure instead.
 * - transfer, not copy: `send` and a worker's replies take transfer lists.
 *
 * A worker script calls {@link serveTasks} with its handler; {@link poolWorkerData} is what the
 * owner passed as `workerData`.
 */
import {
  isMainThread,
  parentPort,
  type ResourceLimits,
  type TransferListItem,
  Worker,
  workerData,
} from 'node:worker_threads';
import { type ErrorData, errorFromData, errorToData } from './thread-errors.js';

export interface WorkerPoolOptions<R> {
  /** The worker script; it calls `serveTasks`. */
  script: URL;
  threads: number;
  /** Given to every worker (`poolWorkerData()` there). Structured-cloned once per worker. */
  data?: unknown;
  resourceLimits?: ResourceLimits | undefined;
  /** Tasks queued on a worker at most: past that, `hasRoom()` is false. */
  perWorker: number;
  /** Each task's result, in task order (results done `here` included). May throw: the pool fails. */
  deliver: (result: R) => void;
  /** The worker in messages: `the parse worker exited with code 1`. */
  name: string;
}

/** Messages to a worker. */
type ToWorker<T> = { index: number; task: T } | { close: true };
/** Messages from a worker. */
type FromWorker<R> = { index: number; result: R } | { index: number; error: ErrorData } | { closed: true };

/** What a worker script is started with: the owner's `data`, and where it counts finished tasks. */
interface PoolWorkerData {
  data: unknown;
  finished: Int32Array;
  slot: number;
}

export class WorkerPool<T, R> {
  readonly #workers: Worker[];
  readonly #perWorker: number;
  readonly #deliver: (result: R) => void;
  /** Per worker: tasks it has finished (written by the worker, in shared memory) and tasks sent. */
  readonly #finished: Int32Array;
  readonly #sent: number[];
  /** Results that came before an earlier task's. */
  readonly #arrived = new Map<number, R>();
  #dispatched = 0;
  #delivered = 0;
  #closed = 0;
  #stopping = false;
  #failure: Error | undefined;
  /** Whoever waits in `until` is woken on every message. */
  #waiting: (() => void)[] = [];

  constructor(options: WorkerPoolOptions<R>) {
    const { threads, name } = options;
    this.#perWorker = options.perWorker;
    this.#deliver = options.deliver;
    this.#finished = new Int32Array(new SharedArrayBuffer(4 * threads));
    this.#sent = new Array<number>(threads).fill(0);
    this.#workers = Array.from({ length: threads }, (_, slot) => {
      const data: PoolWorkerData = { data: options.data, finished: this.#finished, slot };
      const worker = new Worker(options.script, { workerData: data, resourceLimits: options.resourceLimits });
      worker.on('message', (msg: FromWorker<R>) => this.#receive(msg));
      worker.on('error', (err) => this.#fail(err));
      worker.on('exit', (code) => {
        if (!this.#stopping) this.#fail(new Error(`the ${name} exited with code ${code}`));
      });
      return worker;
    });
  }

  /** Tasks given out (sent or done here) whose results are not delivered yet. */
  get pending(): number {
    return this.#dispatched - this.#delivered;
  }

  /** Whether some worker has fewer than `perWorker` tasks queued. */
  hasRoom(): boolean {
    return this.#leastQueued() !== -1;
  }

  /** Sends the next task to the worker with the fewest queued; only after `hasRoom()`. */
  send(task: T, transfer: readonly TransferListItem[] = []): void {
    const w = this.#leastQueued();
    if (w === -1) throw new Error('internal error: WorkerPool.send with every worker busy');
    this.#sent[w]!++;
    const message: ToWorker<T> = { index: this.#dispatched++, task };
    this.#workers[w]!.postMessage(message, transfer as TransferListItem[]);
  }

  /** Takes the next task's result, done on this thread. */
  here(result: R): void {
    this.#arrived.set(this.#dispatched++, result);
    this.#drain();
  }

  /** Resolves once `ready()` holds (checked again on every message); throws the first failure. */
  async until(ready: () => boolean): Promise<void> {
    while (!ready() && this.#failure === undefined) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** The first failure, thrown; nothing when there is none. */
  check(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * Waits for every task, then has each worker run its `onClose` (closing what it opened), then ends
   * the threads.
   */
  async close(): Promise<void> {
    if (this.#stopping) return;
    await this.until(() => this.pending === 0);
    for (const worker of this.#workers) worker.postMessage({ close: true } satisfies ToWorker<T>);
    await this.until(() => this.#closed === this.#workers.length);
    await this.stop();
  }

  /** Ends the threads now, whatever they are doing (after an error, or when nothing is left). */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }

  #leastQueued(): number {
    let best = -1;
    let fewest = this.#perWorker;
    for (let w = 0; w < this.#workers.length; w++) {
      const queued = this.#sent[w]! - Atomics.load(this.#finished, w);
      if (queued < fewest) {
        best = w;
        fewest = queued;
      }
    }
    return best;
  }

  #receive(msg: FromWorker<R>): void {
    if ('closed' in msg) this.#closed++;
    else if ('error' in msg) {
      this.#fail(errorFromData(msg.error));
      return;
    } else {
      this.#arrived.set(msg.index, msg.result);
      this.#drain();
    }
    this.#notify();
  }

  /** Delivers what has arrived, strictly in task order. */
  #drain(): void {
    try {
      for (
        let r = this.#arrived.get(this.#delivered);
        r !== undefined;
        r = this.#arrived.get(this.#delivered)
      ) {
        if (this.#failure !== undefined) return;
        this.#arrived.delete(this.#delivered);
        this.#delivered++;
        this.#deliver(r);
      }
    } catch (err) {
      this.#fail(err as Error);
    }
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    this.#notify();
  }

  #notify(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const wake of waiting) wake();
  }
}

/** In a worker script: the `data` its pool was given. */
export function poolWorkerData<D>(): D {
  return (workerData as PoolWorkerData).data as D;
}

export interface ServeOptions<T, R> {
  /** The buffers of a result to move to the owner rather than copy (each must be this result's alone). */
  transfer?: ((result: R) => TransferListItem[]) | undefined;
  /** Runs after a task's result is sent, for work the owner does not wait for. */
  afterReply?: ((task: T) => void) | undefined;
  /** Runs when the pool closes (`WorkerPool.close`), before the thread ends. */
  onClose?: (() => void) | undefined;
}

/**
 * In a worker script: runs `handle` on each task the pool sends and replies with its result, or its
 * error (a `BatchpipeError` arrives as one). Tasks run one at a time, in the order sent.
 */
export function serveTasks<T, R>(handle: (task: T) => R, options: ServeOptions<T, R> = {}): void {
  if (isMainThread || parentPort === null) throw new Error('internal error: serveTasks outside a worker');
  const port = parentPort;
  const { finished, slot } = workerData as PoolWorkerData;
  port.on('message', (msg: ToWorker<T>) => {
    if ('close' in msg) {
      try {
        options.onClose?.();
        port.postMessage({ closed: true } satisfies FromWorker<R>);
      } catch (err) {
        port.postMessage({ index: -1, error: errorToData(err) } satisfies FromWorker<R>);
      }
      return;
    }
    try {
      const result = handle(msg.task);
      const reply: FromWorker<R> = { index: msg.index, result };
      port.postMessage(reply, options.transfer?.(result) ?? []);
    } catch (err) {
      port.postMessage({ index: msg.index, error: errorToData(err) } satisfies FromWorker<R>);
    }
    Atomics.add(finished, slot, 1);
    options.afterReply?.(msg.task);
  });
}

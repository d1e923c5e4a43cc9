/**
 * Where line-aligned chunks are parsed, staged and joined to their requests: on this thread, or on
 * this thread and a parse worker at once (this thread takes a chunk itself whenever the worker
 * already has enough queued; each thread then joins one partition).
 */
import { rmSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { errorFromData } from '../internal/thread-errors.js';
import { type JoinCounts, type OutcomeStage, PARTITIONS, scratchPath } from '../ledger/outcome-stage.js';
import type { JoinWorkerData, JoinWorkerReply } from './join-worker.js';
import { type LineChunk, parseLineChunk } from './line-chunks.js';
import type { OutcomeContext } from './line-outcome.js';
import type { ParseWorkerData, ParseWorkerReply } from './parse-worker.js';

/** Running totals of what was staged. */
export interface StagedTotals {
  /** Non-blank lines staged. */
  lines: number;
  /** The highest line number seen. */
  lastLine: number;
  /** Lines staged that are not successes. */
  failures: number;
}

export interface ChunkParser {
  readonly kind: 'inline' | 'threaded';
  /** Parses and stages a chunk here, or hands it to the worker; resolves when there is room for another. */
  submit(chunk: LineChunk): Promise<void>;
  /** Waits until every chunk is staged, then joins them all to their requests (see `OutcomeStage`). */
  finish(): Promise<void>;
  /** After `finish`: whether a worker now checkpoints the ledger's WAL, until `close`. */
  readonly checkpointing: boolean;
  /** Stops what runs on after `finish` (the background checkpoints). */
  close(): Promise<void>;
  /** Stops the worker and removes its scratch databases (after an error). */
  abort(): Promise<void>;
}

/** Parses and stages one chunk on this thread. */
function stageHere(
  chunk: LineChunk,
  ctx: OutcomeContext,
  source: string,
  stage: OutcomeStage,
  totals: StagedTotals,
) {
  const parsed = parseLineChunk(chunk, ctx, source);
  stage.add(parsed);
  totals.lines += parsed.outcomes.length;
  totals.lastLine = Math.max(totals.lastLine, parsed.lastLine);
  totals.failures += parsed.failures;
}

/** Everything on this thread: no start-up cost, for small files and code-supplied zod schemas. */
export function inlineParser(
  ctx: OutcomeContext,
  source: string,
  stage: OutcomeStage,
  totals: StagedTotals,
): ChunkParser {
  return {
    kind: 'inline',
    async submit(chunk) {
      stageHere(chunk, ctx, source, stage, totals);
    },
    async finish() {
      stage.joinHere(ALL_PARTITIONS);
    },
    checkpointing: false,
    async close() {},
    async abort() {},
  };
}

/** Chunks queued on the worker at most; beyond that this thread parses the next one itself. */
const WORKER_QUEUE = 2;

/**
 * A capped old generation: a chunk in flight needs a few MB. The young generation keeps V8's default
 * size: each line's parse tree is garbage at once, and a small one only adds collections (the
 * worker's GC time 0.6 s → 0.45 s on 1,000,000 lines against 8 MB, for no more peak memory).
 */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 128 };

const ALL_PARTITIONS = Array.from({ length: PARTITIONS }, (_, p) => p);

/** One parse worker staging into its scratch database, plus this thread staging into `stage`. */
export function threadedParser(
  ctx: OutcomeContext,
  data: Omit<ParseWorkerData, 'scratchPath'>,
  stage: OutcomeStage,
  totals: StagedTotals,
): ChunkParser {
  const stagingPath = scratchPath('stage');
  const joinedPath = scratchPath('joined');
  const worker = new Worker(new URL('./parse-worker.js', import.meta.url), {
    workerData: { ...data, scratchPath: stagingPath } satisfies ParseWorkerData,
    resourceLimits: WORKER_LIMITS,
  });
  let queued = 0;
  let closed = false;
  const joiner = startJoinWorker();
  const stopCheckpoints = new Int32Array(new SharedArrayBuffer(4));
  let checkpointing = false;
  let failure: Error | undefined;
  let stopping = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const fail = (err: Error) => {
    failure ??= err;
    notify();
  };
  const until = async (ready: () => boolean) => {
    while (!ready() && !failure) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    if (failure) throw failure;
  };
  worker.on('message', (msg: ParseWorkerReply) => {
    if ('error' in msg) return fail(errorFromData(msg.error));
    if ('closed' in msg) closed = true;
    else {
      queued--;
      totals.lines += msg.parsed.lines;
      totals.lastLine = Math.max(totals.lastLine, msg.parsed.lastLine);
      totals.failures += msg.parsed.failures;
    }
    notify();
  });
  worker.on('error', fail);
  worker.on('exit', (code) => {
    if (!stopping) fail(new Error(`the parse worker exited with code ${code}`));
  });
  const stop = async () => {
    stopping = true;
    await worker.terminate();
  };
  const removeScratch = () => {
    rmSync(stagingPath, { force: true });
    rmSync(joinedPath, { force: true });
  };
  return {
    kind: 'threaded',
    async submit(chunk) {
      if (failure) throw failure;
      // Let the worker's replies in first: a synchronous input never yields to the event loop.
      if (queued >= WORKER_QUEUE) await new Promise(setImmediate);
      if (queued >= WORKER_QUEUE) {
        stageHere(chunk, ctx, data.source, stage, totals);
        return;
      }
      queued++;
      // A copy of its own to transfer: the input's buffers may be views the stream still uses.
      const bytes = new Uint8Array(chunk.bytes);
      worker.postMessage({ bytes, firstLine: chunk.firstLine }, [bytes.buffer]);
    },
    async finish() {
      await until(() => queued === 0);
      worker.postMessage({ end: true });
      await until(() => closed);
      await stop();
      stage.attachStaging(stagingPath);
      // A join worker joins the last partition while this thread joins the others. It cannot open
      // an in-memory ledger: then all are joined here.
      const ledgerPath = stage.ledgerPath;
      if (ledgerPath === undefined) {
        await joiner.stop();
        return stage.joinHere(ALL_PARTITIONS);
      }
      const theirs = ALL_PARTITIONS.slice(-1);
      const joined = joiner.join({
        ledgerPath,
        stagingPaths: [stage.stagingPath, stagingPath],
        partitions: theirs,
        outPath: joinedPath,
        stopCheckpoints,
      });
      stage.joinHere(ALL_PARTITIONS.filter((p) => !theirs.includes(p)));
      stage.attachJoined(joinedPath, await joined);
      checkpointing = true;
    },
    get checkpointing() {
      return checkpointing;
    },
    async close() {
      Atomics.store(stopCheckpoints, 0, 1);
      Atomics.notify(stopCheckpoints, 0);
      await joiner.exited;
    },
    async abort() {
      await Promise.all([stop(), joiner.stop()]);
      removeScratch();
    },
  };
}

interface JoinWorker {
  /** Starts the join; resolves with the worker's counts, rejects with its error. */
  join(data: JoinWorkerData): Promise<JoinCounts>;
  /** Resolves when the worker has ended, whichever way. */
  exited: Promise<void>;
  stop(): Promise<void>;
}

/** A join worker, started now (its start-up overlaps the parse) and waiting for `join`. */
function startJoinWorker(): JoinWorker {
  const worker = new Worker(new URL('./join-worker.js', import.meta.url));
  let stopping = false;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const joined = new Promise<JoinCounts>((resolve, reject) => {
    worker.once('message', (msg: JoinWorkerReply) =>
      'error' in msg ? reject(errorFromData(msg.error)) : resolve(msg.joined),
    );
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (!stopping) reject(new Error(`the join worker exited with code ${code}`));
    });
  });
  // Awaited only once this thread's own join is done: a failure must not go unhandled until then.
  joined.catch(() => {});
  return {
    join(data) {
      worker.postMessage(data);
      return joined;
    },
    exited,
    async stop() {
      stopping = true;
      await worker.terminate();
    },
  };
}

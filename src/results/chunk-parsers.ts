/**
 * Where line-aligned chunks are parsed and staged: on this thread, or on this thread and a parse
 * worker at once (this thread takes a chunk itself whenever the worker already has enough queued).
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { errorFromData } from '../prepare/thread-errors.js';
import { type LineChunk, parseLineChunk } from './line-chunks.js';
import type { OutcomeContext } from './line-outcome.js';
import type { OutcomeStage } from './outcome-stage.js';
import type { ParseWorkerData, ParseWorkerReply } from './parse-worker.js';

/** Running totals of what was staged. */
export interface StagedTotals {
  /** Non-blank lines staged. */
  lines: number;
  /** The highest line number seen. */
  lastLine: number;
}

export interface ChunkParser {
  readonly kind: 'inline' | 'threaded';
  /** Parses and stages a chunk here, or hands it to the worker; resolves when there is room for another. */
  submit(chunk: LineChunk): Promise<void>;
  /** Waits until every chunk is staged (the worker's scratch database attached to `stage`). */
  finish(): Promise<void>;
  /** Stops the worker and removes its scratch database (after an error). */
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
    async finish() {},
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

let scratchCount = 0;

/** One parse worker staging into its scratch database, plus this thread staging into `stage`. */
export function threadedParser(
  ctx: OutcomeContext,
  data: Omit<ParseWorkerData, 'scratchPath'>,
  stage: OutcomeStage,
  totals: StagedTotals,
): ChunkParser {
  const scratchPath = join(tmpdir(), `batchpipe-stage-${process.pid}-${scratchCount++}.db`);
  const worker = new Worker(new URL('./parse-worker.js', import.meta.url), {
    workerData: { ...data, scratchPath } satisfies ParseWorkerData,
    resourceLimits: WORKER_LIMITS,
  });
  let queued = 0;
  let closed = false;
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
  const removeScratch = () => rmSync(scratchPath, { force: true });
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
      try {
        await until(() => queued === 0);
        worker.postMessage({ end: true });
        await until(() => closed);
        await stop();
        stage.attach(scratchPath);
      } finally {
        // Unlinking an attached database is fine on POSIX: it lives until detached.
        removeScratch();
      }
    },
    async abort() {
      await stop();
      removeScratch();
    },
  };
}

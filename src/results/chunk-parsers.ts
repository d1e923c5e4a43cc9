/**
 * Where line-aligned chunks are parsed, staged and joined to their requests: on this thread, or on
 * this thread and a parse worker at once (this thread takes a chunk itself whenever the worker
 * already has enough queued; each thread then joins one partition).
 */
import { rmSync } from 'node:fs';
import { SpareBuffers } from '../internal/spare-buffers.js';
import { WorkerPool } from '../internal/worker-pool.js';
import { type JoinCounts, type OutcomeStage, PARTITIONS, scratchPath } from '../ledger/outcome-stage.js';
import type { JoinWorkerData } from './join-worker.js';
import { type LineChunk, parseLineChunk, type StagedTotals } from './line-chunks.js';
import type { OutcomeContext } from './line-outcome.js';
import type { ParseReply, ParseTask, ParseWorkerData } from './parse-worker.js';

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

/** Parses and stages one chunk on this thread; what it staged. */
function stageHere(chunk: LineChunk, ctx: OutcomeContext, source: string, stage: OutcomeStage): StagedTotals {
  const parsed = parseLineChunk(chunk, ctx, source);
  stage.add(parsed);
  return { lines: parsed.outcomes.length, lastLine: parsed.lastLine, failures: parsed.failures };
}

function addTotals(totals: StagedTotals, chunk: StagedTotals): void {
  totals.lines += chunk.lines;
  totals.lastLine = Math.max(totals.lastLine, chunk.lastLine);
  totals.failures += chunk.failures;
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
      addTotals(totals, stageHere(chunk, ctx, source, stage));
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
  // The chunks' copies go round: the worker hands each back once it is staged.
  const spares = new SpareBuffers(WORKER_QUEUE + 1);
  const parser = new WorkerPool<ParseTask, StagedTotals | ParseReply>({
    script: new URL('./parse-worker.js', import.meta.url),
    threads: 1,
    data: { ...data, scratchPath: stagingPath } satisfies ParseWorkerData,
    resourceLimits: WORKER_LIMITS,
    perWorker: WORKER_QUEUE,
    deliver: (counts) => {
      addTotals(totals, counts);
      if ('spent' in counts) spares.put(counts.spent);
    },
    name: 'parse worker',
  });
  // The join worker starts now (its start-up overlaps the parse) and waits for its one task.
  let joined: JoinCounts | undefined;
  const joiner = new WorkerPool<JoinWorkerData, JoinCounts>({
    script: new URL('./join-worker.js', import.meta.url),
    threads: 1,
    perWorker: 1,
    deliver: (counts) => {
      joined = counts;
    },
    name: 'join worker',
  });
  const stopCheckpoints = new Int32Array(new SharedArrayBuffer(4));
  let checkpointing = false;
  const removeScratch = () => {
    rmSync(stagingPath, { force: true });
    rmSync(joinedPath, { force: true });
  };
  return {
    kind: 'threaded',
    async submit(chunk) {
      parser.check();
      // A busy worker gets a moment (and its replies are read: a synchronous input never yields to
      // the event loop) before this thread takes the chunk.
      if (!parser.hasRoom()) await new Promise(setImmediate);
      if (!parser.hasRoom()) {
        parser.here(stageHere(chunk, ctx, data.source, stage));
        return;
      }
      // A copy of its own to transfer: the input's buffers may be views the stream still uses.
      const bytes = spares.copy(chunk.bytes);
      parser.send({ bytes, firstLine: chunk.firstLine }, [bytes.buffer]);
    },
    async finish() {
      // The worker closes its staging database once every chunk is staged.
      await parser.close();
      stage.attachStaging(stagingPath);
      // A join worker joins the last partition while this thread joins the others. It cannot open
      // an in-memory ledger: then all are joined here.
      const ledgerPath = stage.ledgerPath;
      if (ledgerPath === undefined) {
        await joiner.stop();
        return stage.joinHere(ALL_PARTITIONS);
      }
      const theirs = ALL_PARTITIONS.slice(-1);
      joiner.send({
        ledgerPath,
        stagingPaths: [stage.stagingPath, stagingPath],
        partitions: theirs,
        outPath: joinedPath,
        stopCheckpoints,
      });
      stage.joinHere(ALL_PARTITIONS.filter((p) => !theirs.includes(p)));
      await joiner.until(() => joined !== undefined);
      stage.attachJoined(joinedPath, joined!);
      checkpointing = true;
    },
    get checkpointing() {
      return checkpointing;
    },
    async close() {
      Atomics.store(stopCheckpoints, 0, 1);
      Atomics.notify(stopCheckpoints, 0);
      await joiner.close();
    },
    async abort() {
      await Promise.all([parser.stop(), joiner.stop()]);
      removeScratch();
    },
  };
}

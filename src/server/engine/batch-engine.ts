import { setMaxListeners } from 'node:events';
import { existsSync, mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { createSemaphore } from '../../internal/semaphore.js';
import type { Executor } from '../execution.js';
import { injectedLineError } from '../faults/api-faults.js';
import type { StallStatus } from '../faults/stall.js';
import type { DataDir } from '../store/data-dir.js';
import type { ServerStore } from '../store/server-store.js';
import type { BatchError, BatchStatus, FinalStatus, OutputLine } from '../types.js';
import type { ServerClock } from '../util/clock.js';
import { type DialectLifecycle, type Lifecycles, OPENAI_LIFECYCLE } from './dialect-lifecycle.js';
import { finalizeBatch } from './finalize-batch.js';
import { isBlank, readLines } from './jsonl-lines.js';
import { cancelledLine, expiredLine } from './output-line.js';
import { parseRequestLine } from './request-line.js';
import { openJournal, type ResultJournal, type Tally } from './result-journal.js';
import { runRequests } from './run-requests.js';
import { checkEnqueuedTokens } from './token-limit.js';
import { validateInputFile } from './validate-input.js';

export interface BatchEngineOptions {
  store: ServerStore;
  dataDir: DataDir;
  executor: Executor;
  seed: number;
  /** Requests running at once, across all batches. */
  concurrency: number;
  enqueuedTokenLimit?: number | undefined;
  /** `--fail-validation-line N`: inputs of N or more requests fail validation naming line N. */
  failValidationLine?: number | undefined;
  /** What each API's batches add to the lifecycle (default: every batch is an OpenAI one). */
  lifecycles?: Lifecycles;
  /** The server's (possibly skewed) clock. */
  clock: ServerClock;
  log: (line: string) => void;
  /** `--stall`: awaited as a batch enters a status (faults/stall.ts); resolves at once without one. */
  holdIn?: ((status: StallStatus, signal: AbortSignal) => Promise<void>) | undefined;
}

/** Drives batches through their lifecycle in the background; the API only records intents. */
export interface BatchEngine {
  /** Picks up every unfinished batch in the store (after a restart, they continue where they were). */
  start(): void;
  /** Starts a newly created batch. */
  submit(batchId: string): void;
  /** Stops a batch the API has marked `cancelling`; it ends `cancelled` with what has finished. */
  cancel(batchId: string): void;
  /** Removes the contents of deleted files that no unfinished batch still reads. */
  sweep(): void;
  /** Live counts of a running batch (the store has them only once it ends). */
  tally(batchId: string): Tally | undefined;
  /** Stops all work, keeping every finished line; unfinished batches resume on the next start. */
  close(): Promise<void>;
}

type StopReason = 'cancel' | 'expire' | 'shutdown';

const MAX_TIMER_MS = 2 ** 31 - 1;

interface Run {
  controller: AbortController;
  reason: StopReason | undefined;
  tally: Tally | undefined;
  timer: NodeJS.Timeout | undefined;
  done: Promise<void>;
}

/** Creates the engine that validates, runs, expires, cancels and finalizes batches. */
export function createBatchEngine(options: BatchEngineOptions): BatchEngine {
  const { store, dataDir, executor, seed, log, clock } = options;
  const lifecycleOf = (dialect: Parameters<Lifecycles>[0] | undefined): DialectLifecycle =>
    options.lifecycles?.(dialect ?? 'openai') ?? OPENAI_LIFECYCLE;
  const holdIn = options.holdIn ?? (async () => {});
  const gate = createSemaphore(options.concurrency);
  const runs = new Map<string, Run>();
  // One validation at a time, so the enqueued-token check sees every batch ahead of it.
  let validationQueue: Promise<unknown> = Promise.resolve();
  let closing = false;

  const stop = (run: Run, reason: StopReason) => {
    if (run.reason) return;
    run.reason = reason;
    run.controller.abort(new Error(`batch stopped: ${reason}`));
  };

  const submit = (batchId: string) => {
    if (closing || runs.has(batchId)) return;
    const run: Run = {
      controller: new AbortController(),
      reason: undefined,
      tally: undefined,
      timer: undefined,
      done: Promise.resolve(),
    };
    // Every request in flight listens to its batch's signal (up to --concurrency of them): not a leak.
    setMaxListeners(0, run.controller.signal);
    runs.set(batchId, run);
    run.done = drive(batchId, run).finally(() => {
      clearTimeout(run.timer);
      runs.delete(batchId);
      sweepDeletedFiles();
    });
  };

  async function drive(batchId: string, run: Run): Promise<void> {
    try {
      let status = store.getBatch(batchId)?.batch.status;
      if (status === 'validating') {
        await holdIn('validating', run.controller.signal);
        const validated = validationQueue.then(() => validate(batchId, run));
        validationQueue = validated.catch(() => undefined);
        status = await validated;
      }
      if (status === 'in_progress' || status === 'cancelling' || status === 'finalizing')
        await advance(batchId, run);
    } catch (err) {
      if (run.reason === 'shutdown') return;
      log(`${batchId}: failed inside the server: ${err instanceof Error ? err.message : String(err)}`);
      failBatch(batchId, [
        { code: 'server_error', message: `The local server failed: ${String(err)}`, param: null, line: null },
      ]);
    }
  }

  async function validate(batchId: string, run: Run): Promise<BatchStatus | undefined> {
    const stored = store.getBatch(batchId);
    if (!stored || run.reason === 'shutdown') return undefined;
    if (stored.batch.status !== 'validating') return stored.batch.status;
    const { batch } = stored;
    const lifecycle = lifecycleOf(stored.internals.dialect);
    const prepared = await lifecycle.prepareInput?.(stored);
    const result = prepared
      ? ({ ok: false, errors: prepared } as const)
      : await validateInputFile(
          dataDir.filePath(batch.input_file_id),
          batch.endpoint,
          lifecycle.limits,
          typeof lifecycle.models === 'function' ? lifecycle.models(stored) : lifecycle.models,
        );
    let errors = result.ok ? undefined : result.errors;
    if (result.ok) {
      const { model, tokens } = result.summary;
      const tooMany = lifecycle.countsEnqueuedTokens
        ? checkEnqueuedTokens(model, tokens, store.queuedTokens(model, batchId), options.enqueuedTokenLimit)
        : undefined;
      const injected = lifecycle.injectsLineErrors
        ? injectedLineError(result.summary.total, options.failValidationLine)
        : undefined;
      // The file's lines are checked before its place in the queue.
      if (injected) errors = [injected];
      else if (tooMany) errors = [tooMany];
    }
    const updated = store.updateBatch(batchId, ({ batch: b, internals }) => {
      if (b.status !== 'validating') return; // cancelled meanwhile
      const now = clock.nowSeconds();
      if (errors) {
        b.status = 'failed';
        b.failed_at = now;
        b.errors = { object: 'list', data: errors };
        if (result.ok) b.model = result.summary.model;
        return;
      }
      if (!result.ok) return;
      b.status = 'in_progress';
      b.in_progress_at = now;
      b.model = result.summary.model;
      b.request_counts = { total: result.summary.total, completed: 0, failed: 0 };
      internals.tokens = result.summary.tokens;
    });
    const { batch: after } = updated;
    if (after.status === 'failed')
      log(`${batchId}: failed validation: ${after.errors?.data[0]?.code ?? 'unknown'}`);
    if (after.status === 'in_progress') {
      log(`${batchId}: in_progress, ${after.request_counts.total} requests for ${after.model}`);
    }
    return after.status;
  }

  async function advance(batchId: string, run: Run): Promise<void> {
    const stored = store.getBatch(batchId);
    if (!stored) return;
    const { batch, internals } = stored;
    const lifecycle = lifecycleOf(internals.dialect);
    const journal = await openBatchJournal(batchId, internals.outputFileId, internals.errorFileId);
    run.tally = journal.tally;
    const inputPath = dataDir.filePath(batch.input_file_id);
    let final: FinalStatus;
    if (batch.status === 'in_progress') {
      armExpiry(run, internals.deadlineMs);
      await holdIn('in_progress', run.controller.signal);
      if (!run.reason) {
        await runRequests({
          batchId,
          inputPath,
          journal,
          executor,
          gate,
          signal: run.controller.signal,
          seed,
        });
      }
      clearTimeout(run.timer);
      if (run.reason === 'shutdown') {
        await journal.close();
        return;
      }
      const status = store.getBatch(batchId)?.batch.status;
      if (status === 'cancelling') final = 'cancelled';
      else if (run.reason === 'expire') {
        await recordUnrun(batchId, inputPath, journal, expiredLine);
        final = 'expired';
      } else {
        store.updateBatch(batchId, ({ batch: b }) => {
          b.status = 'finalizing';
          b.finalizing_at = clock.nowSeconds();
        });
        final = 'completed';
      }
    } else {
      final = batch.status === 'cancelling' ? 'cancelled' : 'completed';
    }
    if (final === 'completed') await holdIn('finalizing', run.controller.signal);
    if (run.reason === 'shutdown') {
      await journal.close();
      return;
    }
    // A batch cancelled while validating may have no input yet (a Gemini file not yet converted).
    if (final === 'cancelled' && lifecycle.recordsCancelled && existsSync(inputPath)) {
      await recordUnrun(batchId, inputPath, journal, cancelledLine);
    }
    const finished = await finalizeBatch(
      store,
      dataDir,
      batchId,
      journal,
      final,
      clock.nowSeconds(),
      lifecycle,
    );
    const counts = finished.batch.request_counts;
    log(`${batchId}: ${final}, ${counts.completed} completed and ${counts.failed} failed of ${counts.total}`);
  }

  /** Stops the run at the deadline; re-arms in steps, since a timer cannot wait longer than ~24.8 days. */
  function armExpiry(run: Run, deadlineMs: number) {
    const wait = deadlineMs - clock.nowMs();
    if (wait <= 0) stop(run, 'expire');
    else run.timer = setTimeout(() => armExpiry(run, deadlineMs), Math.min(wait, MAX_TIMER_MS));
  }

  async function openBatchJournal(
    batchId: string,
    outputFileId: string,
    errorFileId: string,
  ): Promise<ResultJournal> {
    const work = dataDir.workDir(batchId);
    mkdirSync(work, { recursive: true });
    // After a crash mid-finalize a journal file may already sit at its final path.
    const pick = (staging: string, final: string) =>
      !existsSync(staging) && existsSync(final) ? final : staging;
    return openJournal(
      pick(path.join(work, 'output.jsonl'), dataDir.filePath(outputFileId)),
      pick(path.join(work, 'errors.jsonl'), dataDir.filePath(errorFileId)),
    );
  }

  /** Writes an error line (`batch_expired`, `batch_cancelled`) for every request that has none yet. */
  async function recordUnrun(
    batchId: string,
    inputPath: string,
    journal: ResultJournal,
    lineFor: (batchId: string, customId: string) => OutputLine,
  ): Promise<void> {
    for await (const { text } of readLines(inputPath)) {
      if (isBlank(text)) continue;
      const parsed = parseRequestLine(text);
      if (!parsed.ok || journal.isDone(parsed.request.custom_id)) continue;
      journal.record(lineFor(batchId, parsed.request.custom_id), false);
      if (journal.needsDrain()) await journal.drained();
    }
  }

  function failBatch(batchId: string, errors: BatchError[]) {
    try {
      store.updateBatch(batchId, ({ batch }) => {
        batch.status = 'failed';
        batch.failed_at = clock.nowSeconds();
        batch.errors = { object: 'list', data: errors };
      });
    } catch {
      // The store is gone (closing): the batch resumes on the next start.
    }
  }

  function sweepDeletedFiles() {
    if (closing) return;
    for (const fileId of store.deletedUnreferenced()) {
      void rm(dataDir.filePath(fileId), { force: true })
        .then(() => {
          if (!closing) store.markSwept(fileId);
        })
        .catch(() => undefined); // Retried on the next sweep.
    }
  }

  return {
    start() {
      sweepDeletedFiles();
      for (const batchId of store.unfinishedBatchIds()) submit(batchId);
    },
    submit,
    cancel(batchId) {
      const run = runs.get(batchId);
      if (run) stop(run, 'cancel');
      else submit(batchId);
    },
    sweep: sweepDeletedFiles,
    tally: (batchId) => runs.get(batchId)?.tally,
    async close() {
      closing = true;
      for (const run of runs.values()) stop(run, 'shutdown');
      await Promise.all([...runs.values()].map((run) => run.done));
    },
  };
}

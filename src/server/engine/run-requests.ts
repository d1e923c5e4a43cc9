import type { Semaphore } from '../../internal/semaphore.js';
import type { ExecRequest, Executor, Outcome } from '../execution.js';
import { hash32 } from '../util/prng.js';
import { isBlank, readLines } from './jsonl-lines.js';
import { placeOutcome } from './output-line.js';
import { parseRequestLine } from './request-line.js';
import type { ResultJournal } from './result-journal.js';

/** Requests are read in windows this big and started in a shuffled order within each. */
const WINDOW = 64;

export interface RunRequestsOptions {
  batchId: string;
  inputPath: string;
  journal: ResultJournal;
  executor: Executor;
  gate: Semaphore;
  /** Aborts on cancel, expiry or shutdown: nothing more starts, running requests are dropped. */
  signal: AbortSignal;
  seed: number;
}

/**
 * Runs every request of a validated input file that the journal has no line for yet, recording each
 * outcome as it completes. Streams the input; at most a window of requests plus the running ones are in
 * memory. Lines are written in completion order: requests start in a deterministic shuffle of each window
 * and finish whenever their executor does. Returns once all have run, or once the signal has aborted and
 * the running ones have settled (their results discarded).
 */
export async function runRequests(options: RunRequestsOptions): Promise<void> {
  const { batchId, journal, executor, gate, signal, seed } = options;
  const running = new Set<Promise<void>>();

  const start = async (request: ExecRequest) => {
    const release = await gate.acquire(signal);
    const task = execute(executor, request, signal)
      .then((outcome) => {
        // A result that arrives after a stop belongs to a request the stop already gave up on.
        if (outcome && !signal.aborted) {
          const placed = placeOutcome(batchId, request.customId, outcome);
          journal.record(placed.line, placed.ok);
        }
      })
      .finally(() => {
        release();
        running.delete(task);
      });
    running.add(task);
    if (journal.needsDrain()) await journal.drained();
  };

  let window: ExecRequest[] = [];
  const flush = async () => {
    const order = window
      .map((request) => ({ request, key: hash32(seed, 'order', batchId, request.customId) }))
      .sort((a, b) => a.key - b.key);
    window = [];
    for (const { request } of order) {
      if (signal.aborted) return;
      await start(request);
    }
  };

  try {
    for await (const { text } of readLines(options.inputPath)) {
      if (signal.aborted) break;
      if (isBlank(text)) continue;
      const parsed = parseRequestLine(text);
      // Validation passed this file; a line that no longer parses has no custom_id to answer for.
      if (!parsed.ok || journal.isDone(parsed.request.custom_id)) continue;
      const { custom_id, url, body } = parsed.request;
      window.push({ batchId, customId: custom_id, url, body });
      if (window.length >= WINDOW) await flush();
    }
    if (!signal.aborted) await flush();
  } catch (err) {
    if (!signal.aborted) throw err;
  } finally {
    await Promise.all(running);
  }
}

/** Runs one request; a failure of the executor itself becomes a non-HTTP error line, not a crash. */
async function execute(
  executor: Executor,
  request: ExecRequest,
  signal: AbortSignal,
): Promise<Outcome | undefined> {
  try {
    return await executor(request, signal);
  } catch (err) {
    if (signal.aborted) return undefined;
    return {
      kind: 'error',
      code: 'server_error',
      message: `The request failed inside the local server: ${String(err)}`,
    };
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import type { Backend } from '../backends/backend.js';
import { BatchStore } from './batch-store.js';
import { type CollectOptions, collectRound } from './collect.js';
import { restageRetries } from './restage.js';
import { type SubmitOptions, submitReady } from './submit.js';

export interface DriveOptions {
  submit: SubmitOptions;
  collect: CollectOptions;
  /** First wait between polls, in ms; it grows while nothing changes, up to 10×. */
  pollIntervalMs: number;
  /** Poll until every request is final (false: submit what is ready and return). */
  wait: boolean;
  /** Only one polling round. */
  once?: boolean | undefined;
  log?: ((line: string) => void) | undefined;
}

/**
 * Submit, collect and retry until every request of the ledger is final: the loop behind `run`,
 * `submit` and `collect`. Each step reads its state from the ledger, so the loop can be killed at
 * any moment and started again.
 */
export async function driveBatches(
  store: BatchStore,
  backend: Backend,
  options: DriveOptions,
): Promise<{ final: boolean }> {
  const { ledger } = store;
  const unfinished = ledger.db
    .prepare<[], number>("SELECT count(*) FROM requests WHERE state IN ('staged', 'submitted')")
    .pluck();
  let wait = options.pollIntervalMs;
  for (;;) {
    const restaged = restageRetries(ledger);
    if (restaged.requests > 0)
      options.log?.(`retrying ${restaged.requests} requests in ${restaged.files} new files`);
    await submitReady(store, backend, options.submit);
    if (!options.wait) return { final: unfinished.get() === 0 };
    const round = await collectRound(store, backend, options.collect);
    if (unfinished.get() === 0) return { final: true };
    if (options.once) return { final: false };
    if (round.settled > 0) wait = options.pollIntervalMs;
    else {
      await sleep(wait);
      wait = Math.min(wait * 1.5, options.pollIntervalMs * 10);
    }
  }
}

export { BatchStore };

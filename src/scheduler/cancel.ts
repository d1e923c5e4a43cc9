/**
 * Cancelling a run's batches: asks the provider, then collects them as they end. Touches the
 * ledger and the provider only through its `ScheduledRun`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type CollectOptions, collectRound } from './collect.js';
import type { ScheduledRun } from './scheduled-run.js';

/**
 * Asks the provider to cancel every open batch of the run, then polls until they have ended so what
 * they finished is recorded (a batch that ended meanwhile is collected as it ended). Returns the
 * batches it asked to cancel.
 */
export async function cancelOpenBatches(
  run: ScheduledRun,
  options: { collect: CollectOptions; pollIntervalMs: number },
): Promise<{ cancelled: number }> {
  const open = run.tables.openBatches();
  for (const row of open) {
    const id = row.remote_id!;
    await run.remote(`cancelling ${id}`, () => run.provider.cancelBatch(id));
  }
  run.emit({ type: 'batches.cancelling', batches: open.length });
  for (
    let round = await collectRound(run, options.collect);
    round.open > 0;
    round = await collectRound(run, options.collect)
  ) {
    await sleep(options.pollIntervalMs);
  }
  return { cancelled: open.length };
}

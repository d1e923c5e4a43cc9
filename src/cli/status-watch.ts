/**
 * `status --watch`: the status table (or JSON) again every few seconds until every request is final.
 * On a terminal the table is redrawn in place; piped, it is written again only when something in
 * it changed (a count, a status, a stuck flag), so a log of it stays short. Only reads the ledger:
 * what it shows is what the last poll of a running `run` or `collect` recorded.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CostSettings } from '../cost/run-cost.js';
import type { Ledger } from '../ledger/ledger.js';
import { status } from '../scheduler/api.js';
import type { RunStatus } from '../scheduler/status.js';
import { terminalFrame } from './progress/terminal-frame.js';
import { formatStatusTable, isStuck, statusJson } from './status-table.js';
import type { StuckThresholds } from './stuck.js';

export interface WatchOptions {
  json?: boolean | undefined;
  intervalMs: number;
  stuckAfter: StuckThresholds;
  prices?: CostSettings | undefined;
}

/** Every request final, and prepare (if any) read its whole input. */
function finished(s: RunStatus): boolean {
  return s.requests.staged + s.requests.submitted === 0 && s.prepare?.state !== 'incomplete';
}

export async function watchStatus(ledger: Ledger, options: WatchOptions): Promise<void> {
  const frame = process.stdout.isTTY && !options.json ? terminalFrame(process.stdout) : undefined;
  let told = '';
  for (;;) {
    const s = status({ ledger, prices: options.prices });
    const now = Date.now();
    if (frame) frame.draw(formatStatusTable(s, now, options.stuckAfter).trimEnd().split('\n'));
    else {
      // What a change is: counts, statuses, progress, stuck flags (not the ages, which always move).
      const key = JSON.stringify([
        s.requests,
        s.batches.map((b) => [
          b.id,
          b.status,
          b.request_counts,
          b.settled,
          isStuck(b, now, options.stuckAfter),
        ]),
      ]);
      if (key !== told) {
        told = key;
        process.stdout.write(
          options.json
            ? `${JSON.stringify(statusJson(s, now, options.stuckAfter))}\n`
            : `${formatStatusTable(s, now, options.stuckAfter)}\n`,
        );
      }
    }
    if (finished(s)) break;
    await sleep(options.intervalMs);
  }
  frame?.keep();
}

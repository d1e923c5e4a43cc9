/**
 * Deadline hedging (`run --deadline D --hedge direct|flex`): while batches run, each poll asks whether
 * one has stalled (no progress and no change of status for a while, as batches stuck in `validating` or
 * `finalizing` are) or whether the deadline would be missed at the rate observed. Then the run hedges:
 * every open batch is marked (with its reason, before the cancel is asked) and cancelled, keeping what
 * it finished; its unanswered requests, and every request still staged, go on the hedge path (the
 * direct path, src/scheduler/direct). Each decision is an event with its reason. Keeps the progress it
 * has seen in memory; writes the ledger through BatchTables only.
 */
import type { BatchRow } from '../ledger/batches.js';
import type { DirectPath } from './direct/direct-drive.js';
import type { ScheduledRun } from './scheduled-run.js';

export interface HedgeOptions {
  /** When every row should be answered, in ms since the epoch. */
  deadlineAt: number;
  /** Where the unanswered rows go. */
  path: DirectPath;
  /** A batch that shows no progress and no change of status for this long has stalled (ms). */
  stallMs: number;
}

/** The stall threshold unless given: a quarter of the time to the deadline, at most 10 minutes, at least 5 s. */
export function defaultStallMs(deadlineMs: number): number {
  return Math.max(5_000, Math.min(10 * 60_000, deadlineMs / 4));
}

interface Seen {
  /** Status and requests done, as last seen. */
  key: string;
  /** When that changed last (ms). */
  since: number;
}

/** Watches the open batches of a run poll after poll, and says when (and why) to hedge. */
export class HedgeWatch {
  readonly #seen = new Map<number, Seen>();
  readonly #started = Date.now();
  #doneAtStart: number | undefined;
  #hedgedAt: number | undefined;

  constructor(
    private readonly run: ScheduledRun,
    readonly options: HedgeOptions,
  ) {}

  /**
   * After a poll: the reason to hedge now, or undefined to keep waiting. Stalled batches are named;
   * otherwise the run's rate of final requests since this watch began is projected to the deadline,
   * keeping back the stall time for the hedge path itself.
   */
  reason(now = Date.now()): string | undefined {
    const open = this.run.tables.openBatches();
    if (open.length === 0) return undefined;
    for (const row of open) {
      const stalled = this.#stalledFor(row, now);
      if (stalled !== undefined) {
        return `batch ${row.remote_id} has been ${row.status ?? 'unknown'} with no progress for ${seconds(stalled)} (stall threshold ${seconds(this.options.stallMs)})`;
      }
    }
    const unfinished = this.run.states.unfinishedCount();
    const done = this.run.ledger.counts();
    const final = done.total - unfinished;
    this.#doneAtStart ??= final;
    const left = this.options.deadlineAt - now;
    const reserve = this.options.stallMs;
    if (left <= reserve) {
      return `${seconds(Math.max(0, left))} to the deadline and ${unfinished} requests not answered`;
    }
    const elapsed = now - this.#started;
    const rate = (final - this.#doneAtStart) / Math.max(1, elapsed);
    if (elapsed >= reserve && (rate <= 0 || unfinished / rate > left - reserve)) {
      const eta =
        rate <= 0
          ? 'none answered so far'
          : `at ${(rate * 60_000).toFixed(1)} requests/min they need ${seconds(unfinished / rate)}`;
      return `the deadline is ${seconds(left)} away and ${unfinished} requests are not answered: ${eta}`;
    }
    return undefined;
  }

  /** How long a batch has shown neither progress nor a new status, if past the stall threshold. */
  #stalledFor(row: BatchRow, now: number): number | undefined {
    const counts = row.request_counts
      ? (JSON.parse(row.request_counts) as { completed: number; failed: number })
      : undefined;
    const key = `${row.status}/${counts ? counts.completed + counts.failed : 0}`;
    const seen = this.#seen.get(row.id);
    if (!seen || seen.key !== key) {
      // A batch first seen now may have sat in its status before this run: the ledger knows since when.
      const since = !seen && row.status_since !== null ? row.status_since * 1000 : now;
      this.#seen.set(row.id, { key, since: Math.min(since, now) });
      return undefined;
    }
    const still = now - seen.since;
    return still >= this.options.stallMs ? still : undefined;
  }

  /**
   * Marks every open batch hedged (the reason kept with it) and asks the provider to cancel it. The
   * mark comes first: a crash before the cancel lands still sends its leftovers on the hedge path.
   */
  async hedge(reason: string): Promise<number> {
    this.#hedgedAt = Date.now();
    const open = this.run.tables.openBatches();
    for (const row of open) {
      this.run.tables.markHedged(row.id, this.options.path, reason);
      this.run.emit({
        type: 'hedge.decided',
        action: 'cancel',
        batchId: row.remote_id!,
        path: this.options.path,
        reason,
      });
      const id = row.remote_id!;
      await this.run.remote(`cancelling ${id} to hedge`, () => this.run.provider.cancelBatch(id));
    }
    return open.length;
  }

  /**
   * Hedged batches that have not ended within the grace after their cancel (a batch `finalizing`
   * cannot be cancelled, and a cancel can take minutes): their unanswered requests are taken over for
   * the hedge path now, and the batch is no longer waited for (if it ends later, its answers apply to
   * nothing: those rows may be billed on both paths). Returns how many batches were given up.
   */
  takeOverLate(now = Date.now()): number {
    this.#hedgedAt ??= now; // hedged by an earlier run: the grace starts now
    if (now - this.#hedgedAt < this.graceMs) return 0;
    const late = this.run.tables.openBatches().filter((row) => row.hedged_to !== null);
    for (const row of late) {
      const moved = this.run.ledger.transaction(() => {
        const n = this.run.states.hedgeLeftovers(row.id);
        this.run.tables.markSettled(row.id);
        return n;
      });
      this.run.emit({
        type: 'hedge.decided',
        action: 'take_over',
        batchId: row.remote_id!,
        path: this.options.path,
        reason: `it is still ${row.status ?? 'unknown'} ${seconds(now - this.#hedgedAt)} after the cancel was asked: its ${moved} unanswered requests go ${this.options.path} now (if it ends later, its answers are not applied)`,
      });
    }
    return late.length;
  }

  /** How long a hedged batch may take to end after its cancel before its requests are taken over. */
  get graceMs(): number {
    return Math.min(60_000, this.options.stallMs);
  }
}

function seconds(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 120 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

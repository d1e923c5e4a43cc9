/**
 * What a command is doing right now, folded from the typed events (src/events.ts) and, for the run's
 * totals, the ledger's counts read through `countRequests`: the state the progress frame, the plain
 * heartbeat and the interrupt line are drawn from. Pure bookkeeping: no terminal, no timers; the
 * clock is given.
 */
import type { BatchpipeEvent } from '../../events.js';
import type { RequestCounts } from '../../ledger/ledger.js';

/** What the command is busy with, as the events tell. */
export type Phase = 'starting' | 'preparing' | 'uploading' | 'creating' | 'collecting' | 'cancelling';

export interface PrepareProgress {
  bytesRead: number;
  totalBytes: number | undefined;
  records: number;
  rejected: number;
  startedAt: number;
  /** Records per second since prepare started. */
  rate: number;
}

export interface BatchProgress {
  id: string;
  file: string;
  status: string;
  counts: { total: number; completed: number; failed: number } | null;
  /** When this command first heard of the batch (ms). */
  seenAt: number;
  /** When it was first seen in its current status (ms). */
  statusSince: number;
}

/** Uploads of this command: files and bytes done, and the file on its way. */
export interface UploadProgress {
  files: number;
  bytes: number;
}

export class RunProgress {
  phase: Phase = 'starting';
  prepare: PrepareProgress | undefined;
  readonly uploads: UploadProgress = { files: 0, bytes: 0 };
  /** Open batches, by id, in the order they were first heard of. */
  readonly batches = new Map<string, BatchProgress>();
  /** Tokens recorded by this command. */
  readonly tokens = { input: 0, output: 0 };
  /** Spend so far in USD, once events carry a cost (the cost helper's field; undefined until then). */
  spentUsd: number | undefined;
  /** Requests done when collecting started, and when: the base of the rate behind the ETA. */
  private rateBase: { done: number; at: number } | undefined;
  #counts: RequestCounts | undefined;
  #countsStale = false;

  constructor(
    private readonly now: () => number,
    /** The ledger's counts, once a ledger is open. */
    public countRequests?: (() => RequestCounts) | undefined,
  ) {}

  /** Batches open before this command started (from the ledger), so they show from the start. */
  seed(batches: readonly Omit<BatchProgress, 'statusSince'>[]): void {
    for (const b of batches)
      if (!this.batches.has(b.id)) this.batches.set(b.id, { ...b, statusSince: this.now() });
  }

  /**
   * The ledger's counts, as of the last `refreshCounts` (at the start, and whenever requests became
   * final). Read when asked for, not at each refresh: counting scans every request of the ledger, and
   * once per ended batch that grew with the run's square (48 scans of 2,400,000 rows), while a frame
   * or a progress line asks at most a few times a second and JSON logs never do.
   */
  get counts(): RequestCounts | undefined {
    if (this.#countsStale && this.countRequests) {
      this.#counts = this.countRequests();
      this.#countsStale = false;
    }
    return this.#counts;
  }

  /** Marks the ledger's counts as changed: the next `counts` reads them again. */
  refreshCounts(): void {
    this.#countsStale = true;
  }

  apply(event: BatchpipeEvent): void {
    const now = this.now();
    switch (event.type) {
      case 'prepare.progress': {
        this.phase = 'preparing';
        const startedAt = this.prepare?.startedAt ?? now;
        const seconds = (now - startedAt) / 1000;
        this.prepare = {
          bytesRead: event.bytesRead,
          totalBytes: event.totalBytes,
          records: event.records,
          rejected: event.rejected,
          startedAt,
          rate: seconds > 0 ? event.records / seconds : 0,
        };
        break;
      }
      case 'file.uploaded':
        this.phase = 'uploading';
        this.uploads.files++;
        this.uploads.bytes += event.bytes;
        break;
      case 'batch.created':
        this.phase = 'creating';
        this.batches.set(event.batchId, {
          id: event.batchId,
          file: event.file,
          status: 'validating',
          counts: null,
          seenAt: now,
          statusSince: now,
        });
        break;
      case 'batch.polled': {
        this.phase = 'collecting';
        const known = this.batches.get(event.batchId);
        const changed = known?.status !== event.status;
        this.batches.set(event.batchId, {
          id: event.batchId,
          file: event.file,
          status: event.status,
          counts: event.counts,
          seenAt: known?.seenAt ?? now,
          statusSince: changed ? now : known.statusSince,
        });
        this.rateBase ??= { done: this.done(), at: now };
        break;
      }
      case 'results.applied':
        this.tokens.input += event.tokens.input;
        this.tokens.output += event.tokens.output;
        break;
      case 'batch.ended':
        this.batches.delete(event.batchId);
        this.refreshCounts();
        break;
      case 'request.retried':
        this.refreshCounts();
        break;
      case 'run.waiting':
        this.phase = 'collecting';
        break;
      case 'batches.cancelling':
        this.phase = 'cancelling';
        break;
      default:
        break;
    }
    // What each applied result file cost (`costUsd` on results.applied) adds up here.
    const cost = (event as { costUsd?: unknown }).costUsd;
    if (typeof cost === 'number') this.spentUsd = (this.spentUsd ?? 0) + cost;
  }

  /** Requests with a final state, plus those the open batches report done. */
  done(): number {
    const c = this.counts;
    const final = c ? c.succeeded + c.failed + c.expired + c.cancelled + c.rejected : 0;
    let running = 0;
    for (const b of this.batches.values()) if (b.counts) running += b.counts.completed + b.counts.failed;
    return final + running;
  }

  /** Requests that failed so far: final failures plus those open batches report failed. */
  failed(): number {
    const c = this.counts;
    let running = 0;
    for (const b of this.batches.values()) running += b.counts?.failed ?? 0;
    return (c ? c.failed + c.expired + c.cancelled : 0) + running;
  }

  /** Seconds left at the rate requests became done since collecting started; undefined when unknown. */
  etaSeconds(): number | undefined {
    const c = this.counts;
    const base = this.rateBase;
    if (!c || !base) return undefined;
    const elapsed = (this.now() - base.at) / 1000;
    const rate = (this.done() - base.done) / elapsed;
    if (!(elapsed >= 5 && rate > 0)) return undefined;
    return Math.max(0, (c.total - this.done()) / rate);
  }

  /** Open batches per status, e.g. `{ in_progress: 2, finalizing: 1 }`. */
  byStatus(): Record<string, number> {
    const by: Record<string, number> = {};
    for (const b of this.batches.values()) by[b.status] = (by[b.status] ?? 0) + 1;
    return by;
  }
}

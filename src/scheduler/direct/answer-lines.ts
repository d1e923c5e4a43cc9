/**
 * The direct path's answers, each a line of the provider's batch result file (the provider's
 * `DirectSender` makes it), recorded through the same apply path as a batch's result file
 * (results/apply.ts): same extraction, states, retries, tokens. Lines are gathered and applied a group
 * at a time, one group after another, against the direct batch row that holds the requests. Owns the
 * group buffer.
 */
import { applyResultLines } from '../../results/apply.js';
import type { ScheduledRun } from '../scheduled-run.js';

/** Lines applied together: fewer transactions; a kill loses at most these answers (they are sent again). */
const GROUP_LINES = 256;
/** A group waits at most this long before it is applied. */
const GROUP_MS = 250;

/** What the groups applied so far did. */
export interface AppliedTotals {
  lines: number;
  succeeded: number;
  failed: number;
  retried: number;
}

/** Gathers answer lines and applies them in groups, in order, against one direct batch row. */
export class AnswerGroups {
  readonly totals: AppliedTotals = { lines: 0, succeeded: 0, failed: 0, retried: 0 };
  #lines: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();
  #failure: unknown;

  constructor(
    private readonly run: ScheduledRun,
    private readonly batchRowId: number,
    private readonly maxAttempts: number,
    private readonly onApplied: () => void,
  ) {}

  add(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length >= GROUP_LINES) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), GROUP_MS);
  }

  /** Applies what is left and waits for every group; throws the first failure of any. */
  async close(): Promise<void> {
    this.#flush();
    await this.#chain;
    if (this.#failure !== undefined) throw this.#failure;
  }

  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#lines.length === 0) return;
    const group = this.#lines;
    this.#lines = [];
    this.#chain = this.#chain.then(async () => {
      if (this.#failure !== undefined) return;
      try {
        const counts = await applyResultLines(this.run.ledger, [`${group.join('\n')}\n`], {
          batchId: this.batchRowId,
          maxAttempts: this.maxAttempts,
          endpoint: this.run.endpoint,
          source: 'direct answers',
        });
        this.totals.lines += counts.lines;
        this.totals.succeeded += counts.succeeded;
        this.totals.failed += counts.failed;
        this.totals.retried += counts.retried;
        this.onApplied();
      } catch (err) {
        this.#failure = err;
      }
    });
  }
}

/**
 * Every input record the ledger accounts for (requests and rejects), page by page, in input order or
 * in completion order: the one cursor behind `resultSource` and `writeResults`.
 *
 * Pages are read with keyset pagination (`seq > ? ORDER BY seq LIMIT n`, each page one `.all()`), so
 * no statement stays open between pages: the caller may await (drain its output) between them while
 * another part of the program writes to the same connection.
 */
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { completionOrder } from '../ledger/completion-order.js';
import type { SeqRange } from '../ledger/csv-pages.js';
import {
  type Ledger,
  REQUEST_STATES,
  type RequestOutcomeRow,
  type RequestResultRow,
  type RequestState,
} from '../ledger/ledger.js';
import type { Reject } from '../types.js';

/** Where a record stands, as the results show it. `pending` is `staged` or `submitted`. */
export type ResultStatus = 'succeeded' | 'failed' | 'expired' | 'cancelled' | 'rejected' | 'pending';

export const RESULT_STATUSES: readonly ResultStatus[] = [
  'succeeded',
  'failed',
  'expired',
  'cancelled',
  'rejected',
  'pending',
];

/** One record as stored: a request (it became one) or a reject (it never did). */
export type LedgerRow<R extends { seq: number } = RequestResultRow> =
  | { request: R; reject?: undefined }
  | { reject: Reject; request?: undefined };

/** Reads up to `limit` requests after `afterSeq` in the given states (all when undefined). */
type RequestFetch<R> = (afterSeq: number, limit: number, states?: readonly RequestState[]) => R[];

export interface LedgerRowsOptions {
  /** `input` (default): by seq. `completion`: outcomes in the order they were recorded, then the rest by seq. */
  order?: 'input' | 'completion' | undefined;
  /** Only records with these statuses (default: all). */
  status?: readonly ResultStatus[] | undefined;
  /** Rows per page (default 2000). */
  pageSize?: number | undefined;
}

const DEFAULT_PAGE = 2000;

/** The status a request state shows as. */
export function statusOf(state: RequestState): Exclude<ResultStatus, 'rejected'> {
  return state === 'staged' || state === 'submitted' ? 'pending' : state;
}

/** Checks a status list (e.g. from `--status`), failing with the valid names. */
export function parseStatusList(list: string): ResultStatus[] {
  const statuses = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const status of statuses) {
    if (!(RESULT_STATUSES as readonly string[]).includes(status)) {
      throw new BatchpipeError(
        ErrorCodes.USAGE,
        `--status: unknown status ${JSON.stringify(status)}; expected a list of ${RESULT_STATUSES.join(', ')}`,
      );
    }
  }
  if (statuses.length === 0) throw new BatchpipeError(ErrorCodes.USAGE, '--status: give at least one status');
  return statuses as ResultStatus[];
}

/**
 * Pages of ledger rows. A generator: each page is read when asked for, so abandoning it early
 * (`break`) leaves nothing open but the completion-order snapshot, which `return()` drops.
 */
export function ledgerRowPages(ledger: Ledger, options: LedgerRowsOptions = {}): Generator<LedgerRow[]> {
  return rowPages(ledger, options, (after, limit, states) => ledger.requestPage(after, limit, states));
}

/** As {@link ledgerRowPages}, with only what CSV results need of each request. */
export function outcomeRowPages(
  ledger: Ledger,
  options: LedgerRowsOptions = {},
): Generator<LedgerRow<RequestOutcomeRow>[]> {
  return rowPages(ledger, options, (after, limit, states) => ledger.outcomePage(after, limit, states));
}

/**
 * The requests of {@link outcomeRowPages} as seq ranges of `pageSize` seqs each (pages of at most
 * that many rows; fewer under a status filter), in order, with the request states they select
 * (`undefined`: all), for readers on more than one thread; `undefined` when that selection holds
 * rejects or is in completion order, which only the row pages interleave.
 */
export function outcomeRanges(
  ledger: Ledger,
  options: LedgerRowsOptions = {},
): { states: RequestState[] | undefined; ranges: Generator<SeqRange> } | undefined {
  const { states, allStates, withRejects } = selection(options);
  if (options.order === 'completion' || (withRejects && ledger.rejectPage(-1, 1).length > 0))
    return undefined;
  const pageSize = options.pageSize ?? DEFAULT_PAGE;
  const lastSeq = states.length === 0 ? -1 : ledger.lastSeq();
  return {
    states: allStates ? undefined : states,
    ranges: (function* () {
      for (let after = -1; after < lastSeq; after += pageSize) {
        yield { after, last: Math.min(after + pageSize, lastSeq) };
      }
    })(),
  };
}

/** The request states and whether rejects are wanted, for a status filter. */
function selection(options: LedgerRowsOptions) {
  const wanted = new Set<ResultStatus>(options.status ?? RESULT_STATUSES);
  const states = requestStates(wanted);
  return { states, allStates: states.length === REQUEST_STATES.length, withRejects: wanted.has('rejected') };
}

function* rowPages<R extends { seq: number }>(
  ledger: Ledger,
  options: LedgerRowsOptions,
  fetch: RequestFetch<R>,
): Generator<LedgerRow<R>[]> {
  const pageSize = options.pageSize ?? DEFAULT_PAGE;
  const { states, allStates, withRejects } = selection(options);
  if (options.order === 'completion') {
    yield* completionPages(ledger, fetch, states, withRejects, pageSize);
    return;
  }
  const requests = new PagedCursor<R>(
    states.length === 0 ? () => [] : (after) => fetch(after, pageSize, allStates ? undefined : states),
  );
  const rejects = new PagedCursor<Reject>(
    withRejects ? (after) => ledger.rejectPage(after, pageSize) : () => [],
  );
  for (;;) {
    const page: LedgerRow<R>[] = [];
    while (page.length < pageSize) {
      const request = requests.peek();
      const reject = rejects.peek();
      if (request === undefined && reject === undefined) break;
      if (reject === undefined || (request !== undefined && request.seq < reject.seq)) {
        page.push({ request: requests.take() });
      } else {
        page.push({ reject: rejects.take() });
      }
    }
    if (page.length === 0) return;
    yield page;
  }
}

function requestStates(wanted: Set<ResultStatus>): RequestState[] {
  return REQUEST_STATES.filter((state) => wanted.has(statusOf(state)));
}

/** A keyset-paginated cursor over rows with a `seq`, read a page at a time. */
class PagedCursor<T extends { seq: number }> {
  private rows: T[] = [];
  private index = 0;
  private after = -1;
  private done = false;

  constructor(private readonly fetch: (afterSeq: number) => T[]) {}

  peek(): T | undefined {
    if (this.index >= this.rows.length && !this.done) {
      this.rows = this.fetch(this.after);
      this.index = 0;
      if (this.rows.length === 0) this.done = true;
      else this.after = this.rows[this.rows.length - 1]!.seq;
    }
    return this.rows[this.index];
  }

  take(): T {
    const row = this.peek();
    if (row === undefined) throw new Error('internal error: take() past the end');
    this.index++;
    return row;
  }
}

/**
 * Completion order (see completionOrder): requests with an outcome in the order they were recorded,
 * then the rest and the rejects by seq, each row read live when its page is.
 */
function* completionPages<R extends { seq: number }>(
  ledger: Ledger,
  fetch: RequestFetch<R>,
  states: RequestState[],
  withRejects: boolean,
  pageSize: number,
): Generator<LedgerRow<R>[]> {
  for (const page of completionOrder(ledger, states, withRejects, pageSize)) {
    const rows: LedgerRow<R>[] = [];
    for (const p of page) {
      if (p.reject) {
        const reject = ledger.rejectPage(p.seq - 1, 1)[0];
        if (reject?.seq === p.seq) rows.push({ reject });
      } else {
        const request = fetch(p.seq - 1, 1)[0];
        if (request?.seq === p.seq) rows.push({ request });
      }
    }
    yield rows;
  }
}

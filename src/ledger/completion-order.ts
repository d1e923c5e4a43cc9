/**
 * The completion order of a run's records: a snapshot of it (a TEMP table of seqs: requests with a
 * `result_seq` by it, then the rest and the rejects by seq), read back a page at a time. Sorting at
 * read time keeps `result_seq` unindexed, which keeps applying outcomes cheap.
 */
import { connectionOf, type Ledger, type RequestState } from './ledger.js';

/** One record's place in the order: a request's seq, or a reject's. */
export interface OrderedSeq {
  seq: number;
  reject: boolean;
}

let snapshotId = 0;

/**
 * Pages of at most `pageSize` seqs in completion order, of the requests in `states` and (with
 * `withRejects`) the rejects. A generator: the snapshot is dropped when it ends or is abandoned.
 */
export function* completionOrder(
  ledger: Ledger,
  states: readonly RequestState[],
  withRejects: boolean,
  pageSize: number,
): Generator<OrderedSeq[]> {
  const db = connectionOf(ledger);
  const table = `temp.bp_order_${process.pid}_${snapshotId++}`;
  const stateFilter = states.length === 0 ? 'false' : `state IN (${states.map((s) => `'${s}'`).join(', ')})`;
  db.exec(`CREATE TABLE ${table} (pos INTEGER PRIMARY KEY, seq INTEGER NOT NULL, reject INTEGER NOT NULL)`);
  try {
    db.exec(`INSERT INTO ${table} (seq, reject)
      SELECT seq, 0 FROM main.requests WHERE result_seq IS NOT NULL AND ${stateFilter} ORDER BY result_seq, seq`);
    db.exec(`INSERT INTO ${table} (seq, reject)
      SELECT seq, reject FROM (
        SELECT seq, 0 AS reject FROM main.requests WHERE result_seq IS NULL AND ${stateFilter}
        ${withRejects ? 'UNION ALL SELECT seq, 1 FROM main.rejects' : ''}
      ) ORDER BY seq`);
    const positions = db.prepare<[number, number], { pos: number; seq: number; reject: number }>(
      `SELECT pos, seq, reject FROM ${table} WHERE pos > ? ORDER BY pos LIMIT ?`,
    );
    for (let after = 0; ; ) {
      const page = positions.all(after, pageSize);
      if (page.length === 0) return;
      after = page[page.length - 1]!.pos;
      yield page.map((p) => ({ seq: p.seq, reject: p.reject === 1 }));
    }
  } finally {
    db.exec(`DROP TABLE IF EXISTS ${table}`);
  }
}

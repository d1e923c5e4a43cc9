/**
 * A disk-backed staging area for the outcomes of one result file, in the ledger connection's TEMP
 * schema (never in the ledger file itself), applied to `requests` with set-based UPDATEs.
 *
 * Why: output lines come in no particular order, and a request row holds its source record, so
 * updating rows in line order dirties a page of the whole table per few rows (measured on 1,000,000
 * shuffled lines: 50–85 s and gigabytes of WAL). Staged first, joined to `requests` by custom_id in
 * custom_id order, sorted by seq and applied in seq ranges, each page of `requests` is written about
 * once, and memory stays bounded whatever the file's size (SQLite's sorter spills to temp files).
 */
import type Database from 'better-sqlite3';
import type { LineOutcome } from './line-outcome.js';

const OUTCOME_COLUMNS =
  'state, retryable, statusCode, result, errorCode, errorMessage, inputTokens, outputTokens';
const OUTCOME_TYPES = `state TEXT NOT NULL, retryable INTEGER NOT NULL, statusCode INTEGER, result TEXT,
  errorCode TEXT, errorMessage TEXT, inputTokens INTEGER, outputTokens INTEGER`;

/**
 * Which requests a staged outcome (`x`) may change:
 * - collect (a batch id): only requests `submitted` in that batch, so applying a file again after a
 *   crash changes nothing twice;
 * - ingest (files from elsewhere): `succeeded` is never overwritten; a success applies to any other
 *   state; a failure only to a request with no outcome yet (`staged` or `submitted`, no recorded
 *   error), so ingesting a file twice never counts an attempt twice or hides a retry under way.
 */
const ELIGIBLE_IN_BATCH = `requests.state = 'submitted' AND requests.batch_id = @batchId`;
const ELIGIBLE_ANY = `requests.state <> 'succeeded' AND (x.state = 'succeeded'
  OR (requests.state IN ('staged', 'submitted') AND requests.error_code IS NULL))`;

/** What one range of staged outcomes did. */
export interface RangeCounts {
  succeeded: number;
  failed: number;
  retried: number;
}

let nextId = 0;

export class OutcomeStage {
  private readonly staged: string;
  readonly sorted: string;
  private readonly insert: Database.Statement<unknown[]>;
  private readonly db: Database.Database;
  private applyStatements: ReturnType<OutcomeStage['prepareApply']> | undefined;

  constructor(db: Database.Database) {
    this.db = db;
    const id = `${process.pid}_${nextId++}`;
    this.staged = `temp.bp_staged_${id}`;
    this.sorted = `temp.bp_sorted_${id}`;
    // Appended in line order (rowid = line number): the cheapest insert SQLite has.
    db.exec(
      `CREATE TABLE ${this.staged} (line INTEGER PRIMARY KEY, custom_id TEXT NOT NULL, ${OUTCOME_TYPES})`,
    );
    this.insert = db.prepare(
      `INSERT INTO ${this.staged} (line, custom_id, ${OUTCOME_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  /** Stages one line's outcome (call inside a transaction). */
  add(line: number, o: LineOutcome): void {
    this.insert.run(
      line,
      o.customId,
      o.state,
      o.retryable ? 1 : 0,
      o.statusCode,
      o.result,
      o.errorCode,
      o.errorMessage,
      o.inputTokens,
      o.outputTokens,
    );
  }

  /**
   * Joins the staged lines to their requests and sorts them by seq, keeping the first line for each
   * request. Returns the lines whose custom_id the ledger lacks (count and a few examples), and how
   * many were dropped as repeats.
   */
  sort(examples: number): { unknown: number; unknownIds: string[]; repeated: number } {
    this.db.exec(
      `CREATE TABLE ${this.sorted} (seq INTEGER PRIMARY KEY, line INTEGER NOT NULL, ${OUTCOME_TYPES})`,
    );
    const staged = this.db.prepare<[], number>(`SELECT count(*) FROM ${this.staged}`).pluck().get()!;
    // Probing the custom_id index in custom_id order reads each index page once.
    const joined = this.db
      .prepare(
        `WITH s AS MATERIALIZED (SELECT * FROM ${this.staged} ORDER BY custom_id)
         INSERT INTO ${this.sorted} (seq, line, ${OUTCOME_COLUMNS})
         SELECT r.seq, s.line, ${prefixed('s', OUTCOME_COLUMNS)}
         FROM s CROSS JOIN main.requests AS r ON r.custom_id = s.custom_id
         WHERE true ORDER BY r.seq, s.line
         ON CONFLICT (seq) DO NOTHING`,
      )
      .run().changes;
    // Every line joined once: no unknown ids and no repeats (the common case, no second pass).
    const known = joined === staged ? staged : this.countKnown();
    const unknownIds =
      known === staged
        ? []
        : this.db
            .prepare<[number], string>(
              `SELECT custom_id FROM ${this.staged} AS s
               WHERE NOT EXISTS (SELECT 1 FROM main.requests AS r WHERE r.custom_id = s.custom_id) ORDER BY line LIMIT ?`,
            )
            .pluck()
            .all(examples);
    this.db.exec(`DROP TABLE ${this.staged}`);
    return { unknown: staged - known, unknownIds, repeated: known - joined };
  }

  private countKnown(): number {
    return this.db
      .prepare<[], number>(
        `WITH s AS MATERIALIZED (SELECT custom_id FROM ${this.staged} ORDER BY custom_id)
         SELECT count(*) FROM s CROSS JOIN main.requests AS r ON r.custom_id = s.custom_id`,
      )
      .pluck()
      .get()!;
  }

  /** The seq that ends the next range of at most `size` sorted outcomes after `afterSeq`, if any. */
  rangeEnd(afterSeq: number, size: number): number | undefined {
    const stmts = this.statements();
    return stmts.first.get(afterSeq) === undefined
      ? undefined
      : (stmts.nth.get(afterSeq, size - 1) ?? Number.MAX_SAFE_INTEGER);
  }

  /**
   * Applies the sorted outcomes with `afterSeq < seq <= lastSeq` (call inside a write transaction):
   * retryable failures with attempts left go back to `staged`, the rest are recorded as final.
   * `resultSeqBase + line` orders outcomes as the file listed them (completion order).
   */
  applyRange(
    afterSeq: number,
    lastSeq: number,
    params: { batchId: number | undefined; maxAttempts: number; resultSeqBase: number },
  ): RangeCounts {
    const stmts = this.statements();
    const p = { after: afterSeq, last: lastSeq, max: params.maxAttempts, base: params.resultSeqBase };
    const stmt = params.batchId === undefined ? stmts.any : stmts.inBatch;
    const bound = params.batchId === undefined ? p : { ...p, batchId: params.batchId };
    let succeeded = 0;
    let failed = 0;
    let retried = 0;
    for (const state of stmt.all(bound)) {
      if (state === 'succeeded') succeeded++;
      else if (state === 'staged') retried++;
      else failed++;
    }
    return { succeeded, failed, retried };
  }

  /** Drops the staging tables. */
  close(): void {
    this.db.exec(`DROP TABLE IF EXISTS ${this.staged}; DROP TABLE IF EXISTS ${this.sorted}`);
  }

  private statements() {
    this.applyStatements ??= this.prepareApply();
    return this.applyStatements;
  }

  private prepareApply() {
    const db = this.db;
    // RETRY: a retryable failure with attempts left goes back to `staged` (column refs are the old values).
    const update = (eligible: string) =>
      db
        .prepare<[Record<string, number>], string>(
          `UPDATE main.requests SET
             state = CASE WHEN ${RETRY} THEN 'staged' ELSE x.state END,
             attempt = attempt + (${RETRY}),
             file_id = CASE WHEN ${RETRY} THEN NULL ELSE file_id END,
             batch_id = CASE WHEN ${RETRY} THEN NULL ELSE batch_id END,
             status_code = x.statusCode, result = x.result, error_code = x.errorCode,
             error_message = x.errorMessage, input_tokens = x.inputTokens, output_tokens = x.outputTokens,
             result_seq = CASE WHEN ${RETRY} THEN NULL ELSE @base + x.line END
           FROM ${this.sorted} AS x
           WHERE requests.seq = +x.seq AND x.seq > @after AND x.seq <= @last AND (${eligible})
           RETURNING state`,
        )
        .pluck();
    return {
      first: db.prepare<[number], number>(`SELECT seq FROM ${this.sorted} WHERE seq > ? LIMIT 1`).pluck(),
      nth: db
        .prepare<[number, number], number>(
          `SELECT seq FROM ${this.sorted} WHERE seq > ? ORDER BY seq LIMIT 1 OFFSET ?`,
        )
        .pluck(),
      inBatch: update(ELIGIBLE_IN_BATCH),
      any: update(ELIGIBLE_ANY),
    };
  }
}

const RETRY = `(x.state <> 'succeeded' AND x.retryable = 1 AND requests.attempt < @max)`;

function prefixed(alias: string, columns: string): string {
  return columns
    .split(', ')
    .map((c) => `${alias}.${c}`)
    .join(', ');
}

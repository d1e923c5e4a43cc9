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
import { availableParallelism } from 'node:os';
import type Database from 'better-sqlite3';
import type { ParsedChunk } from './line-chunks.js';
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

/**
 * Page cache of the ledger's main and temp schemas while outcomes are staged and applied. It also
 * sizes each sorter thread's in-memory runs: 2 MB against 4 MB is as fast and keeps peak memory
 * flatter (1,000,000 lines: 161 → 153 MiB; 250,000: 154 → 148 MiB).
 */
const STAGE_CACHE_KIB = 2048;

/** Rows per multi-row INSERT: binding is per value either way, but each statement run costs too. */
const ROWS_PER_INSERT = 16;

/**
 * Appends parsed lines to a staging table (`line` is the rowid: appends in line order are the
 * cheapest insert SQLite has). Used on the ledger's connection (a TEMP table) and by the parse worker
 * (a scratch database file of its own), so both threads can stage at once.
 */
export class StagingTable {
  private readonly one: Database.Statement<unknown[]>;
  private readonly many: Database.Statement<unknown[]>;

  constructor(
    private readonly db: Database.Database,
    readonly table: string,
  ) {
    db.exec(`CREATE TABLE ${table} (line INTEGER PRIMARY KEY, custom_id TEXT NOT NULL, ${OUTCOME_TYPES})`);
    const row = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
    const insert = `INSERT INTO ${table} (line, custom_id, ${OUTCOME_COLUMNS}) VALUES `;
    this.one = db.prepare(insert + row);
    this.many = db.prepare(insert + new Array(ROWS_PER_INSERT).fill(row).join(', '));
  }

  /** Stages a parsed chunk in one transaction. */
  add(parsed: ParsedChunk): void {
    const { outcomes, lines } = parsed;
    this.db.transaction(() => {
      let i = 0;
      const values: unknown[] = [];
      for (; i + ROWS_PER_INSERT <= outcomes.length; i += ROWS_PER_INSERT) {
        values.length = 0;
        for (let k = i; k < i + ROWS_PER_INSERT; k++) pushRow(values, lines[k]!, outcomes[k]!);
        this.many.run(values);
      }
      for (; i < outcomes.length; i++) this.one.run(pushRow([], lines[i]!, outcomes[i]!));
    })();
  }
}

function pushRow(values: unknown[], line: number, o: LineOutcome): unknown[] {
  values.push(
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
  return values;
}

export class OutcomeStage {
  private readonly staging: StagingTable;
  /** Staging tables of parse workers, in attached scratch databases. */
  private readonly attached: string[] = [];
  readonly sorted: string;
  private readonly db: Database.Database;
  private readonly id: string;
  private readonly cacheSizes: unknown[];
  private applyStatements: ReturnType<OutcomeStage['prepareApply']> | undefined;

  constructor(db: Database.Database) {
    this.db = db;
    this.id = `${process.pid}_${nextId++}`;
    this.staging = new StagingTable(db, `temp.bp_staged_${this.id}`);
    this.sorted = `temp.bp_sorted_${this.id}`;
    // Staging appends, the sort streams and the merge walks requests in order: small page caches do
    // as well as the 16 MB default (measured), and the sorter's in-memory runs are sized from the
    // main cache, so this keeps ingest's peak RSS down by ~60 MB. Restored on close.
    this.cacheSizes = [
      db.pragma('main.cache_size', { simple: true }),
      db.pragma('temp.cache_size', { simple: true }),
    ];
    db.pragma(`main.cache_size = ${-STAGE_CACHE_KIB}`);
    db.pragma(`temp.cache_size = ${-STAGE_CACHE_KIB}`);
  }

  /** Stages a parsed chunk. */
  add(parsed: ParsedChunk): void {
    this.staging.add(parsed);
  }

  /** Adds the `staged` table of a worker's scratch database (closed by the worker) to what is sorted. */
  attach(path: string): void {
    const schema = `bp_scratch_${this.id}_${this.attached.length}`;
    this.db.prepare(`ATTACH DATABASE ? AS ${schema}`).run(path);
    this.attached.push(schema);
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
    const staged = `(${[this.staging.table, ...this.attached.map((a) => `${a}.staged`)]
      .map((t) => `SELECT * FROM ${t}`)
      .join(' UNION ALL ')})`;
    const count = this.db.prepare<[], number>(`SELECT count(*) FROM ${staged}`).pluck().get()!;
    // Probing the custom_id index in custom_id order reads each index page once.
    const joined = this.withSortThreads(() =>
      this.db
        .prepare(
          `WITH s AS MATERIALIZED (SELECT * FROM ${staged} ORDER BY custom_id)
         INSERT INTO ${this.sorted} (seq, line, ${OUTCOME_COLUMNS})
         SELECT r.seq, s.line, ${prefixed('s', OUTCOME_COLUMNS)}
         FROM s CROSS JOIN main.requests AS r ON r.custom_id = s.custom_id
         WHERE true ORDER BY r.seq, s.line
         ON CONFLICT (seq) DO NOTHING`,
        )
        .run(),
    ).changes;
    // Every line joined once: no unknown ids and no repeats (the common case, no second pass).
    const known = joined === count ? count : this.countKnown(staged);
    const unknownIds =
      known === count
        ? []
        : this.db
            .prepare<[number], string>(
              `SELECT custom_id FROM ${staged} AS s
               WHERE NOT EXISTS (SELECT 1 FROM main.requests AS r WHERE r.custom_id = s.custom_id) ORDER BY line LIMIT ?`,
            )
            .pluck()
            .all(examples);
    this.dropStaged();
    return { unknown: count - known, unknownIds, repeated: known - joined };
  }

  /**
   * Runs `fn` with SQLite's sorter allowed a helper thread: the two sorts of the join (by custom_id,
   * then by seq) come after parsing, when the second core is idle (1.9 s → 1.45 s for 1,000,000
   * lines, for ~25 MB more peak memory: the helper's own in-memory runs).
   */
  private withSortThreads<T>(fn: () => T): T {
    const before = this.db.pragma('threads', { simple: true }) as number;
    this.db.pragma(`threads = ${Math.min(2, availableParallelism())}`);
    try {
      return fn();
    } finally {
      this.db.pragma(`threads = ${before}`);
    }
  }

  private countKnown(staged: string): number {
    return this.db
      .prepare<[], number>(
        `WITH s AS MATERIALIZED (SELECT custom_id FROM ${staged} ORDER BY custom_id)
         SELECT count(*) FROM s CROSS JOIN main.requests AS r ON r.custom_id = s.custom_id`,
      )
      .pluck()
      .get()!;
  }

  private dropStaged(): void {
    this.db.exec(`DROP TABLE IF EXISTS ${this.staging.table}`);
    for (const schema of this.attached.splice(0)) this.db.exec(`DETACH DATABASE ${schema}`);
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
    const p = { after: afterSeq, last: lastSeq, max: params.maxAttempts, base: params.resultSeqBase };
    const statements = this.statements();
    const update = params.batchId === undefined ? statements.any : statements.inBatch;
    const bound = params.batchId === undefined ? p : { ...p, batchId: params.batchId };
    // Retries first: a restaged request is no longer eligible for the final updates.
    const retried = update.retry.run(bound).changes;
    const failed = update.failed.run(bound).changes;
    const succeeded = update.succeeded.run(bound).changes;
    return { succeeded, failed, retried };
  }

  /** Drops the staging tables and detaches the scratch databases. */
  close(): void {
    this.dropStaged();
    this.db.exec(`DROP TABLE IF EXISTS ${this.sorted}`);
    this.db.pragma(`main.cache_size = ${Number(this.cacheSizes[0])}`);
    this.db.pragma(`temp.cache_size = ${Number(this.cacheSizes[1])}`);
  }

  private statements() {
    this.applyStatements ??= this.prepareApply();
    return this.applyStatements;
  }

  /**
   * Three plain UPDATEs per range (retries, final failures, successes) cost less than one with CASE
   * expressions and RETURNING (measured: 2.5 s against 3.0–3.8 s for 1,000,000 outcomes): the two
   * that change little only scan the range's staged rows, which the first has brought into cache.
   */
  private prepareApply() {
    const db = this.db;
    const update = (eligible: string, set: string, only: string) =>
      db.prepare<[Record<string, number>]>(
        `UPDATE main.requests SET ${set} FROM ${this.sorted} AS x
         WHERE requests.seq = +x.seq AND x.seq > @after AND x.seq <= @last AND (${eligible}) AND ${only}`,
      );
    const forEligible = (eligible: string) => ({
      retry: update(
        eligible,
        RETRY_SET,
        `x.state <> 'succeeded' AND x.retryable = 1 AND requests.attempt < @max`,
      ),
      failed: update(eligible, FINAL_SET, `x.state <> 'succeeded'`),
      succeeded: update(eligible, FINAL_SET, `x.state = 'succeeded'`),
    });
    return {
      first: db.prepare<[number], number>(`SELECT seq FROM ${this.sorted} WHERE seq > ? LIMIT 1`).pluck(),
      nth: db
        .prepare<[number, number], number>(
          `SELECT seq FROM ${this.sorted} WHERE seq > ? ORDER BY seq LIMIT 1 OFFSET ?`,
        )
        .pluck(),
      inBatch: forEligible(ELIGIBLE_IN_BATCH),
      any: forEligible(ELIGIBLE_ANY),
    };
  }
}

/** Back to `staged` for another attempt, out of its file and batch, keeping the failure it had. */
const RETRY_SET = `state = 'staged', attempt = attempt + 1, file_id = NULL, batch_id = NULL,
  status_code = x.statusCode, result = NULL, error_code = x.errorCode, error_message = x.errorMessage,
  input_tokens = x.inputTokens, output_tokens = x.outputTokens, result_seq = NULL`;

/** The outcome as final (a success clears the error of an earlier attempt: its codes are NULL). */
const FINAL_SET = `state = x.state, status_code = x.statusCode, result = x.result, error_code = x.errorCode,
  error_message = x.errorMessage, input_tokens = x.inputTokens, output_tokens = x.outputTokens,
  result_seq = @base + x.line`;

function prefixed(alias: string, columns: string): string {
  return columns
    .split(', ')
    .map((c) => `${alias}.${c}`)
    .join(', ');
}

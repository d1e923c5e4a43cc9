/**
 * A disk-backed staging area for the outcomes of one result file, in scratch databases attached to
 * the ledger's connection (never in the ledger file itself), applied to `requests` with set-based
 * upserts.
 *
 * Why: output lines come in no particular order, so updating requests in line order dirties a page
 * of the whole table per few rows (measured on 1,000,000 shuffled lines, when request rows still
 * held their records: 50–85 s and gigabytes of WAL). Staged first, joined to `requests` by custom_id in
 * custom_id order, sorted by seq and applied in seq ranges, each page of `requests` is written about
 * once, and memory stays bounded whatever the file's size (SQLite's sorter spills to temp files).
 * With a parse worker, each thread joins one partition of the lines (split by custom_id) at once.
 */
import { closeSync, openSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { LineOutcome, Usage } from '../types.js';
import { connectionOf, type Ledger } from './ledger.js';

/** Parsed lines to stage: outcome `i` came from line `lines[i]` of the file. */
export interface StagedLines {
  outcomes: readonly LineOutcome[];
  lines: readonly number[];
}

/**
 * A staged outcome's usage: its input and output tokens, and the JSON array `[cached, cacheWrite,
 * reasoning]` when one of those is not 0 (all NULL: no usage reported). Why so few columns: SQLite's
 * sorter compares records with its fast integer and text comparators only below 13 fields, and the
 * join sorts whole outcome rows twice; a column per count took both sorts past it, and decoding JSON
 * for every row cost as much, so only the rare non-zero counts are packed.
 */
const USAGE_COLUMNS = 'inputTokens, outputTokens, usageExtra';
const USAGE_TYPES = 'inputTokens INTEGER, outputTokens INTEGER, usageExtra TEXT';
/** The request's usage columns and what each is read from in a joined row `x`. */
const extraCount = (i: number) =>
  `CASE WHEN x.usageExtra IS NOT NULL THEN x.usageExtra ->> ${i} WHEN x.inputTokens IS NOT NULL THEN 0 END`;
const USAGE_TARGETS: readonly (readonly [string, string])[] = [
  ['input_tokens', 'x.inputTokens'],
  ['cached_input_tokens', extraCount(0)],
  ['cache_write_tokens', extraCount(1)],
  ['output_tokens', 'x.outputTokens'],
  ['reasoning_tokens', extraCount(2)],
];

/**
 * A staged outcome's state carries whether it is retryable, as a trailing `+` (`failed+`), for the
 * same reason as the usage's packing: one column fewer in the rows the join sorts.
 */
const OUTCOME_COLUMNS = `state, statusCode, result, errorCode, errorMessage, ${USAGE_COLUMNS}`;
const OUTCOME_TYPES = `state TEXT NOT NULL, statusCode INTEGER, result TEXT, errorCode TEXT, errorMessage TEXT,
  ${USAGE_TYPES}`;
const RETRYABLE = '+';
/** Staged states, by whether they are successes (with or without the retryable mark). */
const SUCCEEDED_STATES = `('succeeded', 'succeeded${RETRYABLE}')`;
const RETRYABLE_FAILED_STATES = `('failed${RETRYABLE}', 'expired${RETRYABLE}', 'cancelled${RETRYABLE}')`;

/**
 * Which requests (their rows as they are) an outcome (`excluded`) may change:
 * - collect (a batch id): only requests `submitted` in that batch, so applying a file again after a
 *   crash changes nothing twice;
 * - ingest (files from elsewhere): `succeeded` is never overwritten; a success applies to any other
 *   state; a failure only to a request with no outcome yet (`staged` or `submitted`, no recorded
 *   error), so ingesting a file twice never counts an attempt twice or hides a retry under way.
 */
const ELIGIBLE_IN_BATCH = `requests.state = 'submitted' AND requests.batch_id = @batchId`;
const ELIGIBLE_ANY = `requests.state <> 'succeeded' AND (excluded.state = 'succeeded'
  OR (requests.state IN ('staged', 'submitted') AND requests.error_code IS NULL))`;

/** What one range of staged outcomes did. */
export interface RangeCounts {
  succeeded: number;
  failed: number;
  retried: number;
}

let nextId = 0;

/**
 * Page cache of each schema (the ledger, temp, scratch databases) while outcomes are staged, joined
 * and applied. The main schema's also sizes each sorter thread's in-memory runs: 2 MB against 4 MB is as fast and keeps peak memory
 * flatter (1,000,000 lines: 161 → 153 MiB; 250,000: 154 → 148 MiB).
 */
export const STAGE_CACHE_KIB = 2048;

/** Rows per multi-row INSERT: binding is per value either way, but each statement run costs too. */
const ROWS_PER_INSERT = 16;

/**
 * Staged lines are split in two by a hash of their custom_id, so each half can be joined to
 * `requests` on a thread of its own (the join is ingest's longest step after parsing) while every
 * repeat of a custom_id still lands in the same half, where the join keeps its first line.
 */
export const PARTITIONS = 2;

/** The partition of a custom_id: the top bit of its FNV-1a hash (the low bits mix poorly). */
export function partitionOf(customId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < customId.length; i++) h = Math.imul(h ^ customId.charCodeAt(i), 0x01000193);
  return h >>> 31;
}

/**
 * What a join reads of one partition staged in a scratch schema: SELECTs of the staged columns
 * (`line`, `custom_id`, then the outcome columns), to be combined with UNION ALL.
 */
export function stagedSources(schema: string, partition: number): string[] {
  return [
    `SELECT * FROM ${schema}.staged_${partition}`,
    `SELECT line, custom_id, ${PLAIN_SUCCESS_COLUMNS} FROM ${schema}.succeeded_${partition}`,
  ];
}

/** A plain success's outcome columns: only the result and the tokens vary. */
const PLAIN_SUCCESS_COLUMNS = `'succeeded', 200, result, NULL, NULL, ${USAGE_COLUMNS}`;

function isPlainSuccess(o: LineOutcome): boolean {
  return (
    o.state === 'succeeded' &&
    o.statusCode === 200 &&
    !o.retryable &&
    o.errorCode === null &&
    o.errorMessage === null
  );
}

let scratchCount = 0;

/**
 * A fresh path for a scratch database (staged or joined outcomes), beside SQLite's own temp files.
 * The first call also removes what killed processes left behind (see removeStaleScratch).
 */
export function scratchPath(kind: string): string {
  if (scratchCount === 0) removeStaleScratch();
  return join(tmpdir(), `batchpipe-${kind}-${process.pid}-${scratchCount++}.db`);
}

const SCRATCH_NAME = /^batchpipe-(?:stage|joined)-(\d+)-\d+\.db(?:-journal)?$/;

/**
 * Scratch files are removed once attached (OutcomeStage.releaseFiles), but a process killed while
 * staging leaves its own behind: remove those whose process is gone.
 */
function removeStaleScratch(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(SCRATCH_NAME.exec(name)?.[1]);
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) {
      rmSync(join(tmpdir(), name), { force: true });
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Attaches a scratch database: nothing in it needs to survive a crash, so its rollback journal stays
 * in memory (no journal file made and removed per transaction; better-sqlite3's defensive mode
 * refuses `journal_mode = OFF`) and nothing is synced. Appends and sorted scans do with a small page
 * cache.
 */
export function attachScratch(db: Database.Database, path: string, schema: string): void {
  // An empty file is an empty database: ATTACH cannot create one on a connection opened without
  // SQLITE_OPEN_CREATE (a ledger that must exist).
  closeSync(openSync(path, 'a'));
  db.prepare(`ATTACH DATABASE ? AS ${schema}`).run(path);
  db.pragma(`${schema}.journal_mode = MEMORY`);
  db.pragma(`${schema}.synchronous = OFF`);
  db.pragma(`${schema}.cache_size = ${-STAGE_CACHE_KIB}`);
}

/**
 * Appends parsed lines to the partition tables of a scratch schema (`line` is the rowid: appends in
 * line order are the cheapest insert SQLite has). Each thread that parses stages into a scratch
 * database of its own, so they can all stage at once. Plain successes, nearly every line of an
 * output file, go to a table of their own with half the columns: binding values is most of what
 * staging costs.
 */
export class StagingTable {
  /** Per partition: every other outcome, and plain successes. */
  private readonly outcomes: RowInserter[] = [];
  private readonly successes: RowInserter[] = [];

  constructor(
    private readonly db: Database.Database,
    schema: string,
  ) {
    for (let p = 0; p < PARTITIONS; p++) {
      this.outcomes.push(
        new RowInserter(
          db,
          `${schema}.staged_${p}`,
          `line INTEGER PRIMARY KEY, custom_id TEXT NOT NULL, ${OUTCOME_TYPES}`,
        ),
      );
      this.successes.push(
        new RowInserter(
          db,
          `${schema}.succeeded_${p}`,
          `line INTEGER PRIMARY KEY, custom_id TEXT NOT NULL, result TEXT, ${USAGE_TYPES}`,
        ),
      );
    }
  }

  /** Stages a parsed chunk in one transaction. */
  add(parsed: StagedLines): void {
    const { outcomes, lines } = parsed;
    this.db.transaction(() => {
      for (let i = 0; i < outcomes.length; i++) {
        const o = outcomes[i]!;
        const p = partitionOf(o.customId);
        if (isPlainSuccess(o)) {
          const to = this.successes[p]!;
          to.values.push(lines[i]!, o.customId, o.result);
          stageUsage(to.values, o.usage);
          to.added();
        } else {
          const to = this.outcomes[p]!;
          to.values.push(
            lines[i]!,
            o.customId,
            o.retryable ? o.state + RETRYABLE : o.state,
            o.statusCode,
            o.result,
          );
          to.values.push(o.errorCode, o.errorMessage);
          stageUsage(to.values, o.usage);
          to.added();
        }
      }
      for (const inserter of [...this.outcomes, ...this.successes]) inserter.flush();
    })();
  }
}

/** Appends `usage` as its staged columns (see USAGE_COLUMNS). */
function stageUsage(values: unknown[], usage: Usage | null): void {
  if (usage === null) values.push(null, null, null);
  else {
    const { cachedInputTokens: cached, cacheWriteTokens: writes, reasoningTokens: reasoning } = usage;
    const extra =
      cached === 0 && writes === 0 && reasoning === 0 ? null : `[${cached},${writes},${reasoning}]`;
    values.push(usage.inputTokens, usage.outputTokens, extra);
  }
}

/** Rows for one table, inserted ROWS_PER_INSERT a statement: each statement run costs too. */
class RowInserter {
  /** Values of the rows not inserted yet; push a whole row, then call `added`. */
  readonly values: unknown[] = [];
  private readonly width: number;
  private readonly one: Database.Statement<unknown[]>;
  private readonly many: Database.Statement<unknown[]>;

  constructor(db: Database.Database, table: string, columns: string) {
    db.exec(`CREATE TABLE ${table} (${columns})`);
    this.width = columns.split(',').length;
    const row = `(${new Array(this.width).fill('?').join(', ')})`;
    const insert = `INSERT INTO ${table} VALUES `;
    this.one = db.prepare(insert + row);
    this.many = db.prepare(insert + new Array(ROWS_PER_INSERT).fill(row).join(', '));
  }

  added(): void {
    if (this.values.length < this.width * ROWS_PER_INSERT) return;
    this.many.run(this.values);
    this.values.length = 0;
  }

  /** Inserts the rows left over, one a statement. */
  flush(): void {
    for (let v = 0; v < this.values.length; v += this.width)
      this.one.run(this.values.slice(v, v + this.width));
    this.values.length = 0;
  }
}

/** How many staged lines a join read, and how many it joined to a request (first line per request). */
export interface JoinCounts {
  staged: number;
  joined: number;
}

/**
 * Joins staged lines to their requests into a new table `into` keyed by seq, keeping the first line
 * for each request. Probing the custom_id index in custom_id order reads each index page once, and
 * the rows come out sorted by seq: the order `into` is built and applied in.
 */
export function joinStaged(
  db: Database.Database,
  sources: readonly string[],
  into: string,
  requests: string,
): JoinCounts {
  db.exec(`CREATE TABLE ${into} (seq INTEGER PRIMARY KEY, line INTEGER NOT NULL, ${OUTCOME_TYPES})`);
  const union = unionOf(sources);
  const count = db.prepare<[], number>(`SELECT count(*) FROM ${union}`).pluck().get()!;
  const joined = db
    .prepare(
      `WITH s AS MATERIALIZED (SELECT * FROM ${union} ORDER BY custom_id)
       INSERT INTO ${into} (seq, line, ${OUTCOME_COLUMNS})
       SELECT r.seq, s.line, ${prefixed('s', OUTCOME_COLUMNS)}
       FROM s CROSS JOIN ${requests} AS r ON r.custom_id = s.custom_id
       WHERE true ORDER BY r.seq, s.line
       ON CONFLICT (seq) DO NOTHING`,
    )
    .run().changes;
  return { staged: count, joined };
}

function unionOf(sources: readonly string[]): string {
  return `(${sources.join(' UNION ALL ')})`;
}

/**
 * The outcomes of one result file, staged and then joined to their requests (see the module doc).
 * This thread stages into a scratch database of its own; a parse worker's staging database and
 * joined half are attached to it.
 */
export class OutcomeStage {
  private readonly db: Database.Database;
  private readonly id: string;
  private readonly cacheSizes: unknown[];
  /** Scratch databases attached to the ledger's connection, by schema name: removed on close. */
  private readonly scratch = new Map<string, string>();
  /** What joins read of each partition (see stagedSources), this thread's staging and attached ones. */
  private readonly staged: { partition: number; sources: string[] }[] = [];
  private readonly stagingSchemas: string[] = [];
  /** Joined outcomes (seq, line, outcome), one table per join; their seqs never overlap. */
  private readonly sorted: string[] = [];
  private readonly counts: JoinCounts = { staged: 0, joined: 0 };
  private readonly staging: StagingTable;
  private readonly applyStatements = new Map<string, ReturnType<OutcomeStage['prepareApply']>>();
  private rangeStatements: ReturnType<OutcomeStage['prepareRanges']> | undefined;
  /** This thread's scratch database, which a parse worker reads its partition from. */
  readonly stagingPath: string;

  constructor(ledger: Ledger) {
    const db = connectionOf(ledger);
    this.db = db;
    this.id = `${process.pid}_${nextId++}`;
    // Joins and applies walk requests in order: small page caches do as well as the 16 MB default
    // (measured), and the sorter's in-memory runs are sized from the main cache, so this keeps
    // ingest's peak RSS down by ~60 MB. Restored on close.
    this.cacheSizes = [
      db.pragma('main.cache_size', { simple: true }),
      db.pragma('temp.cache_size', { simple: true }),
    ];
    db.pragma(`main.cache_size = ${-STAGE_CACHE_KIB}`);
    db.pragma(`temp.cache_size = ${-STAGE_CACHE_KIB}`);
    this.stagingPath = scratchPath('stage');
    this.staging = new StagingTable(db, this.attachStaging(this.stagingPath));
  }

  /** Stages a parsed chunk. */
  add(parsed: StagedLines): void {
    this.staging.add(parsed);
  }

  /** The ledger's file, for a worker to join a partition from; undefined for an in-memory ledger. */
  get ledgerPath(): string | undefined {
    return this.db.memory ? undefined : this.db.name;
  }

  /**
   * Adds a staging database to what is joined here (this thread's, or a parse worker's once it is no
   * longer written) and returns its schema name.
   */
  attachStaging(path: string): string {
    const schema = this.attach(path, 'stage');
    this.stagingSchemas.push(schema);
    for (let p = 0; p < PARTITIONS; p++)
      this.staged.push({ partition: p, sources: stagedSources(schema, p) });
    return schema;
  }

  /** Adds a worker's joined partition(s): a `sorted` table in the scratch database at `path`. */
  attachJoined(path: string, counts: JoinCounts): void {
    this.sorted.push(`${this.attach(path, 'joined')}.sorted`);
    this.counts.staged += counts.staged;
    this.counts.joined += counts.joined;
  }

  /**
   * Joins the given partitions of every attached staging table on this thread. With all of them (no
   * worker joining), SQLite's sorter may use helper threads, the second core being idle then (1.9 s
   * → 1.45 s for 1,000,000 lines, for ~25 MB more peak memory). With a join worker beside it, none:
   * a helper only takes the worker's core (the worker's half took 0.93 s against this thread's 0.74;
   * without the helper, 0.82 against 0.78).
   */
  joinHere(partitions: readonly number[]): void {
    const staged = this.staged.filter((s) => partitions.includes(s.partition)).flatMap((s) => s.sources);
    const into = `temp.bp_sorted_${this.id}_${this.sorted.length}`;
    const threads = partitions.length === PARTITIONS ? Math.min(2, availableParallelism()) : 0;
    const counts = this.withSortThreads(threads, () => joinStaged(this.db, staged, into, 'main.requests'));
    this.sorted.push(into);
    this.counts.staged += counts.staged;
    this.counts.joined += counts.joined;
  }

  /**
   * Removes the files of every scratch database attached so far. Call once no other connection needs
   * to open them by name (after the joins): they live on until detached, and a process killed from
   * then on leaves nothing behind.
   */
  releaseFiles(): void {
    for (const path of this.scratch.values()) rmSync(path, { force: true });
  }

  /**
   * After the joins: the staged lines whose custom_id the ledger lacks (count and a few examples),
   * and how many were dropped as repeats. Then drops the staging tables.
   */
  settleJoins(examples: number): { unknown: number; unknownIds: string[]; repeated: number } {
    const { staged: count, joined } = this.counts;
    const union = unionOf(this.staged.flatMap((s) => s.sources));
    // Every line joined once: no unknown ids and no repeats (the common case, no second pass).
    const known = joined === count ? count : this.countKnown(union);
    const unknownIds =
      known === count
        ? []
        : this.db
            .prepare<[number], string>(
              `SELECT custom_id FROM ${union} AS s
               WHERE NOT EXISTS (SELECT 1 FROM main.requests AS r WHERE r.custom_id = s.custom_id) ORDER BY line LIMIT ?`,
            )
            .pluck()
            .all(examples);
    this.dropStaging();
    return { unknown: count - known, unknownIds, repeated: known - joined };
  }

  private withSortThreads<T>(threads: number, fn: () => T): T {
    const before = this.db.pragma('threads', { simple: true }) as number;
    this.db.pragma(`threads = ${threads}`);
    try {
      return fn();
    } finally {
      this.db.pragma(`threads = ${before}`);
    }
  }

  private countKnown(union: string): number {
    return this.db
      .prepare<[], number>(
        `WITH s AS MATERIALIZED (SELECT custom_id FROM ${union} ORDER BY custom_id)
         SELECT count(*) FROM s CROSS JOIN main.requests AS r ON r.custom_id = s.custom_id`,
      )
      .pluck()
      .get()!;
  }

  private attach(path: string, kind: string): string {
    const schema = `bp_${kind}_${this.id}_${this.scratch.size}`;
    attachScratch(this.db, path, schema);
    this.scratch.set(schema, path);
    return schema;
  }

  /** Detaches the staging databases (this thread's and a worker's) and removes them. */
  private dropStaging(): void {
    this.staged.length = 0;
    for (const schema of this.stagingSchemas.splice(0)) this.detach(schema);
  }

  private detach(schema: string): void {
    const path = this.scratch.get(schema);
    if (path === undefined) return;
    this.scratch.delete(schema);
    this.db.exec(`DETACH DATABASE ${schema}`);
    rmSync(path, { force: true });
  }

  /** The seq that ends the next range of at most `size` joined outcomes after `afterSeq`, if any. */
  rangeEnd(afterSeq: number, size: number): number | undefined {
    this.rangeStatements ??= this.prepareRanges();
    const ranges = this.rangeStatements;
    return ranges.first.get({ after: afterSeq }) === null
      ? undefined
      : (ranges.nth.get({ after: afterSeq, offset: size - 1 }) ?? Number.MAX_SAFE_INTEGER);
  }

  /**
   * Applies the joined outcomes with `afterSeq < seq <= lastSeq` (call inside a write transaction):
   * retryable failures with attempts left go back to `staged`, the rest are recorded as final.
   * `resultSeqBase + line` orders outcomes as the file listed them (completion order).
   */
  applyRange(
    afterSeq: number,
    lastSeq: number,
    params: {
      batchId: number | undefined;
      maxAttempts: number;
      resultSeqBase: number;
      /** Whether any staged outcome is not a success: if not, the statements for them are skipped. */
      failures: boolean;
    },
  ): RangeCounts {
    const p = { after: afterSeq, last: lastSeq, max: params.maxAttempts, base: params.resultSeqBase };
    const bound = params.batchId === undefined ? p : { ...p, batchId: params.batchId };
    const counts: RangeCounts = { succeeded: 0, failed: 0, retried: 0 };
    for (const table of this.sorted) {
      const statements = this.applyStatements.get(table) ?? this.prepareApply(table);
      this.applyStatements.set(table, statements);
      const update = params.batchId === undefined ? statements.any : statements.inBatch;
      if (params.failures) {
        // Retries first: a restaged request is no longer eligible for the final updates.
        counts.retried += update.retry.run(bound).changes;
        counts.failed += update.failed.run(bound).changes;
      }
      counts.succeeded += update.succeeded.run(bound).changes;
      // The upserts' inserts conflict while every joined request exists. Had one been deleted since
      // (another process resuming a prepare), a row would have been inserted with custom_id '',
      // which no request has (prepare rejects empty ids): undo the range instead.
      if (statements.inserted.get() !== undefined) {
        throw new BatchpipeError(
          ErrorCodes.LEDGER_MISMATCH,
          'requests were deleted from the ledger while results were applied; nothing of this range was applied',
        );
      }
    }
    return counts;
  }

  /**
   * Runs `apply` with the ledger's automatic checkpoints off when `checkpointedElsewhere` (a join
   * worker checkpoints meanwhile, see joinPartitions: this thread only writes), restoring them after.
   */
  withCheckpointsElsewhere<T>(checkpointedElsewhere: boolean, apply: () => T): T {
    const autoCheckpoint = this.db.pragma('wal_autocheckpoint', { simple: true }) as number;
    if (checkpointedElsewhere) this.db.pragma('wal_autocheckpoint = 0');
    try {
      return apply();
    } finally {
      this.db.pragma(`wal_autocheckpoint = ${autoCheckpoint}`);
    }
  }

  /** Drops the staged and joined outcomes, detaches and removes the scratch databases. */
  close(): void {
    this.dropStaging();
    for (const table of this.sorted.splice(0)) {
      if (table.startsWith('temp.')) this.db.exec(`DROP TABLE IF EXISTS ${table}`);
    }
    for (const schema of [...this.scratch.keys()]) this.detach(schema);
    this.db.pragma(`main.cache_size = ${Number(this.cacheSizes[0])}`);
    this.db.pragma(`temp.cache_size = ${Number(this.cacheSizes[1])}`);
  }

  /** Range bounds over all joined tables: a compound SELECT merges their seq orders, no sort. */
  private prepareRanges() {
    const seqsAfter = this.sorted.map((t) => `SELECT seq FROM ${t} WHERE seq > @after`).join(' UNION ALL ');
    return {
      first: this.db
        .prepare<[{ after: number }], number | null>(
          `SELECT min(seq) FROM (${this.sorted.map((t) => `SELECT min(seq) AS seq FROM ${t} WHERE seq > @after`).join(' UNION ALL ')})`,
        )
        .pluck(),
      nth: this.db
        .prepare<[{ after: number; offset: number }], number>(
          `${seqsAfter} ORDER BY 1 LIMIT 1 OFFSET @offset`,
        )
        .pluck(),
    };
  }

  /**
   * Three statements per range (retries, final failures, successes) cost less than one with CASE
   * expressions and RETURNING (measured: 2.5 s against 3.0–3.8 s for 1,000,000 outcomes): the two
   * that change little only scan the range's joined rows, which the first has brought into cache.
   *
   * Each is an upsert whose insert always conflicts on seq (every joined seq is a request: the row
   * it would insert only carries the outcome to `excluded`). Unlike UPDATE … FROM, which first
   * copies every new row into a temporary b-tree, it changes each request in one pass (1,000,000
   * outcomes: −0.17 s).
   */
  private prepareApply(sorted: string) {
    const db = this.db;
    const upsert = (eligible: string, set: string, only: string) =>
      db.prepare<[Record<string, number>]>(
        `INSERT INTO main.requests (seq, line, custom_id, state, status_code, result, error_code,
           error_message, ${USAGE_TARGETS.map(([column]) => column).join(', ')}, result_seq)
         SELECT x.seq, -1, '', rtrim(x.state, '${RETRYABLE}'), x.statusCode, x.result, x.errorCode, x.errorMessage,
           ${USAGE_TARGETS.map(([, value]) => value).join(', ')}, @base + x.line
         FROM ${sorted} AS x WHERE x.seq > @after AND x.seq <= @last AND ${only}
         ON CONFLICT (seq) DO UPDATE SET ${set} WHERE ${eligible}`,
      );
    const forEligible = (eligible: string) => ({
      retry: upsert(
        `${eligible} AND requests.attempt < @max`,
        RETRY_SET,
        `x.state IN ${RETRYABLE_FAILED_STATES}`,
      ),
      failed: upsert(eligible, FINAL_SET, `x.state NOT IN ${SUCCEEDED_STATES}`),
      succeeded: upsert(eligible, FINAL_SET, `x.state IN ${SUCCEEDED_STATES}`),
    });
    return {
      inBatch: forEligible(ELIGIBLE_IN_BATCH),
      any: forEligible(ELIGIBLE_ANY),
      inserted: db.prepare(`SELECT 1 FROM main.requests WHERE custom_id = ''`),
    };
  }
}

/** The usage of the outcome replaces the request's (a retried request keeps what its failure billed). */
const USAGE_SET = USAGE_TARGETS.map(([c]) => `${c} = excluded.${c}`).join(', ');

/** Back to `staged` for another attempt, out of its file and batch, keeping the failure it had. */
const RETRY_SET = `state = 'staged', attempt = attempt + 1, file_id = NULL, batch_id = NULL,
  status_code = excluded.status_code, result = NULL, error_code = excluded.error_code,
  error_message = excluded.error_message, ${USAGE_SET}, result_seq = NULL`;

/** The outcome as final (a success clears the error of an earlier attempt: its codes are NULL). */
const FINAL_SET = `state = excluded.state, status_code = excluded.status_code, result = excluded.result,
  error_code = excluded.error_code, error_message = excluded.error_message, ${USAGE_SET},
  result_seq = excluded.result_seq`;

function prefixed(alias: string, columns: string): string {
  return columns
    .split(', ')
    .map((c) => `${alias}.${c}`)
    .join(', ');
}

/**
 * A parse worker's staging: its own scratch database at `path` (created here, removed by the ledger's
 * thread once joined), on a connection of its own, so both threads stage at once.
 */
export class ScratchStaging {
  private readonly db = new Database(':memory:');
  private readonly table: StagingTable;

  constructor(path: string) {
    attachScratch(this.db, path, 'stage');
    this.table = new StagingTable(this.db, 'stage');
  }

  /** Stages a parsed chunk in one transaction. */
  add(parsed: StagedLines): void {
    this.table.add(parsed);
  }

  close(): void {
    this.db.close();
  }
}

/** What a join worker joins, and where (see OutcomeStage.joinHere for the ledger thread's share). */
export interface PartitionJoin {
  /** The ledger file: only its `requests` are read. */
  ledgerPath: string;
  /** Staging databases, no longer written (see StagingTable). */
  stagingPaths: string[];
  partitions: number[];
  /** A new scratch database for the joined outcomes (table `sorted`), for `attachJoined`. */
  outPath: string;
}

/** How often the ledger's WAL is checkpointed while outcomes are applied. */
const CHECKPOINT_EVERY_MS = 20;

/**
 * Joins some partitions of the staged outcomes to their requests on a connection of its own (a join
 * worker's), into a scratch database. The connection stays open for `checkpointUntil`: once its
 * half is joined, the worker checkpoints the ledger's WAL while the ledger's thread applies the
 * outcomes (the second core is idle then; checkpoints were ~0.25 s of the apply for 1,000,000 lines).
 */
export function joinPartitions(data: PartitionJoin): {
  joined: JoinCounts;
  /** Checkpoints until `stop[0]` is set (and notified), then closes the connection. */
  checkpointUntil(stop: Int32Array): void;
} {
  const db = new Database(':memory:');
  // SQLite's sorter sizes its in-memory runs from the main schema's page cache.
  db.pragma(`cache_size = ${-STAGE_CACHE_KIB}`);
  db.prepare('ATTACH DATABASE ? AS ledger').run(data.ledgerPath);
  db.pragma(`ledger.cache_size = ${-STAGE_CACHE_KIB}`);
  const sources = data.stagingPaths.flatMap((path, i) => {
    attachScratch(db, path, `stage_${i}`);
    return data.partitions.flatMap((p) => stagedSources(`stage_${i}`, p));
  });
  attachScratch(db, data.outPath, 'joined');
  const joined = joinStaged(db, sources, 'joined.sorted', 'ledger.requests');
  for (const schema of ['joined', ...data.stagingPaths.map((_, i) => `stage_${i}`)]) {
    db.exec(`DETACH DATABASE ${schema}`);
  }
  return {
    joined,
    checkpointUntil(stop) {
      try {
        checkpointUntilStopped(db, stop);
      } finally {
        db.close();
      }
    },
  };
}

/**
 * PASSIVE checkpoints copy committed WAL frames into the ledger file without waiting for the writer
 * or blocking it. One that fails only ends the loop: the ledger's thread checkpoints what is left.
 */
function checkpointUntilStopped(db: Database.Database, stop: Int32Array): void {
  try {
    while (Atomics.load(stop, 0) === 0) {
      db.pragma('ledger.wal_checkpoint(PASSIVE)');
      Atomics.wait(stop, 0, 0, CHECKPOINT_EVERY_MS);
    }
  } catch {
    // the ledger's thread checkpoints what is left once its autocheckpoint is back
  }
}

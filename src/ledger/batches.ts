/**
 * The scheduler's tables: request files to upload, batch intents and the remote batches they became,
 * token-limit refusals and the queue's peak. Every remote side effect has an intent row written (and
 * committed) before the call and the remote id after it, so a crash between the two is settled by
 * matching, never by creating again. Statements are prepared once per ledger. Touches `files`,
 * `batches` and the `peak_queued_tokens:*` meta keys; requests change state only through
 * request-states.ts.
 */
import type Database from 'better-sqlite3';
import type { RemoteBatch } from '../types.js';
import { connectionOf, type FileRow, type Ledger } from './ledger.js';
import { RequestStates } from './request-states.js';
import { SCHEDULER_INDEXES } from './schema.js';

/** A batch attempt as the ledger keeps it. */
export interface BatchRow {
  id: number;
  file_id: number;
  create_started_at: number;
  remote_id: string | null;
  /** The ledger's status vocabulary (`BatchStatus`), as last seen. */
  status: string | null;
  /** JSON `BatchRequestCounts`. */
  request_counts: string | null;
  output_file_id: string | null;
  error_file_id: string | null;
  /** JSON `RemoteBatchError[]`. */
  errors: string | null;
  usage: string | null;
  tokens: number;
  settled: number;
  updated_at: number | null;
  /** Server time (unix s, a lower bound) when the batch was intended; null: unknown (list everything). */
  intent_server_after: number | null;
  /** The batch's created_at and the time it ended, by the server's clock. */
  created_at: number | null;
  ended_at: number | null;
  token_refusal: TokenRefusal | null;
  settled_before: number | null;
  /** The provider that holds the batch; null in ledgers from before providers were named (openai). */
  provider: string | null;
  /** The provider's own status word, and its whole batch object as JSON, as last seen. */
  raw_status: string | null;
  raw: string | null;
  /** When the ledger first saw the batch in its current status (unix s, local); null before schema 6. */
  status_since: number | null;
  /** Cancelled to hedge: the path its unanswered requests go to, and why; null otherwise. */
  hedged_to: string | null;
  hedge_reason: string | null;
}

/** Requests answered per path (`batch`, `direct`, `flex`) and model, with their tokens. */
export interface PathTotals {
  path: string;
  model: string | null;
  requests: number;
  inputTokens: number;
  outputTokens: number;
}

/**
 * A batch the API refused for its enqueued-token limit: `alone` when nothing else of the run was
 * queued at that moment (the file may be too big for the limit), `queued` when others were (it only
 * has to wait), `reported` for an `alone` refusal already counted by a BP_TOKEN_LIMIT stop.
 */
export type TokenRefusal = 'alone' | 'queued' | 'reported';

const PEAK_QUEUED_PREFIX = 'peak_queued_tokens:';

const now = () => Math.floor(Date.now() / 1000);

const tables = new WeakMap<Ledger, BatchTables>();

export class BatchTables {
  readonly #ledger: Ledger;
  readonly #states: RequestStates;
  readonly #stmts;

  /** The scheduler's tables of this ledger (one instance, its statements prepared once, per ledger). */
  static of(ledger: Ledger): BatchTables {
    let found = tables.get(ledger);
    if (!found) {
      found = new BatchTables(ledger);
      tables.set(ledger, found);
    }
    return found;
  }

  private constructor(ledger: Ledger) {
    this.#ledger = ledger;
    const db = connectionOf(ledger);
    db.exec(SCHEDULER_INDEXES);
    this.#states = RequestStates.of(ledger);
    this.#stmts = prepareStatements(db);
  }

  // Every FileRow handed out goes through ledger.located: its path is stored relative to the ledger.

  /** Complete files not uploaded yet that still hold requests to send, in order. */
  filesToUpload(): FileRow[] {
    return this.#stmts.filesToUpload.all().map((f) => this.#ledger.located(f));
  }

  /** Records an upload intent: its tag (in the uploaded name) and the server's time before it. */
  markUploadStarted(fileId: number, intent: string, serverAfter: number | undefined): void {
    this.#stmts.markUploadStarted.run(now(), intent, serverAfter ?? null, fileId);
  }

  setRemoteFile(fileId: number, remoteFileId: string): void {
    this.#stmts.setRemoteFile.run(remoteFileId, fileId);
  }

  /**
   * Files that still hold staged requests and have no open batch: ready for a batch. `uploaded`:
   * only those uploaded already (a provider that takes files); else every complete one (inline).
   */
  filesReadyForBatch(uploaded: boolean): FileRow[] {
    const ready = uploaded ? this.#stmts.uploadedFilesReady : this.#stmts.filesReady;
    return ready.all().map((f) => this.#ledger.located(f));
  }

  file(id: number): FileRow {
    return this.#ledger.located(this.#stmts.file.get(id)!);
  }

  /**
   * Records a file's real token count (JSON of `FileTokens`), and its input tokens as the file's
   * `tokens`, the figure the enqueued-token limit is checked with (prepare's characters/4 until then).
   */
  setTokenCount(fileId: number, tokenCount: string, inputTokens: number): void {
    this.#stmts.setTokenCount.run(tokenCount, inputTokens, fileId);
  }

  /** Files of unsettled batches (intents included): what the queue holds. */
  queuedFiles(): FileRow[] {
    return this.#stmts.queuedFiles.all().map((f) => this.#ledger.located(f));
  }

  /** How many files of this attempt exist (retry files are numbered after them). */
  fileCount(attempt: number): number {
    return this.#stmts.fileCount.get(attempt)!;
  }

  /**
   * Records the intent to create a batch for a file on `provider`; returns its row (the provider
   * tags the batch with its id).
   */
  insertBatchIntent(
    fileId: number,
    provider: string,
    tokens: number,
    serverAfter: number | undefined,
  ): BatchRow {
    return this.#stmts.insertIntent.get(fileId, provider, now(), tokens, serverAfter ?? null)!;
  }

  /** Intents whose remote batch is not known yet (a crash, or a failed call). */
  pendingIntents(): BatchRow[] {
    return this.#stmts.pendingIntents.all();
  }

  /** Ties an intent to its remote batch and moves the file's staged requests to submitted, at once. */
  recordCreatedBatch(row: BatchRow, batch: RemoteBatch): void {
    this.#ledger.transaction(() => {
      this.#stmts.setRemoteId.run(batch.id, row.id);
      this.updateStatus(row.id, batch);
      this.#states.submitFile(row.id, row.file_id);
    });
  }

  /**
   * A batch row for a file's requests sent on a synchronous path (`direct` or `flex`): it holds them
   * while they are in flight, so their answers apply as a batch's lines do, and it records which path
   * answered each request. It is never polled: it is settled from the start, `in_progress` until the
   * pass over the file ends.
   */
  openDirectRow(fileId: number, path: string): BatchRow {
    const t = now();
    return this.#ledger.transaction(() => {
      const row = this.#stmts.insertDirectRow.get(fileId, path, t, t, t, t)!;
      this.#stmts.setRemoteId.run(`${path}_${row.id}`, row.id);
      return { ...row, remote_id: `${path}_${row.id}` };
    });
  }

  /**
   * Direct rows a run that died left `in_progress` end as `cancelled` (the provider's word:
   * `interrupted`); their requests in flight were put back for the next pass. Returns how many.
   */
  endInterruptedDirectRows(): number {
    return this.#stmts.endInterruptedDirectRows.run(now(), now()).changes;
  }

  /** The pass over a direct row's file has ended: `completed`, with the counts of what it answered. */
  endDirectRow(rowId: number, counts: { total: number; completed: number; failed: number }): void {
    this.#stmts.endDirectRow.run(JSON.stringify(counts), now(), now(), now(), rowId);
  }

  /** Records that a batch is cancelled to hedge (before the cancel is asked): its leftovers go to `path`. */
  markHedged(rowId: number, path: string, reason: string): void {
    this.#stmts.markHedged.run(path, reason, rowId);
  }

  /** Whether any batch of the run was cancelled to hedge (then what is left goes on the hedge path). */
  hedgedPath(): string | undefined {
    return this.#stmts.hedgedPath.get() ?? undefined;
  }

  /**
   * Succeeded requests per path and model, with their tokens: which path answered each row (the
   * provider of the batch row that holds it: a synchronous path's own, else `batch`).
   */
  pathTotals(): PathTotals[] {
    return this.#stmts.pathTotals.all();
  }

  /**
   * Whether any batch row holds synchronous calls (`direct` or `flex`): until one does, every request
   * went by batch, known without scanning the requests.
   */
  anyAnsweredOffBatch(): boolean {
    return this.#stmts.anyOffBatch.get() === 1;
  }

  /** Drops an intent whose batch was never created (settled by listing); the file is ready again. */
  dropIntent(rowId: number): void {
    this.#stmts.dropIntent.run(rowId);
  }

  /** Batches created and not yet settled. */
  openBatches(): BatchRow[] {
    return this.#stmts.openBatches.all();
  }

  batches(): BatchRow[] {
    return this.#stmts.batches.all();
  }

  /** Records the batch as the provider shows it now (its provider was recorded with the intent). */
  updateStatus(rowId: number, batch: RemoteBatch): void {
    const at = now();
    this.#stmts.updateStatus.run(
      batch.status,
      at,
      at,
      batch.status,
      batch.counts ? JSON.stringify(batch.counts) : null,
      batch.outputFile,
      batch.errorFile,
      batch.errors.length > 0 ? JSON.stringify(batch.errors) : null,
      batch.usage === null ? null : JSON.stringify(batch.usage),
      at,
      batch.createdAt,
      batch.endedAt,
      batch.rawStatus,
      JSON.stringify(batch.raw),
      rowId,
    );
  }

  markSettled(rowId: number): void {
    this.#stmts.markSettled.run(rowId);
  }

  /** Estimated tokens in unsettled batches (intents included), per model. */
  queuedTokensByModel(): Map<string, number> {
    return new Map(this.#stmts.queuedTokens.all().map((r) => [r.model ?? '', r.tokens]));
  }

  /**
   * Whether anything else of the run was queued when the API refused this batch for its token limit
   * at server time `refusedAt`: another batch created by then and not ended before it (a failed one
   * never held a place in the queue), or an intent whose batch may exist. Both times are the
   * server's; equal seconds count as queued.
   */
  othersQueuedAt(rowId: number, refusedAt: number | null): boolean {
    const at = refusedAt ?? Number.MAX_SAFE_INTEGER;
    return this.#stmts.othersQueued.get(rowId, at, at)! > 0;
  }

  /** Records a token-limit refusal; a `queued` one remembers how many batches had settled by then. */
  recordTokenRefusal(rowId: number, refusal: 'alone' | 'queued'): void {
    this.#stmts.recordTokenRefusal.run(
      refusal,
      refusal === 'queued' ? this.#stmts.settledQueueHolders.get()! : null,
      rowId,
    );
  }

  /**
   * A file refused while others of the run were queued waits until one of the run's batches has
   * settled since (the queue moved), rather than being refused again at every poll.
   */
  waitsAfterRefusal(fileId: number): boolean {
    const last = this.#stmts.lastRefusal.get(fileId);
    return last?.token_refusal === 'queued' && last.settled_before === this.#stmts.settledQueueHolders.get();
  }

  /** Refusals of this file for the token limit with nothing else of the run queued, since the last stop. */
  loneTokenRefusals(fileId: number): number {
    return this.#stmts.loneRefusals.get(fileId)!;
  }

  /** A BP_TOKEN_LIMIT stop has counted these refusals: a later run gets fresh tries. */
  markTokenRefusalsReported(fileId: number): void {
    this.#stmts.refusalsReported.run(fileId);
  }

  /** Remembers the highest queued-token total seen per model, for status and reports. */
  notePeakQueued(model: string, tokens: number): void {
    const key = `${PEAK_QUEUED_PREFIX}${model}`;
    const before = Number(this.#ledger.getMeta(key) ?? 0);
    if (tokens > before) this.#ledger.setMeta(key, String(tokens));
  }

  /** The highest queued-token total seen, per model. */
  peakQueued(): Record<string, number> {
    return Object.fromEntries(
      this.#stmts.peakQueued
        .all(`${PEAK_QUEUED_PREFIX}%`)
        .map((p) => [p.key.slice(PEAK_QUEUED_PREFIX.length), Number(p.value)]),
    );
  }
}

function prepareStatements(db: Database.Database) {
  return {
    filesToUpload: db.prepare<[], FileRow>(
      `SELECT * FROM files f WHERE complete = 1 AND remote_file_id IS NULL
         AND EXISTS (SELECT 1 FROM requests r WHERE r.file_id = f.id AND r.state = 'staged')
       ORDER BY id`,
    ),
    markUploadStarted: db.prepare<[number, string, number | null, number]>(
      'UPDATE files SET upload_started_at = ?, upload_intent = ?, upload_server_after = ? WHERE id = ?',
    ),
    setRemoteFile: db.prepare<[string, number]>('UPDATE files SET remote_file_id = ? WHERE id = ?'),
    uploadedFilesReady: db.prepare<[], FileRow>(
      `SELECT f.* FROM files f
       WHERE f.complete = 1 AND f.remote_file_id IS NOT NULL
         AND EXISTS (SELECT 1 FROM requests r WHERE r.file_id = f.id AND r.state = 'staged')
         AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.file_id = f.id AND b.settled = 0)
       ORDER BY f.id`,
    ),
    filesReady: db.prepare<[], FileRow>(
      `SELECT f.* FROM files f
       WHERE f.complete = 1
         AND EXISTS (SELECT 1 FROM requests r WHERE r.file_id = f.id AND r.state = 'staged')
         AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.file_id = f.id AND b.settled = 0)
       ORDER BY f.id`,
    ),
    file: db.prepare<[number], FileRow>('SELECT * FROM files WHERE id = ?'),
    setTokenCount: db.prepare<[string, number, number]>(
      'UPDATE files SET token_count = ?, tokens = ? WHERE id = ?',
    ),
    queuedFiles: db.prepare<[], FileRow>(
      `SELECT f.* FROM files f WHERE EXISTS (SELECT 1 FROM batches b WHERE b.file_id = f.id AND b.settled = 0)
       ORDER BY f.id`,
    ),
    fileCount: db.prepare<[number], number>('SELECT count(*) FROM files WHERE attempt = ?').pluck(),
    insertIntent: db.prepare<[number, string, number, number, number | null], BatchRow>(
      `INSERT INTO batches (file_id, provider, create_started_at, tokens, intent_server_after)
       VALUES (?, ?, ?, ?, ?) RETURNING *`,
    ),
    insertDirectRow: db.prepare<[number, string, number, number, number, number], BatchRow>(
      `INSERT INTO batches (file_id, provider, create_started_at, tokens, status, raw_status, settled,
         created_at, updated_at, status_since)
       VALUES (?, ?, ?, 0, 'in_progress', 'in_progress', 1, ?, ?, ?) RETURNING *`,
    ),
    endInterruptedDirectRows: db.prepare<[number, number]>(
      `UPDATE batches SET status = 'cancelled', raw_status = 'interrupted', ended_at = ?, status_since = ?
       WHERE provider IN ('direct', 'flex') AND status = 'in_progress'`,
    ),
    endDirectRow: db.prepare<[string, number, number, number, number]>(
      `UPDATE batches SET status = 'completed', raw_status = 'completed', request_counts = ?,
         ended_at = ?, updated_at = ?, status_since = ? WHERE id = ?`,
    ),
    markHedged: db.prepare<[string, string, number]>(
      'UPDATE batches SET hedged_to = ?, hedge_reason = ? WHERE id = ?',
    ),
    hedgedPath: db
      .prepare<[], string>(
        'SELECT hedged_to FROM batches WHERE hedged_to IS NOT NULL ORDER BY id DESC LIMIT 1',
      )
      .pluck(),
    pathTotals: db.prepare<[], PathTotals>(
      `SELECT CASE WHEN b.provider IN ('direct', 'flex') THEN b.provider ELSE 'batch' END AS path,
              f.model AS model, count(*) AS requests,
              coalesce(sum(r.input_tokens), 0) AS inputTokens, coalesce(sum(r.output_tokens), 0) AS outputTokens
       FROM requests r JOIN batches b ON b.id = r.batch_id JOIN files f ON f.id = r.file_id
       WHERE r.state = 'succeeded' GROUP BY 1, 2 ORDER BY 1, 2`,
    ),
    anyOffBatch: db
      .prepare<[], number>("SELECT EXISTS (SELECT 1 FROM batches WHERE provider IN ('direct', 'flex'))")
      .pluck(),
    pendingIntents: db.prepare<[], BatchRow>(
      'SELECT * FROM batches WHERE remote_id IS NULL AND settled = 0 ORDER BY id',
    ),
    setRemoteId: db.prepare<[string, number]>('UPDATE batches SET remote_id = ? WHERE id = ?'),
    dropIntent: db.prepare<[number]>('DELETE FROM batches WHERE id = ? AND remote_id IS NULL'),
    openBatches: db.prepare<[], BatchRow>(
      'SELECT * FROM batches WHERE remote_id IS NOT NULL AND settled = 0 ORDER BY id',
    ),
    batches: db.prepare<[], BatchRow>('SELECT * FROM batches ORDER BY id'),
    updateStatus: db.prepare<
      [
        string,
        number,
        number,
        string,
        string | null,
        string | null,
        string | null,
        string | null,
        string | null,
        number,
        number | null,
        number | null,
        string,
        string,
        number,
      ]
    >(
      // The CASE reads the row's old status: status_since moves only when the status changes.
      `UPDATE batches SET status_since = CASE WHEN status IS ? THEN coalesce(status_since, ?) ELSE ? END,
         status = ?, request_counts = ?, output_file_id = ?, error_file_id = ?, errors = ?,
         usage = ?, updated_at = ?, created_at = ?, ended_at = ?, raw_status = ?, raw = ?
       WHERE id = ?`,
    ),
    markSettled: db.prepare<[number]>('UPDATE batches SET settled = 1 WHERE id = ?'),
    queuedTokens: db.prepare<[], { model: string | null; tokens: number }>(
      `SELECT f.model AS model, sum(b.tokens) AS tokens FROM batches b JOIN files f ON f.id = b.file_id
       WHERE b.settled = 0 GROUP BY f.model`,
    ),
    othersQueued: db
      .prepare<[number, number, number], number>(
        `SELECT count(*) FROM batches WHERE id <> ? AND (
           (remote_id IS NULL AND settled = 0)
           OR (remote_id IS NOT NULL AND coalesce(status, '') <> 'failed'
               AND (created_at IS NULL OR created_at <= ?) AND (ended_at IS NULL OR ended_at >= ?)))`,
      )
      .pluck(),
    recordTokenRefusal: db.prepare<[string, number | null, number]>(
      'UPDATE batches SET token_refusal = ?, settled_before = ? WHERE id = ?',
    ),
    // Batches settled that held a place in the queue (every settled one but those that failed).
    settledQueueHolders: db
      .prepare<[], number>(
        "SELECT count(*) FROM batches WHERE settled = 1 AND coalesce(status, '') <> 'failed'",
      )
      .pluck(),
    lastRefusal: db.prepare<[number], Pick<BatchRow, 'token_refusal' | 'settled_before'>>(
      'SELECT token_refusal, settled_before FROM batches WHERE file_id = ? ORDER BY id DESC LIMIT 1',
    ),
    loneRefusals: db
      .prepare<[number], number>("SELECT count(*) FROM batches WHERE file_id = ? AND token_refusal = 'alone'")
      .pluck(),
    refusalsReported: db.prepare<[number]>(
      "UPDATE batches SET token_refusal = 'reported' WHERE file_id = ? AND token_refusal = 'alone'",
    ),
    peakQueued: db.prepare<[string], { key: string; value: string }>(
      'SELECT key, value FROM meta WHERE key LIKE ?',
    ),
  };
}

import type { Batch } from 'openai/resources/batches';
import type { FileRow, Ledger } from '../ledger/ledger.js';

/** A batch attempt as the ledger keeps it. */
export interface BatchRow {
  id: number;
  file_id: number;
  create_started_at: number;
  remote_id: string | null;
  status: string | null;
  request_counts: string | null;
  output_file_id: string | null;
  error_file_id: string | null;
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
}

/**
 * A batch the API refused for its enqueued-token limit: `alone` when nothing else of the run was
 * queued at that moment (the file may be too big for the limit), `queued` when others were (it only
 * has to wait), `reported` for an `alone` refusal already counted by a BP_TOKEN_LIMIT stop.
 */
export type TokenRefusal = 'alone' | 'queued' | 'reported';

export const TERMINAL_STATUSES = new Set(['completed', 'failed', 'expired', 'cancelled']);

const now = () => Math.floor(Date.now() / 1000);

/**
 * The scheduler's view of the ledger: files to upload, batches to create, poll and settle. Every
 * remote side effect has an intent row written (and committed) before the call and the remote id
 * after it, so a crash between the two is settled by matching, never by creating again.
 */
export class BatchStore {
  constructor(readonly ledger: Ledger) {
    // Lookups by file and by batch only start once batches exist; an index built once here is far
    // cheaper than one maintained on every insert of prepare.
    ledger.db.exec(`
      CREATE INDEX IF NOT EXISTS requests_file ON requests (file_id);
      CREATE INDEX IF NOT EXISTS requests_batch ON requests (batch_id);
    `);
  }

  get runId(): string {
    return this.ledger.getMeta('run_id') ?? 'run';
  }

  get endpoint(): string {
    const identity = this.ledger.getMeta('identity');
    return identity ? (JSON.parse(identity) as { endpoint: string }).endpoint : '/v1/chat/completions';
  }

  // Every FileRow handed out goes through ledger.located: its path is stored relative to the ledger.

  /** Complete files not uploaded yet that still hold requests to send, in order. */
  filesToUpload(): FileRow[] {
    return this.ledger.db
      .prepare<[], FileRow>(
        `SELECT * FROM files f WHERE complete = 1 AND remote_file_id IS NULL
           AND EXISTS (SELECT 1 FROM requests r WHERE r.file_id = f.id AND r.state = 'staged')
         ORDER BY id`,
      )
      .all()
      .map((f) => this.ledger.located(f));
  }

  /** Records an upload intent: its tag (in the uploaded name) and the server's time before it. */
  markUploadStarted(fileId: number, intent: string, serverAfter: number | undefined): void {
    this.ledger.db
      .prepare(
        'UPDATE files SET upload_started_at = ?, upload_intent = ?, upload_server_after = ? WHERE id = ?',
      )
      .run(now(), intent, serverAfter ?? null, fileId);
  }

  setRemoteFile(fileId: number, remoteFileId: string): void {
    this.ledger.db.prepare('UPDATE files SET remote_file_id = ? WHERE id = ?').run(remoteFileId, fileId);
  }

  /** Uploaded files that still hold staged requests and have no open batch: ready for a batch. */
  filesReadyForBatch(): FileRow[] {
    return this.ledger.db
      .prepare<[], FileRow>(
        `SELECT f.* FROM files f
         WHERE f.complete = 1 AND f.remote_file_id IS NOT NULL
           AND EXISTS (SELECT 1 FROM requests r WHERE r.file_id = f.id AND r.state = 'staged')
           AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.file_id = f.id AND b.settled = 0)
         ORDER BY f.id`,
      )
      .all()
      .map((f) => this.ledger.located(f));
  }

  file(id: number): FileRow {
    return this.ledger.located(
      this.ledger.db.prepare<[number], FileRow>('SELECT * FROM files WHERE id = ?').get(id)!,
    );
  }

  /** Records the intent to create a batch for a file; returns its row id (named in the batch's metadata). */
  insertBatchIntent(fileId: number, tokens: number, serverAfter: number | undefined): BatchRow {
    return this.ledger.db
      .prepare<[number, number, number, number | null], BatchRow>(
        `INSERT INTO batches (file_id, create_started_at, tokens, intent_server_after) VALUES (?, ?, ?, ?)
         RETURNING *`,
      )
      .get(fileId, now(), tokens, serverAfter ?? null)!;
  }

  /** Intents whose remote batch is not known yet (a crash, or a failed call). */
  pendingIntents(): BatchRow[] {
    return this.ledger.db
      .prepare<[], BatchRow>('SELECT * FROM batches WHERE remote_id IS NULL AND settled = 0 ORDER BY id')
      .all();
  }

  /** Ties an intent to its remote batch and moves the file's staged requests to submitted. */
  recordCreatedBatch(row: BatchRow, batch: Batch): void {
    this.ledger.transaction(() => {
      this.ledger.db.prepare('UPDATE batches SET remote_id = ? WHERE id = ?').run(batch.id, row.id);
      this.updateStatus(row.id, batch);
      this.ledger.db
        .prepare(
          "UPDATE requests SET state = 'submitted', batch_id = ? WHERE file_id = ? AND state = 'staged'",
        )
        .run(row.id, row.file_id);
    });
  }

  /** Drops an intent whose batch was never created (settled by listing); the file is ready again. */
  dropIntent(rowId: number): void {
    this.ledger.db.prepare('DELETE FROM batches WHERE id = ? AND remote_id IS NULL').run(rowId);
  }

  /** Batches created and not yet settled. */
  openBatches(): BatchRow[] {
    return this.ledger.db
      .prepare<[], BatchRow>('SELECT * FROM batches WHERE remote_id IS NOT NULL AND settled = 0 ORDER BY id')
      .all();
  }

  batches(): BatchRow[] {
    return this.ledger.db.prepare<[], BatchRow>('SELECT * FROM batches ORDER BY id').all();
  }

  updateStatus(rowId: number, batch: Batch): void {
    this.ledger.db
      .prepare(
        `UPDATE batches SET status = ?, request_counts = ?, output_file_id = ?, error_file_id = ?, errors = ?,
           usage = ?, updated_at = ?, created_at = ?, ended_at = ? WHERE id = ?`,
      )
      .run(
        batch.status,
        batch.request_counts ? JSON.stringify(batch.request_counts) : null,
        batch.output_file_id || null,
        batch.error_file_id || null,
        batch.errors?.data?.length ? JSON.stringify(batch.errors.data) : null,
        batch.usage ? JSON.stringify(batch.usage) : null,
        now(),
        batch.created_at ?? null,
        batch.completed_at ?? batch.failed_at ?? batch.expired_at ?? batch.cancelled_at ?? null,
        rowId,
      );
  }

  markSettled(rowId: number): void {
    this.ledger.db.prepare('UPDATE batches SET settled = 1 WHERE id = ?').run(rowId);
  }

  /** Estimated tokens in unsettled batches (intents included), per model. */
  queuedTokensByModel(): Map<string, number> {
    const rows = this.ledger.db
      .prepare<[], { model: string | null; tokens: number }>(
        `SELECT f.model AS model, sum(b.tokens) AS tokens FROM batches b JOIN files f ON f.id = b.file_id
         WHERE b.settled = 0 GROUP BY f.model`,
      )
      .all();
    return new Map(rows.map((r) => [r.model ?? '', r.tokens]));
  }

  /**
   * Whether anything else of the run was queued when the API refused this batch for its token limit
   * at server time `refusedAt`: another batch created by then and not ended before it (a failed one
   * never held a place in the queue), or an intent whose batch may exist. Both times are the
   * server's; equal seconds count as queued.
   */
  othersQueuedAt(rowId: number, refusedAt: number | null): boolean {
    const at = refusedAt ?? Number.MAX_SAFE_INTEGER;
    return (
      this.ledger.db
        .prepare<[number, number, number], number>(
          `SELECT count(*) FROM batches WHERE id <> ? AND (
             (remote_id IS NULL AND settled = 0)
             OR (remote_id IS NOT NULL AND coalesce(status, '') <> 'failed'
                 AND (created_at IS NULL OR created_at <= ?) AND (ended_at IS NULL OR ended_at >= ?)))`,
        )
        .pluck()
        .get(rowId, at, at)! > 0
    );
  }

  /** Records a token-limit refusal; a `queued` one remembers how many batches had settled by then. */
  recordTokenRefusal(rowId: number, refusal: 'alone' | 'queued'): void {
    this.ledger.db
      .prepare('UPDATE batches SET token_refusal = ?, settled_before = ? WHERE id = ?')
      .run(refusal, refusal === 'queued' ? this.settledQueueHolders() : null, rowId);
  }

  /** Batches settled that held a place in the queue (every settled one but those that failed). */
  private settledQueueHolders(): number {
    return this.ledger.db
      .prepare<[], number>(
        "SELECT count(*) FROM batches WHERE settled = 1 AND coalesce(status, '') <> 'failed'",
      )
      .pluck()
      .get()!;
  }

  /**
   * A file refused while others of the run were queued waits until one of the run's batches has
   * settled since (the queue moved), rather than being refused again at every poll.
   */
  waitsAfterRefusal(fileId: number): boolean {
    const last = this.ledger.db
      .prepare<[number], Pick<BatchRow, 'token_refusal' | 'settled_before'>>(
        'SELECT token_refusal, settled_before FROM batches WHERE file_id = ? ORDER BY id DESC LIMIT 1',
      )
      .get(fileId);
    return last?.token_refusal === 'queued' && last.settled_before === this.settledQueueHolders();
  }

  /** Refusals of this file for the token limit with nothing else of the run queued, since the last stop. */
  loneTokenRefusals(fileId: number): number {
    return this.ledger.db
      .prepare<[number], number>("SELECT count(*) FROM batches WHERE file_id = ? AND token_refusal = 'alone'")
      .pluck()
      .get(fileId)!;
  }

  /** A BP_TOKEN_LIMIT stop has counted these refusals: a later run gets fresh tries. */
  markTokenRefusalsReported(fileId: number): void {
    this.ledger.db
      .prepare("UPDATE batches SET token_refusal = 'reported' WHERE file_id = ? AND token_refusal = 'alone'")
      .run(fileId);
  }

  /** Remembers the highest queued-token total seen per model, for status and reports. */
  notePeakQueued(model: string, tokens: number): void {
    const key = `peak_queued_tokens:${model}`;
    const before = Number(this.ledger.getMeta(key) ?? 0);
    if (tokens > before) this.ledger.setMeta(key, String(tokens));
  }
}

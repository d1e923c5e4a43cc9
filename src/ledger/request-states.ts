/**
 * Every change of a request's state, each a named method, so a request's life reads in one place.
 * Touches the `requests` table only (and the ledger's completion counter, `result_seq`).
 *
 *   prepare ─ Ledger.insertRequests ─▶ staged (in a file)          an input record that never became
 *                                        │                         a request: Ledger.insertReject
 *                       submitFile ◀─────┘                         (rejected, never sent)
 *                            ▼
 *                        submitted ── result lines (results/outcome-stage) ─▶ succeeded | failed |
 *                            │                                                 expired | cancelled,
 *                            │                                                 or staged again
 *   the batch ended, for the requests its result files do not mention:
 *     putBackRefused        token-limit refusal: staged again in the same file, attempt unspent
 *     failNamedLines        validation refused lines: those fail with the line's code
 *     restageUnrefused      ... and the others are staged again in no file, attempt unspent
 *     retryLeftovers        expired / no line: staged again in no file, attempt + 1, or final below
 *     finalizeLeftovers     failed | expired | cancelled for good
 *
 *   the direct path (synchronous calls, src/scheduler/direct):
 *     markDirectSend        staged → submitted in a direct batch row, its send counted, before the call
 *     resumeDirectInFlight  submitted on the direct path when a run died → staged (sent again, counted)
 *     hedgeLeftovers        submitted in a cancelled (hedged) batch, unanswered → staged in no file,
 *                           attempt unspent, for the hedge path
 *
 *   failed | expired | cancelled, after the run ─▶ staged in no file, attempt + 1:
 *     restageFinal          `batchpipe retry`, or `run` with a higher --max-attempts
 *
 *   staged in no file ─ Ledger.assignFile (restage writes a retry file) ─▶ staged in that file
 *     failUnencodable       a stored record that no longer encodes fails instead
 *   staged in a file ─▶ staged in no file (written again in new files):
 *     releaseIncompleteFile a retry file a crash left half written
 *     releaseLargeFiles     files above a lowered --max-lines, not yet in a batch
 *     releasePartlyFinished files whose other requests are already final (ingested elsewhere)
 */
import type Database from 'better-sqlite3';
import type { RemoteBatchError } from '../types.js';
import { connectionOf, type Ledger } from './ledger.js';

/** The final states a batch's leftovers can take. */
export type LeftoverState = 'failed' | 'expired' | 'cancelled';

/** A request staged again with no file, as restage reads it to write a retry file. */
export interface UnplacedRequest {
  seq: number;
  custom_id: string;
  record: Buffer;
}

/** Where the unfinished requests are: staged in no complete file, staged in one, or submitted. */
export interface Unfinished {
  unwritten: number;
  inFiles: number;
  submitted: number;
}

const states = new WeakMap<Ledger, RequestStates>();

export class RequestStates {
  readonly #ledger: Ledger;
  readonly #stmts;

  /** The state transitions of this ledger (one instance, its statements prepared once, per ledger). */
  static of(ledger: Ledger): RequestStates {
    let found = states.get(ledger);
    if (!found) {
      found = new RequestStates(ledger);
      states.set(ledger, found);
    }
    return found;
  }

  private constructor(ledger: Ledger) {
    this.#ledger = ledger;
    this.#stmts = prepareStatements(connectionOf(ledger));
  }

  /** staged → submitted: the file's staged requests are now in the batch `batchRowId`. */
  submitFile(batchRowId: number, fileId: number): void {
    this.#stmts.submitFile.run(batchRowId, fileId);
  }

  /**
   * staged → submitted in the direct batch row `batchRowId`, its send counted: the intent committed
   * before a synchronous call. False when the request is no longer staged (nothing to send).
   */
  markDirectSend(batchRowId: number, seq: number): boolean {
    return this.#stmts.markDirectSend.run(batchRowId, seq).changes === 1;
  }

  /**
   * submitted on the direct path (a batch row of `providers`) → staged in the same file: the requests a
   * run that died had in flight. They are sent again (at-least-once); those whose send had begun have
   * the resend counted. Returns how many were put back and how many of those had been sent.
   */
  resumeDirectInFlight(providers: readonly string[]): { requests: number; resent: number } {
    const list = JSON.stringify(providers);
    return this.#ledger.transaction(() => {
      const resent = this.#stmts.countDirectInFlight.get(list) ?? 0;
      const requests = this.#stmts.resumeDirectInFlight.run(list).changes;
      return { requests, resent };
    });
  }

  /**
   * submitted → staged in no file, attempt unspent: the unanswered requests of a batch cancelled to
   * hedge go to the hedge path. Returns how many.
   */
  hedgeLeftovers(batchRowId: number): number {
    return this.#stmts.restageUnrefused.run(batchRowId).changes;
  }

  /**
   * Up to `limit` requests staged in a file with a seq above `afterSeq`, in seq order (the order of the
   * file's lines): what a direct pass over the file sends, read a page at a time.
   */
  stagedInFile(fileId: number, afterSeq: number, limit: number): { seq: number; custom_id: string }[] {
    return this.#stmts.stagedInFile.all(fileId, afterSeq, limit);
  }

  /** How many requests of a file are staged. */
  stagedCountInFile(fileId: number): number {
    return this.#stmts.stagedCountInFile.get(fileId) ?? 0;
  }

  /** Requests sent again on the direct path because a run died with them in flight (at-least-once). */
  directResent(): number {
    return this.#stmts.directResent.get() ?? 0;
  }

  /**
   * submitted → staged in the same file: the batch was refused whole for the enqueued-token limit,
   * none of it ran; the file gets a new batch later and nobody's attempt is spent.
   */
  putBackRefused(batchRowId: number): void {
    this.#stmts.putBackRefused.run(batchRowId);
  }

  /**
   * submitted → failed, for the lines a failed batch's validation names (line N is the file's Nth
   * request by seq), each with its code and message. Returns how many failed.
   */
  failNamedLines(batchRowId: number, fileId: number, errors: readonly RemoteBatchError[]): number {
    let marked = 0;
    for (const error of errors) {
      if (!error.line) continue;
      const seq = this.#stmts.seqAtLine.get(fileId, error.line - 1);
      if (seq === undefined) continue;
      marked += this.#stmts.failLine.run(
        error.code ?? 'invalid_request',
        `line ${error.line}: ${error.message ?? ''}`,
        this.#ledger.nextResultSeq(),
        seq,
        batchRowId,
      ).changes;
    }
    return marked;
  }

  /**
   * submitted → staged in no file, attempt unspent: the requests of a batch that failed validation
   * on other lines go again in a new file. Returns how many.
   */
  restageUnrefused(batchRowId: number): number {
    return this.#stmts.restageUnrefused.run(batchRowId).changes;
  }

  /**
   * submitted → staged in no file with attempt + 1, for the batch's leftovers whose attempts are not
   * spent (`code` and `message` say why they are tried again); the rest are finalized as `state`.
   */
  retryLeftovers(
    batchRowId: number,
    state: LeftoverState,
    code: string,
    message: string,
    maxAttempts: number,
  ): void {
    this.#stmts.retryLeftovers.run(code, message, batchRowId, maxAttempts);
    this.finalizeLeftovers(batchRowId, state, code, message);
  }

  /**
   * submitted → failed | expired | cancelled for good, for the batch's remaining requests, numbered
   * in seq order within one block of the ledger's completion counter.
   */
  finalizeLeftovers(batchRowId: number, state: LeftoverState, code: string, message: string): void {
    const span = this.#stmts.submittedSpan.get(batchRowId)!;
    if (span.lo === null || span.hi === null) return;
    const base = this.#ledger.nextResultSeq(span.hi - span.lo + 1);
    this.#stmts.finalize.run(state, code, message, base, span.lo, batchRowId);
  }

  /**
   * failed | expired | cancelled → staged in no file with attempt + 1, for requests in `from` that
   * have had fewer than `maxAttempts` attempts: the next run writes them into retry files and sends
   * them. `onlyRetryable` keeps to the failures another try may mend (see `RETRYABLE`); without it
   * every request in those states goes (the user asked for them). The failure stays recorded until
   * the new outcome replaces it. Returns how many were staged.
   */
  restageFinal(from: readonly LeftoverState[], maxAttempts: number, onlyRetryable: boolean): number {
    const statement = onlyRetryable ? this.#stmts.restageRetryable : this.#stmts.restageFinal;
    return statement.run(JSON.stringify(from), maxAttempts).changes;
  }

  /** staged → failed: a stored record that no longer encodes cannot be retried. */
  failUnencodable(seq: number, code: string, message: string): void {
    this.#stmts.failUnencodable.run(code, message, seq);
  }

  /** staged in the file → staged in no file: a retry file a crash left half written. */
  releaseIncompleteFile(fileId: number): void {
    this.#stmts.releaseFile.run(fileId);
  }

  /**
   * staged in a file → staged in no file, for complete files holding more than `maxLines` requests
   * and not in a batch: written again in smaller files. Returns how many requests moved.
   */
  releaseLargeFiles(maxLines: number): number {
    return this.#stmts.releaseLargeFiles.run(maxLines).changes;
  }

  /**
   * staged in a file → staged in no file, for files not in a batch whose other requests are final
   * already (ingested from elsewhere): sending the file whole would pay for those twice.
   */
  releasePartlyFinished(): void {
    this.#stmts.releasePartlyFinished.run();
  }

  // --- Reads ---

  /** Requests not final yet (staged or submitted). */
  unfinishedCount(): number {
    return this.#stmts.unfinished.get()!;
  }

  /** Where the unfinished requests are. */
  unfinished(): Unfinished {
    return this.#stmts.unfinishedByPlace.get()!;
  }

  /** The attempts of requests staged in no file, lowest first. */
  unplacedAttempts(): number[] {
    return this.#stmts.unplacedAttempts.all();
  }

  /** Up to `limit` requests of this attempt staged in no file, in seq order, with their records. */
  unplacedPage(attempt: number, limit: number): UnplacedRequest[] {
    return this.#stmts.unplacedPage.all(attempt, limit);
  }

  /** Tokens used by every request so far. */
  tokenTotals(): { input: number; output: number } {
    const totals = this.#stmts.tokenTotals.get()!;
    return { input: totals.input ?? 0, output: totals.output ?? 0 };
  }

  /** Tokens used by the requests of one batch, as recorded so far. */
  batchTokens(batchRowId: number): { input: number; output: number } {
    const totals = this.#stmts.batchTokens.get(batchRowId)!;
    return { input: totals.input ?? 0, output: totals.output ?? 0 };
  }
}

/**
 * A final failure another try may mend, from what the ledger keeps of it: the batch expired, an
 * HTTP 429 or 5xx, or one of the codes collect retries by itself (src/results/line-outcome.ts and
 * extract.ts decide `retryable` per line; `missing_result` is a line the batch never wrote).
 */
const RETRYABLE = `(state = 'expired' OR status_code = 429 OR status_code >= 500 OR error_code IN
  ('batch_expired', 'server_error', 'rate_limit_exceeded', 'missing_result', 'invalid_json',
   'invalid_output', 'empty_response'))`;

function prepareStatements(db: Database.Database) {
  const restage = (only: string) =>
    db.prepare<[string, number]>(
      `UPDATE requests SET state = 'staged', attempt = attempt + 1, file_id = NULL, batch_id = NULL,
         status_code = NULL, result = NULL, result_seq = NULL
       WHERE state IN (SELECT value FROM json_each(?)) AND attempt < ? AND ${only}`,
    );
  return {
    restageFinal: restage('1'),
    restageRetryable: restage(RETRYABLE),
    submitFile: db.prepare<[number, number]>(
      "UPDATE requests SET state = 'submitted', batch_id = ? WHERE file_id = ? AND state = 'staged'",
    ),
    markDirectSend: db.prepare<[number, number]>(
      `UPDATE requests SET state = 'submitted', batch_id = ?, direct_sent = direct_sent + 1
       WHERE seq = ? AND state = 'staged'`,
    ),
    countDirectInFlight: db
      .prepare<[string], number>(
        `SELECT count(*) FROM requests WHERE state = 'submitted' AND direct_sent > 0 AND batch_id IN
           (SELECT id FROM batches WHERE provider IN (SELECT value FROM json_each(?)))`,
      )
      .pluck(),
    resumeDirectInFlight: db.prepare<[string]>(
      `UPDATE requests SET state = 'staged', batch_id = NULL,
         direct_resent = direct_resent + (direct_sent > 0)
       WHERE state = 'submitted' AND batch_id IN
         (SELECT id FROM batches WHERE provider IN (SELECT value FROM json_each(?)))`,
    ),
    stagedInFile: db.prepare<[number, number, number], { seq: number; custom_id: string }>(
      "SELECT seq, custom_id FROM requests WHERE file_id = ? AND state = 'staged' AND seq > ? ORDER BY seq LIMIT ?",
    ),
    stagedCountInFile: db
      .prepare<[number], number>("SELECT count(*) FROM requests WHERE file_id = ? AND state = 'staged'")
      .pluck(),
    directResent: db.prepare<[], number>('SELECT coalesce(sum(direct_resent), 0) FROM requests').pluck(),
    putBackRefused: db.prepare<[number]>(
      "UPDATE requests SET state = 'staged', batch_id = NULL WHERE batch_id = ? AND state = 'submitted'",
    ),
    seqAtLine: db
      .prepare<[number, number], number>(
        'SELECT seq FROM requests WHERE file_id = ? ORDER BY seq LIMIT 1 OFFSET ?',
      )
      .pluck(),
    failLine: db.prepare<[string, string, number, number, number]>(
      `UPDATE requests SET state = 'failed', error_code = ?, error_message = ?, result_seq = ?
       WHERE seq = ? AND batch_id = ? AND state = 'submitted'`,
    ),
    restageUnrefused: db.prepare<[number]>(
      `UPDATE requests SET state = 'staged', file_id = NULL, batch_id = NULL
       WHERE batch_id = ? AND state = 'submitted'`,
    ),
    retryLeftovers: db.prepare<[string, string, number, number]>(
      `UPDATE requests SET state = 'staged', attempt = attempt + 1, file_id = NULL, batch_id = NULL,
         error_code = ?, error_message = ?
       WHERE batch_id = ? AND state = 'submitted' AND attempt < ?`,
    ),
    submittedSpan: db.prepare<[number], { lo: number | null; hi: number | null }>(
      "SELECT min(seq) AS lo, max(seq) AS hi FROM requests WHERE batch_id = ? AND state = 'submitted'",
    ),
    finalize: db.prepare<[string, string, string, number, number, number]>(
      `UPDATE requests SET state = ?, error_code = ?, error_message = ?, result_seq = ? + seq - ?
       WHERE batch_id = ? AND state = 'submitted'`,
    ),
    failUnencodable: db.prepare<[string, string, number]>(
      "UPDATE requests SET state = 'failed', error_code = ?, error_message = ? WHERE seq = ?",
    ),
    releaseFile: db.prepare<[number]>('UPDATE requests SET file_id = NULL WHERE file_id = ?'),
    releaseLargeFiles: db.prepare<[number]>(
      `UPDATE requests SET file_id = NULL WHERE state = 'staged' AND file_id IN (
         SELECT f.id FROM files f WHERE f.complete = 1 AND f.lines > ?
           AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.file_id = f.id AND b.settled = 0))`,
    ),
    releasePartlyFinished: db.prepare<[]>(
      `UPDATE requests SET file_id = NULL WHERE state = 'staged' AND file_id IN (
         SELECT f.id FROM files f
         WHERE NOT EXISTS (SELECT 1 FROM batches b WHERE b.file_id = f.id AND b.settled = 0)
           AND EXISTS (SELECT 1 FROM requests r WHERE r.file_id = f.id AND r.state <> 'staged'))`,
    ),
    unfinished: db
      .prepare<[], number>("SELECT count(*) FROM requests WHERE state IN ('staged', 'submitted')")
      .pluck(),
    unfinishedByPlace: db.prepare<[], Unfinished>(
      `SELECT coalesce(sum(r.state = 'staged' AND coalesce(f.complete, 0) = 0), 0) AS unwritten,
              coalesce(sum(r.state = 'staged' AND f.complete = 1), 0) AS inFiles,
              coalesce(sum(r.state = 'submitted'), 0) AS submitted
       FROM requests r LEFT JOIN files f ON f.id = r.file_id
       WHERE r.state IN ('staged', 'submitted')`,
    ),
    unplacedAttempts: db
      .prepare<[], number>(
        "SELECT DISTINCT attempt FROM requests WHERE state = 'staged' AND file_id IS NULL ORDER BY attempt",
      )
      .pluck(),
    unplacedPage: db.prepare<[number, number], UnplacedRequest>(
      `SELECT seq, custom_id, record FROM requests JOIN records USING (seq)
       WHERE state = 'staged' AND file_id IS NULL AND attempt = ?
       ORDER BY seq LIMIT ?`,
    ),
    tokenTotals: db.prepare<[], { input: number | null; output: number | null }>(
      'SELECT sum(input_tokens) AS input, sum(output_tokens) AS output FROM requests',
    ),
    batchTokens: db.prepare<[number], { input: number | null; output: number | null }>(
      'SELECT sum(input_tokens) AS input, sum(output_tokens) AS output FROM requests WHERE batch_id = ?',
    ),
  };
}

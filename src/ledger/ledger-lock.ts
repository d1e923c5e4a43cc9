/**
 * One writer per ledger. Owns `<ledger>.lock`, a small SQLite database beside the ledger, and touches
 * nothing else: the process that holds the lock keeps a write transaction open on it for as long as
 * it has the ledger open for writing.
 *
 * Why SQLite's own lock rather than a lock row with a pid: SQLite's locks are OS advisory locks, and
 * the OS drops them when the process dies, SIGKILL included. A dead holder leaves nothing stale, and
 * nobody has to guess from a pid whether its owner still lives (which breaks across hosts and with
 * reused pids). The database is in WAL mode so that a refused process can still read who holds it.
 *
 * Who holds it, for the refusal message: a description row `{ pid, host, command, since }`. It cannot
 * be written inside the long transaction (nobody else would see it before it commits), so a process
 * takes the lock, commits its description, and takes the lock again at once:
 * - lock taken, committed description is ours: we hold it, described; done.
 * - lock taken, description missing or someone else's: that one died, released, or is between its
 *   commit and its second take. Write ours, commit, take again (a live one then finds the lock gone
 *   to us and our description in place, and is refused naming us).
 * - lock refused, description someone else's (and not a dead pid on this host): that one holds it;
 *   refuse at once, naming it.
 * - lock refused, description missing or ours: a holder between its take and its commit (about a
 *   millisecond); ask again shortly.
 * Releasing deletes the description in the commit that ends the transaction.
 *
 * Never open the lock file with anything but SQLite in a process that holds it: POSIX drops all of a
 * process's locks on a file when any descriptor of that file in the process is closed.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import Database from 'better-sqlite3';
import { BatchpipeError, ErrorCodes } from '../errors.js';

/** Who holds a ledger's lock, as a refused process is told. */
export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  /** ISO 8601 time the lock was taken. */
  since: string;
}

/** Rounds of asking again while a holder is between taking the lock and describing itself. */
const ROUNDS = 100;
const ROUND_MS = 10;

/** The lock database of a ledger file: `runs/x.db` → `runs/x.db.lock`. */
export function lockPathOf(ledgerPath: string): string {
  return `${ledgerPath}.lock`;
}

export class LedgerLock {
  private constructor(private db: Database.Database | undefined) {}

  /**
   * Takes the write lock of the ledger at `ledgerPath` for `command`, or fails at once with
   * `BP_LEDGER_BUSY` naming the process that holds it. Creates only the lock database.
   */
  static acquire(ledgerPath: string, command: string): LedgerLock {
    const path = lockPathOf(ledgerPath);
    let db: Database.Database;
    try {
      db = new Database(path);
      // Waits only while another process creates the file and switches it to WAL; once in WAL the
      // pragma reads the mode and takes no lock.
      db.pragma('busy_timeout = 2000');
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 0');
    } catch (err) {
      throw new BatchpipeError(
        ErrorCodes.IO,
        `cannot open the lock ${path} of ledger ${ledgerPath}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const me = { token: randomUUID(), pid: process.pid, host: hostname(), command, since: '' };
    let seen: (LockHolder & { token: string }) | undefined;
    const isOther = (h: typeof seen): h is LockHolder & { token: string } =>
      h !== undefined && h.token !== me.token && !deadOnThisHost(h);
    try {
      for (let round = 0; round < ROUNDS; round++) {
        if (tryBegin(db)) {
          db.exec(
            'CREATE TABLE IF NOT EXISTS holder (id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL, command TEXT NOT NULL, since TEXT NOT NULL)',
          );
          if (readHolder(db)?.token === me.token) return new LedgerLock(db);
          me.since = new Date().toISOString();
          db.prepare(
            'INSERT OR REPLACE INTO holder (id, token, pid, host, command, since) VALUES (1, ?, ?, ?, ?, ?)',
          ).run(me.token, me.pid, me.host, me.command, me.since);
          db.exec('COMMIT');
          continue; // take it again at once, now described
        }
        seen = readHolder(db);
        if (isOther(seen)) break;
        sleepSync(ROUND_MS);
      }
    } catch (err) {
      db.close();
      throw new BatchpipeError(
        ErrorCodes.IO,
        `cannot take the lock ${path} of ledger ${ledgerPath}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    db.close();
    throw busy(ledgerPath, isOther(seen) ? seen : undefined);
  }

  /** Frees the lock (also freed by the OS when the process ends, however it ends). */
  release(): void {
    const db = this.db;
    if (!db) return;
    this.db = undefined;
    try {
      db.exec('DELETE FROM holder; COMMIT');
    } finally {
      db.close();
    }
  }
}

/** `BEGIN IMMEDIATE` without waiting: true when this connection now holds the write lock. */
function tryBegin(db: Database.Database): boolean {
  try {
    db.exec('BEGIN IMMEDIATE');
    return true;
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) return false;
    throw err;
  }
}

function readHolder(db: Database.Database): (LockHolder & { token: string }) | undefined {
  try {
    return db
      .prepare<[], LockHolder & { token: string }>(
        'SELECT token, pid, host, command, since FROM holder WHERE id = 1',
      )
      .get();
  } catch {
    return undefined; // no table yet: nobody has described itself
  }
}

/** A description left by a process of this host that is gone (it died between its two takes). */
function deadOnThisHost(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return false;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function busy(ledgerPath: string, holder: LockHolder | undefined): BatchpipeError {
  const who =
    holder === undefined
      ? 'another process'
      : `\`${holder.command}\` (pid ${holder.pid} on ${holder.host}, since ${holder.since})`;
  return new BatchpipeError(
    ErrorCodes.LEDGER_BUSY,
    `ledger ${ledgerPath} is in use by ${who}; one process at a time may change a ledger: wait for it to end (or stop it), then run this again. \`status\` and \`results\` work meanwhile`,
  );
}

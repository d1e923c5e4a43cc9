import Database from 'better-sqlite3';
import { type BatchInternals, type BatchObject, type FileObject, TERMINAL_STATUSES } from '../types.js';

const SCHEMA_VERSION = 1;

/** A page of a cursor-paginated list. */
export interface Page<T> {
  data: T[];
  hasMore: boolean;
}

export interface FileQuery {
  purpose?: string | undefined;
  after?: string | undefined;
  limit: number;
  order: 'asc' | 'desc';
}

export interface BatchQuery {
  after?: string | undefined;
  limit: number;
}

export interface StoredBatch {
  batch: BatchObject;
  internals: BatchInternals;
}

/**
 * The server's own state: file and batch objects in SQLite (WAL, statements prepared once). Objects are
 * stored whole as JSON beside the few columns that queries need. Deleted files stay as tombstones so a
 * list cursor that names one still works.
 */
export interface ServerStore {
  insertFile(file: FileObject): void;
  getFile(id: string): FileObject | undefined;
  listFiles(query: FileQuery): Page<FileObject>;
  /** Marks a file deleted; false if there was no such live file. */
  deleteFile(id: string): boolean;
  /** Deleted files whose contents no unfinished batch still reads. */
  deletedUnreferenced(): string[];
  /** Forgets that a deleted file's contents still need removing. */
  markSwept(id: string): void;
  insertBatch(batch: BatchObject, internals: BatchInternals): void;
  getBatch(id: string): StoredBatch | undefined;
  listBatches(query: BatchQuery): Page<BatchObject>;
  /** Read-modify-write of one batch in a transaction; returns the updated batch. */
  updateBatch(id: string, change: (stored: StoredBatch) => void): StoredBatch;
  /** Inserts the output/error file objects and applies the final change, atomically. */
  finishBatch(id: string, files: FileObject[], change: (stored: StoredBatch) => void): StoredBatch;
  unfinishedBatchIds(): string[];
  /** Tokens of unfinished batches of a model, other than `exceptId`. */
  queuedTokens(model: string, exceptId: string): number;
  close(): void;
}

interface BatchRow {
  doc: string;
  internals: string;
}

/** Opens (creating if needed) the store at `dbPath`. */
export function openServerStore(dbPath: string): ServerStore {
  const db = new Database(dbPath);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  migrate(db);

  const terminal = [...TERMINAL_STATUSES].map((s) => `'${s}'`).join(',');
  const stmt = {
    insertFile: db.prepare('INSERT INTO files (id, purpose, doc) VALUES (?, ?, ?)'),
    getFile: db.prepare<[string], { doc: string }>('SELECT doc FROM files WHERE id = ? AND deleted = 0'),
    deleteFile: db.prepare('UPDATE files SET deleted = 1, sweep = 1 WHERE id = ? AND deleted = 0'),
    toSweep: db.prepare<[], { id: string }>(
      `SELECT f.id FROM files f WHERE f.sweep = 1 AND NOT EXISTS (
         SELECT 1 FROM batches b WHERE b.input_file_id = f.id AND b.status NOT IN (${terminal}))`,
    ),
    markSwept: db.prepare('UPDATE files SET sweep = 0 WHERE id = ?'),
    insertBatch: db.prepare(
      'INSERT INTO batches (id, status, model, tokens, input_file_id, doc, internals) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    getBatch: db.prepare<[string], BatchRow>('SELECT doc, internals FROM batches WHERE id = ?'),
    updateBatch: db.prepare(
      'UPDATE batches SET status = ?, model = ?, tokens = ?, doc = ?, internals = ? WHERE id = ?',
    ),
    unfinished: db.prepare<[], { id: string }>(
      `SELECT id FROM batches WHERE status NOT IN (${terminal}) ORDER BY seq`,
    ),
    queuedTokens: db.prepare<[string, string], { total: number | null }>(
      `SELECT SUM(tokens) AS total FROM batches WHERE model = ? AND id <> ? AND status NOT IN (${terminal})`,
    ),
  };

  const decode = (row: BatchRow): StoredBatch => ({
    batch: JSON.parse(row.doc) as BatchObject,
    internals: JSON.parse(row.internals) as BatchInternals,
  });
  const write = (stored: StoredBatch) => {
    const { batch, internals } = stored;
    stmt.updateBatch.run(
      batch.status,
      batch.model,
      internals.tokens,
      JSON.stringify(batch),
      JSON.stringify(internals),
      batch.id,
    );
  };
  const load = (id: string): StoredBatch => {
    const row = stmt.getBatch.get(id);
    if (!row) throw new Error(`no batch ${id}`);
    return decode(row);
  };

  const updateBatch = db.transaction((id: string, change: (stored: StoredBatch) => void) => {
    const stored = load(id);
    change(stored);
    write(stored);
    return stored;
  });
  const finishBatch = db.transaction(
    (id: string, files: FileObject[], change: (stored: StoredBatch) => void) => {
      for (const file of files) {
        if (!stmt.getFile.get(file.id)) stmt.insertFile.run(file.id, file.purpose, JSON.stringify(file));
      }
      const stored = load(id);
      change(stored);
      write(stored);
      return stored;
    },
  );

  return {
    insertFile(file) {
      stmt.insertFile.run(file.id, file.purpose, JSON.stringify(file));
    },
    getFile(id) {
      const row = stmt.getFile.get(id);
      return row ? (JSON.parse(row.doc) as FileObject) : undefined;
    },
    listFiles({ purpose, after, limit, order }) {
      const cmp = order === 'asc' ? '>' : '<';
      const where = ['deleted = 0'];
      const params: Array<string | number> = [];
      if (purpose !== undefined) {
        where.push('purpose = ?');
        params.push(purpose);
      }
      if (after !== undefined) {
        where.push(`seq ${cmp} (SELECT seq FROM files WHERE id = ?)`);
        params.push(after);
      }
      params.push(limit + 1);
      const rows = db
        .prepare<Array<string | number>, { doc: string }>(
          `SELECT doc FROM files WHERE ${where.join(' AND ')} ORDER BY seq ${order === 'asc' ? 'ASC' : 'DESC'} LIMIT ?`,
        )
        .all(...params);
      return {
        data: rows.slice(0, limit).map((r) => JSON.parse(r.doc) as FileObject),
        hasMore: rows.length > limit,
      };
    },
    deleteFile(id) {
      return stmt.deleteFile.run(id).changes > 0;
    },
    deletedUnreferenced() {
      return stmt.toSweep.all().map((r) => r.id);
    },
    markSwept(id) {
      stmt.markSwept.run(id);
    },
    insertBatch(batch, internals) {
      stmt.insertBatch.run(
        batch.id,
        batch.status,
        batch.model,
        internals.tokens,
        batch.input_file_id,
        JSON.stringify(batch),
        JSON.stringify(internals),
      );
    },
    getBatch(id) {
      const row = stmt.getBatch.get(id);
      return row ? decode(row) : undefined;
    },
    listBatches({ after, limit }) {
      const params: Array<string | number> = [];
      let where = '';
      if (after !== undefined) {
        where = 'WHERE seq < (SELECT seq FROM batches WHERE id = ?)';
        params.push(after);
      }
      params.push(limit + 1);
      const rows = db
        .prepare<Array<string | number>, { doc: string }>(
          `SELECT doc FROM batches ${where} ORDER BY seq DESC LIMIT ?`,
        )
        .all(...params);
      return {
        data: rows.slice(0, limit).map((r) => JSON.parse(r.doc) as BatchObject),
        hasMore: rows.length > limit,
      };
    },
    updateBatch: (id, change) => updateBatch.immediate(id, change),
    finishBatch: (id, files, change) => finishBatch.immediate(id, files, change),
    unfinishedBatchIds() {
      return stmt.unfinished.all().map((r) => r.id);
    },
    queuedTokens(model, exceptId) {
      return stmt.queuedTokens.get(model, exceptId)?.total ?? 0;
    },
    close() {
      db.close();
    },
  };
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version === SCHEMA_VERSION) return;
  if (version !== 0) {
    throw new Error(`unknown server state schema version ${version} (expected ${SCHEMA_VERSION})`);
  }
  db.exec(`
    CREATE TABLE files (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      purpose TEXT NOT NULL,
      deleted INTEGER NOT NULL DEFAULT 0,
      sweep INTEGER NOT NULL DEFAULT 0,
      doc TEXT NOT NULL
    );
    CREATE INDEX files_purpose ON files (purpose, seq);
    CREATE TABLE batches (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      status TEXT NOT NULL,
      model TEXT,
      tokens INTEGER NOT NULL DEFAULT 0,
      input_file_id TEXT NOT NULL,
      doc TEXT NOT NULL,
      internals TEXT NOT NULL
    );
    CREATE INDEX batches_status ON batches (status);
    PRAGMA user_version = ${SCHEMA_VERSION};
  `);
}

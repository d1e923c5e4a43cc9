import Database from 'better-sqlite3';
import {
  type BatchInternals,
  type BatchObject,
  type Dialect,
  type FileDialect,
  type FileObject,
  TERMINAL_STATUSES,
} from '../types.js';

const SCHEMA_VERSION = 2;

/** A page of a cursor-paginated list. */
export interface Page<T> {
  data: T[];
  hasMore: boolean;
}

export interface FileQuery {
  /** Whose files (default `openai`). */
  dialect?: FileDialect;
  purpose?: string | undefined;
  after?: string | undefined;
  limit: number;
  order: 'asc' | 'desc';
}

export interface BatchQuery {
  /** Whose batches (default `openai`). */
  dialect?: Dialect;
  /** The page of batches created before this one (older), newest first. */
  after?: string | undefined;
  /** The page of batches created after this one (newer, the closest to it), newest first. */
  before?: string | undefined;
  limit: number;
}

export interface StoredBatch {
  batch: BatchObject;
  internals: BatchInternals;
  /** Deleted through its API (Anthropic, Gemini): gone from every view, though the engine may still run it. */
  deleted: boolean;
}

/** A file with who may see it and what its API keeps beside the object (a Gemini file's MIME type…). */
export interface StoredFile {
  file: FileObject;
  dialect: FileDialect;
  meta: unknown;
}

/** A file to record, with who may see it. */
export interface NewFile {
  file: FileObject;
  dialect: FileDialect;
  meta?: unknown;
}

/**
 * The server's own state: file and batch objects in SQLite (WAL, statements prepared once). Objects are
 * stored whole as JSON beside the few columns that queries need. Deleted files stay as tombstones so a
 * list cursor that names one still works.
 */
export interface ServerStore {
  insertFile(file: FileObject, dialect?: FileDialect, meta?: unknown): void;
  /** An OpenAI file (other dialects' files are invisible here). */
  getFile(id: string): FileObject | undefined;
  /** A live file of any dialect. */
  getFileRecord(id: string): StoredFile | undefined;
  listFiles(query: FileQuery): Page<FileObject>;
  /** Marks a file deleted; false if there was no such live file. */
  deleteFile(id: string): boolean;
  /** Deleted files whose contents no unfinished batch still reads. */
  deletedUnreferenced(): string[];
  /** Forgets that a deleted file's contents still need removing. */
  markSwept(id: string): void;
  insertBatch(batch: BatchObject, internals: BatchInternals): void;
  /** A batch of any dialect, deleted ones included (the engine still runs them). */
  getBatch(id: string): StoredBatch | undefined;
  listBatches(query: BatchQuery): Page<StoredBatch>;
  /** Hides a batch from every view; false if it was already deleted or never existed. */
  deleteBatch(id: string): boolean;
  /** Read-modify-write of one batch in a transaction; returns the updated batch. */
  updateBatch(id: string, change: (stored: StoredBatch) => void): StoredBatch;
  /** Inserts the output/error (and results) file objects and applies the final change, atomically. */
  finishBatch(id: string, files: NewFile[], change: (stored: StoredBatch) => void): StoredBatch;
  unfinishedBatchIds(): string[];
  /** Tokens of unfinished batches of a model, other than `exceptId`. */
  queuedTokens(model: string, exceptId: string): number;
  close(): void;
}

interface BatchRow {
  doc: string;
  internals: string;
  deleted: number;
}

interface FileRow {
  doc: string;
  dialect: FileDialect;
  meta: string | null;
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
    insertFile: db.prepare('INSERT INTO files (id, purpose, doc, dialect, meta) VALUES (?, ?, ?, ?, ?)'),
    getFile: db.prepare<[string], { doc: string }>(
      "SELECT doc FROM files WHERE id = ? AND deleted = 0 AND dialect = 'openai'",
    ),
    getFileRecord: db.prepare<[string], FileRow>(
      'SELECT doc, dialect, meta FROM files WHERE id = ? AND deleted = 0',
    ),
    fileExists: db.prepare<[string], { id: string }>('SELECT id FROM files WHERE id = ?'),
    deleteFile: db.prepare('UPDATE files SET deleted = 1, sweep = 1 WHERE id = ? AND deleted = 0'),
    toSweep: db.prepare<[], { id: string }>(
      `SELECT f.id FROM files f WHERE f.sweep = 1 AND NOT EXISTS (
         SELECT 1 FROM batches b WHERE b.input_file_id = f.id AND b.status NOT IN (${terminal}))`,
    ),
    markSwept: db.prepare('UPDATE files SET sweep = 0 WHERE id = ?'),
    insertBatch: db.prepare(
      'INSERT INTO batches (id, status, model, tokens, input_file_id, doc, internals, dialect) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    getBatch: db.prepare<[string], BatchRow>('SELECT doc, internals, deleted FROM batches WHERE id = ?'),
    deleteBatch: db.prepare('UPDATE batches SET deleted = 1 WHERE id = ? AND deleted = 0'),
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
    deleted: row.deleted === 1,
  });
  const insertFile = (file: FileObject, dialect: FileDialect = 'openai', meta?: unknown) => {
    stmt.insertFile.run(
      file.id,
      file.purpose,
      JSON.stringify(file),
      dialect,
      meta === undefined ? null : JSON.stringify(meta),
    );
  };
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
    (id: string, files: NewFile[], change: (stored: StoredBatch) => void) => {
      for (const { file, dialect, meta } of files) {
        if (!stmt.fileExists.get(file.id)) insertFile(file, dialect, meta);
      }
      const stored = load(id);
      change(stored);
      write(stored);
      return stored;
    },
  );

  return {
    insertFile,
    getFile(id) {
      const row = stmt.getFile.get(id);
      return row ? (JSON.parse(row.doc) as FileObject) : undefined;
    },
    getFileRecord(id) {
      const row = stmt.getFileRecord.get(id);
      if (!row) return undefined;
      return {
        file: JSON.parse(row.doc) as FileObject,
        dialect: row.dialect,
        meta: row.meta === null ? undefined : (JSON.parse(row.meta) as unknown),
      };
    },
    listFiles({ dialect = 'openai', purpose, after, limit, order }) {
      const cmp = order === 'asc' ? '>' : '<';
      const where = ['deleted = 0', 'dialect = ?'];
      const params: Array<string | number> = [dialect];
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
        internals.dialect ?? 'openai',
      );
    },
    getBatch(id) {
      const row = stmt.getBatch.get(id);
      return row ? decode(row) : undefined;
    },
    listBatches({ dialect = 'openai', after, before, limit }) {
      const where = ['dialect = ?', 'deleted = 0'];
      const params: Array<string | number> = [dialect];
      if (after !== undefined) {
        where.push('seq < (SELECT seq FROM batches WHERE id = ?)');
        params.push(after);
      }
      if (before !== undefined) {
        where.push('seq > (SELECT seq FROM batches WHERE id = ?)');
        params.push(before);
      }
      params.push(limit + 1);
      // Before a cursor, the page is the batches closest to it: read upwards, then show newest first.
      const rows = db
        .prepare<Array<string | number>, BatchRow>(
          `SELECT doc, internals, deleted FROM batches WHERE ${where.join(' AND ')} ORDER BY seq ${before === undefined ? 'DESC' : 'ASC'} LIMIT ?`,
        )
        .all(...params);
      const page = rows.slice(0, limit).map(decode);
      return { data: before === undefined ? page : page.reverse(), hasMore: rows.length > limit };
    },
    deleteBatch(id) {
      return stmt.deleteBatch.run(id).changes > 0;
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

/**
 * Brings the schema to {@link SCHEMA_VERSION}, one step at a time, so a data dir of an older server
 * carries on: version 2 adds which API each file and batch belongs to, a file's API-specific fields,
 * and deleted batches.
 */
function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version === SCHEMA_VERSION) return;
  if (version > SCHEMA_VERSION) {
    throw new Error(`unknown server state schema version ${version} (expected ${SCHEMA_VERSION})`);
  }
  db.transaction(() => {
    if (version < 1) createVersion1(db);
    if (version < 2) {
      db.exec(`
        ALTER TABLE files ADD COLUMN dialect TEXT NOT NULL DEFAULT 'openai';
        ALTER TABLE files ADD COLUMN meta TEXT;
        ALTER TABLE batches ADD COLUMN dialect TEXT NOT NULL DEFAULT 'openai';
        ALTER TABLE batches ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX files_dialect ON files (dialect, seq);
        CREATE INDEX batches_dialect ON batches (dialect, seq);
      `);
    }
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}

function createVersion1(db: Database.Database): void {
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
  `);
}

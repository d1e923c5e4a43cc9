/**
 * The ledger's schema, as an ordered list of migrations. `PRAGMA user_version` holds how many have
 * run; a ledger from a newer batchpipe (a higher version) is refused rather than misread.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;

  -- One row per request file written by prepare (and, later, by retries).
  CREATE TABLE files (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    path       TEXT NOT NULL,
    model      TEXT,
    endpoint   TEXT NOT NULL,
    attempt    INTEGER NOT NULL DEFAULT 1,
    first_seq  INTEGER NOT NULL,
    end_seq    INTEGER,            -- first seq after this file's records (rejects included)
    lines      INTEGER NOT NULL DEFAULT 0,
    bytes      INTEGER NOT NULL DEFAULT 0,
    tokens     INTEGER NOT NULL DEFAULT 0,
    sha256     TEXT,
    complete   INTEGER NOT NULL DEFAULT 0
  ) STRICT;

  -- One row per input record that became a request.
  CREATE TABLE requests (
    seq        INTEGER PRIMARY KEY,
    line       INTEGER NOT NULL,
    custom_id  TEXT NOT NULL UNIQUE,
    record     BLOB NOT NULL,      -- the source record's text exactly as it came (CSV row, JSONL line)
    state      TEXT NOT NULL DEFAULT 'staged',
    attempt    INTEGER NOT NULL DEFAULT 1,
    file_id    INTEGER NOT NULL
  ) STRICT;
  -- No index on file_id: prepare inserts in file order, and an index would cost every insert.

  -- Input records that never became requests, with why.
  CREATE TABLE rejects (
    seq        INTEGER PRIMARY KEY,
    line       INTEGER NOT NULL,
    code       TEXT NOT NULL,
    message    TEXT NOT NULL,
    field      TEXT,
    record     TEXT NOT NULL
  ) STRICT;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

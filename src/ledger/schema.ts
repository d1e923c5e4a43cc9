import type Database from 'better-sqlite3';
import type { LedgerPaths } from './paths.js';

/** A migration SQL alone cannot do; it runs inside the same transaction as the SQL ones. */
export type MigrationStep = (db: Database.Database, context: { paths: LedgerPaths }) => void;

/**
 * The ledger's schema, as an ordered list of migrations. `PRAGMA user_version` holds how many have
 * run; a ledger from a newer batchpipe (a higher version) is refused rather than misread.
 */
export const MIGRATIONS: readonly (string | MigrationStep)[] = [
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
    complete   INTEGER NOT NULL DEFAULT 0,
    -- submit: the intent is recorded before the upload, the remote id after it.
    upload_started_at INTEGER,
    remote_file_id    TEXT
  ) STRICT;

  -- One row per batch attempt of a file: intent first (remote_id NULL), then the remote batch.
  CREATE TABLE batches (
    id              INTEGER PRIMARY KEY,
    file_id         INTEGER NOT NULL,
    create_started_at INTEGER NOT NULL,
    remote_id       TEXT UNIQUE,
    status          TEXT,             -- the API's status, as last seen
    request_counts  TEXT,             -- JSON {total, completed, failed}
    output_file_id  TEXT,
    error_file_id   TEXT,
    errors          TEXT,             -- JSON of the batch's errors.data
    usage           TEXT,             -- JSON of the batch's usage
    tokens          INTEGER NOT NULL, -- estimated tokens this batch puts in the queue
    settled         INTEGER NOT NULL DEFAULT 0, -- terminal and both result files applied
    updated_at      INTEGER
  ) STRICT;

  -- One row per input record that became a request.
  CREATE TABLE requests (
    seq        INTEGER PRIMARY KEY,
    line       INTEGER NOT NULL,
    custom_id  TEXT NOT NULL UNIQUE,
    record     BLOB NOT NULL,      -- the source record's text exactly as it came (CSV row, JSONL line)
    state      TEXT NOT NULL DEFAULT 'staged',
    attempt    INTEGER NOT NULL DEFAULT 1,
    file_id    INTEGER,            -- NULL: staged for a retry, not yet in a file
    batch_id   INTEGER,            -- batches.id of the attempt that holds it
    -- The outcome (filled by collect/ingest): what results need, not raw response bodies.
    status_code   INTEGER,
    result        TEXT,            -- the extracted result as JSON text
    error_code    TEXT,
    error_message TEXT,
    input_tokens  INTEGER,
    output_tokens INTEGER,
    result_seq    INTEGER          -- order in which outcomes were recorded (completion order)
  ) STRICT;
  -- No index on file_id: prepare inserts in file order, and an index would cost every insert.
  -- No index on result_seq either: outcomes are applied in seq order, so an index would take random
  -- inserts (measured: +2 s per 1,000,000 outcomes). Completion order sorts a snapshot at read time,
  -- and the next result_seq comes from meta (Ledger.nextResultSeq).

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
  // 2: source records move to a table of their own. Collect and ingest rewrite every request row
  // they settle; without the record (most of a row's bytes) those rows are a quarter of the size, so
  // applying 1,000,000 outcomes writes ~100 MB of pages instead of ~500 MB (2.6 s → 1.4 s measured).
  `
  CREATE TABLE records (
    seq    INTEGER PRIMARY KEY,    -- requests.seq
    record BLOB NOT NULL           -- the source record's text exactly as it came (CSV row, JSONL line)
  ) STRICT;
  INSERT INTO records (seq, record) SELECT seq, record FROM requests;
  ALTER TABLE requests DROP COLUMN record;
  `,
  // 3: settling by the provider's clock, and token-limit refusals told apart. Times marked "server"
  // are unix seconds by the API's own clock (its `date` header and objects), never the client's.
  `
  ALTER TABLE files ADD COLUMN upload_intent TEXT;          -- tag in the uploaded file's name
  ALTER TABLE files ADD COLUMN upload_server_after INTEGER; -- server time at the upload intent (lower bound)
  ALTER TABLE batches ADD COLUMN intent_server_after INTEGER; -- server time at the create intent (lower bound)
  ALTER TABLE batches ADD COLUMN created_at INTEGER;        -- the batch's created_at (server)
  ALTER TABLE batches ADD COLUMN ended_at INTEGER;          -- when it reached a terminal status (server)
  -- Refused for the enqueued-token limit: 'alone' (nothing else of the run queued then), 'queued'
  -- (others were), 'reported' (an alone refusal a BP_TOKEN_LIMIT stop has already counted).
  ALTER TABLE batches ADD COLUMN token_refusal TEXT;
  ALTER TABLE batches ADD COLUMN settled_before INTEGER;    -- 'queued': queue-holding batches settled by then
  `,
  // 4: request file paths become relative to the ledger's directory (they were relative to where
  // the command ran), so a run folder works from any directory and after a move. An older batchpipe
  // would misread them: the version bump makes it refuse the ledger instead.
  (db, { paths }) => {
    const rows = db.prepare<[], { id: number; path: string }>('SELECT id, path FROM files').all();
    const update = db.prepare<[string, number]>('UPDATE files SET path = ? WHERE id = ?');
    for (const row of rows) update.run(paths.fromLegacy(row.path), row.id);
  },
  // 5: the scheduler finds a batch's requests by batch_id. Partial, so the requests prepare inserts
  // (no batch yet) cost it nothing; a ledger whose scheduler already built the full index keeps it.
  // Batches become provider-neutral: `status` is the ledger's vocabulary (OpenAI's statuses, which
  // older rows hold), and each row says which provider holds it (NULL in older rows: openai) and keeps
  // the provider's own status word and object, for display.
  `
  CREATE INDEX IF NOT EXISTS requests_batch ON requests (batch_id) WHERE batch_id IS NOT NULL;
  ALTER TABLE batches ADD COLUMN provider TEXT;
  ALTER TABLE batches ADD COLUMN raw_status TEXT;
  ALTER TABLE batches ADD COLUMN raw TEXT;
  `,
  // 6: when the ledger first saw each batch in its current status (unix s, this machine's clock), so
  // `status` can tell a batch that sits in `finalizing` for hours, whatever the provider's fields.
  `
  ALTER TABLE batches ADD COLUMN status_since INTEGER;
  `,
  // 7: the rest of each response's usage (src/types.ts Usage), so its cost can be priced: tokens read
  // from and written to the prompt cache (part of input_tokens) and reasoning tokens (part of
  // output_tokens). Requests applied before are read as having none.
  `
  ALTER TABLE requests ADD COLUMN cached_input_tokens INTEGER;
  ALTER TABLE requests ADD COLUMN cache_write_tokens INTEGER;
  ALTER TABLE requests ADD COLUMN reasoning_tokens INTEGER;
  `,
  // 8: the direct path. A request sent as a synchronous call has
  // its send intent counted before the call, in a committed transaction, in a batch row of its path
  // (provider 'direct' or 'flex'). A request a crash left submitted there is sent again on resume
  // (at-least-once), and the resend is counted; one that succeeded is final and never sent again.
  `
  ALTER TABLE requests ADD COLUMN direct_sent INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE requests ADD COLUMN direct_resent INTEGER NOT NULL DEFAULT 0;
  -- A batch cancelled to hedge: the path its unanswered requests go to ('direct' or 'flex'), and
  -- why. Set before the cancel is asked, so a crash in between still hedges instead of cancelling.
  ALTER TABLE batches ADD COLUMN hedged_to TEXT;
  ALTER TABLE batches ADD COLUMN hedge_reason TEXT;
  `,
  // 9: each request file's real token count (src/cost/file-tokens.ts, JSON), made just before its
  // batch is created; NULL until then, while files.tokens holds prepare's characters/4 estimate (the
  // count replaces it).
  `
  ALTER TABLE files ADD COLUMN token_count TEXT;
  `,
];

/**
 * The scheduler finds a file's requests by file_id; prepare inserts every request with one, so an
 * index kept from the start would cost each insert (about 4% of prepare, measured on 1,000,000
 * rows). The scheduler builds it once, on its first use of the ledger (BatchTables), a no-op after.
 */
export const SCHEDULER_INDEXES = 'CREATE INDEX IF NOT EXISTS requests_file ON requests (file_id);';

export const SCHEMA_VERSION = MIGRATIONS.length;

import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Ledger } from '../ledger/ledger.js';
import { createChunkEncoder, type EncodeContext } from '../prepare/encode-chunk.js';
import type { RunIdentity } from '../prepare/run-identity.js';
import { BatchWriter } from '../sink/batch-writer.js';
import { validateLine } from '../transforms/request-probe.js';

const PAGE = 2000;
/** Meta key: the most requests a file written from now on may hold (`run --max-lines N` on a prepared ledger). */
const MAX_LINES_KEY = 'restage_max_lines';

/**
 * Writes retry files: requests that `collect` put back to `staged` with no file (their attempt
 * raised for a retry, or unspent when their batch failed validation on other lines) are encoded
 * again from their stored source record with the run's own template, and rolled into new files
 * named for their attempt. Their custom_ids stay as they were. These files are numbered from
 * attempt 2 even for requests still on their first attempt, so they are never taken for files of
 * an interrupted `prepare` (attempt 1), which a resumed prepare would redo.
 */
export function restageRetries(ledger: Ledger): { files: number; requests: number } {
  const identity = JSON.parse(ledger.getMeta('identity') ?? 'null') as RunIdentity | null;
  if (!identity) return { files: 0, requests: 0 };
  dropIncompleteRetryFiles(ledger);
  splitPartlyFinishedFiles(ledger);
  const attempts = ledger.db
    .prepare<[], number>(
      "SELECT DISTINCT attempt FROM requests WHERE state = 'staged' AND file_id IS NULL ORDER BY attempt",
    )
    .pluck()
    .all();
  if (attempts.length === 0) return { files: 0, requests: 0 };

  const columns = JSON.parse(ledger.getMeta('columns') ?? '[]') as string[];
  const { format, endpoint, model, prompt, system, body, idColumn, id } = identity;
  const template = {
    endpoint: endpoint as EncodeContext['template']['endpoint'],
    model: model ?? undefined,
    prompt: prompt ?? undefined,
    system: system ?? undefined,
    body: (body ?? undefined) as Record<string, unknown> | undefined,
    idColumn: idColumn ?? undefined,
    id: id ?? undefined,
  };
  const encode = createChunkEncoder(
    { format, columns, template, source: 'ledger', validateEach: true },
    validateLine,
  );
  const outDir = dirname(ledger.files()[0]?.path ?? join(dirname(ledger.path), 'out', 'x'));
  const page = ledger.db.prepare<[number], { seq: number; custom_id: string; record: Buffer }>(
    `SELECT seq, custom_id, record FROM requests JOIN records USING (seq)
     WHERE state = 'staged' AND file_id IS NULL AND attempt = ?
     ORDER BY seq LIMIT ${PAGE}`,
  );
  const fail = ledger.db.prepare(
    "UPDATE requests SET state = 'failed', error_code = ?, error_message = ? WHERE seq = ?",
  );
  let files = 0;
  let requests = 0;
  const countFiles = ledger.db
    .prepare<[number], number>('SELECT count(*) FROM files WHERE attempt = ?')
    .pluck();
  const maxLines = Math.min(
    identity.maxLines,
    Number(ledger.getMeta(MAX_LINES_KEY) ?? Number.POSITIVE_INFINITY),
  );
  for (const attempt of attempts) {
    const fileAttempt = Math.max(2, attempt);
    const existing = countFiles.get(fileAttempt)!;
    const writer = new BatchWriter({
      ledger,
      outDir,
      runId: ledger.getMeta('run_id') ?? 'run',
      endpoint,
      attempt: fileAttempt,
      maxLines,
      maxBytes: identity.maxBytes,
      source: 'ledger',
      restage: true,
      firstFileNumber: existing + 1,
      // A stored record that no longer encodes cannot be retried: it fails with the reason.
      onReject: (r) => void fail.run(r.code, r.message, r.seq),
    });
    for (let rows = page.all(attempt); rows.length > 0; rows = page.all(attempt)) {
      const bytes = Buffer.from(rows.map((r) => r.record.toString()).join('\n'));
      const chunk = encode(bytes, 1);
      if (chunk.count !== rows.length) {
        throw new Error(`internal error: ${rows.length} stored records parsed back as ${chunk.count}`);
      }
      writer.writeChunk(chunk, { seqs: rows.map((r) => r.seq), customIds: rows.map((r) => r.custom_id) });
      requests += writer.staged;
      writer.staged = 0;
    }
    writer.finish();
    files += countFiles.get(fileAttempt)! - existing;
  }
  return { files, requests };
}

/**
 * `run --max-lines N` on a prepared ledger: every file written from now on holds at most N requests,
 * and the staged requests of files not in a batch that hold more go back to no file, to be written
 * again in files of at most N (their attempts unspent). The way on for a file the API's
 * enqueued-token limit refuses even alone. Returns how many requests were moved.
 */
export function lowerMaxLines(ledger: Ledger, maxLines: number): number {
  const before = Number(ledger.getMeta(MAX_LINES_KEY) ?? Number.POSITIVE_INFINITY);
  return ledger.transaction(() => {
    if (maxLines < before) ledger.setMeta(MAX_LINES_KEY, String(maxLines));
    return ledger.db
      .prepare(
        `UPDATE requests SET file_id = NULL WHERE state = 'staged' AND file_id IN (
           SELECT f.id FROM files f WHERE f.complete = 1 AND f.lines > ?
             AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.file_id = f.id AND b.settled = 0))`,
      )
      .run(maxLines).changes;
  });
}

/**
 * A file not yet in a batch whose requests are partly final already (their results were ingested
 * from elsewhere) must not be sent whole: that would pay for those requests twice. Its staged
 * requests are written into a new file instead, at the same attempt.
 */
function splitPartlyFinishedFiles(ledger: Ledger): void {
  ledger.db
    .prepare(
      `UPDATE requests SET file_id = NULL WHERE state = 'staged' AND file_id IN (
         SELECT f.id FROM files f
         WHERE NOT EXISTS (SELECT 1 FROM batches b WHERE b.file_id = f.id AND b.settled = 0)
           AND EXISTS (SELECT 1 FROM requests r WHERE r.file_id = f.id AND r.state <> 'staged'))`,
    )
    .run();
}

/** A crash while writing a retry file leaves it incomplete: its requests go back to no file. */
function dropIncompleteRetryFiles(ledger: Ledger): void {
  for (const file of ledger.files({ complete: false }).filter((f) => f.attempt > 1)) {
    ledger.transaction(() => {
      ledger.db.prepare('UPDATE requests SET file_id = NULL WHERE file_id = ?').run(file.id);
      ledger.deleteFile(file.id);
    });
    rmSync(file.path, { force: true });
    rmSync(join(dirname(file.path), `.${file.name}.partial`), { force: true });
  }
}

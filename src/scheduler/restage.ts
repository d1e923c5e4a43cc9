import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { dialectOf } from '../dialects/index.js';
import type { EventListener } from '../events.js';
import { BatchTables } from '../ledger/batches.js';
import {
  fileMaxLinesOf,
  inputColumnsOf,
  lowerFileMaxLines,
  runIdOf,
  storedRunIdentity,
} from '../ledger/identity.js';
import type { Ledger } from '../ledger/ledger.js';
import { RequestStates } from '../ledger/request-states.js';
import { createChunkEncoder, type EncodeContext } from '../prepare/encode-chunk.js';
import { BatchWriter } from '../sink/batch-writer.js';
import { validateLine } from '../transforms/request-probe.js';

const PAGE = 2000;

/**
 * Writes retry files: requests that `collect` put back to `staged` with no file (their attempt
 * raised for a retry, or unspent when their batch failed validation on other lines) are encoded
 * again from their stored source record with the run's own template, and rolled into new files
 * named for their attempt. Their custom_ids stay as they were. These files are numbered from
 * attempt 2 even for requests still on their first attempt, so they are never taken for files of
 * an interrupted `prepare` (attempt 1), which a resumed prepare would redo.
 */
export function restageRetries(
  ledger: Ledger,
  onEvent?: EventListener | undefined,
): { files: number; requests: number } {
  const identity = storedRunIdentity(ledger);
  if (!identity) return { files: 0, requests: 0 };
  const states = RequestStates.of(ledger);
  dropIncompleteRetryFiles(ledger, states);
  states.releasePartlyFinished();
  const attempts = states.unplacedAttempts();
  if (attempts.length === 0) return { files: 0, requests: 0 };

  const columns = inputColumnsOf(ledger);
  const { format, provider, endpoint, model, prompt, system, body, idColumn, id } = identity;
  const template = {
    provider,
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
  const tables = BatchTables.of(ledger);
  let files = 0;
  let requests = 0;
  const maxLines = fileMaxLinesOf(ledger, identity);
  for (const attempt of attempts) {
    const fileAttempt = Math.max(2, attempt);
    const existing = tables.fileCount(fileAttempt);
    const writer = new BatchWriter({
      ledger,
      outDir,
      runId: runIdOf(ledger),
      endpoint,
      attempt: fileAttempt,
      maxLines,
      maxBytes: identity.maxBytes,
      source: 'ledger',
      restage: true,
      wireId: dialectOf(provider).wireId,
      firstFileNumber: existing + 1,
      // A stored record that no longer encodes cannot be retried: it fails with the reason.
      onReject: (r) => states.failUnencodable(r.seq, r.code, r.message),
      onFileWritten: onEvent,
    });
    const page = () => states.unplacedPage(attempt, PAGE);
    for (let rows = page(); rows.length > 0; rows = page()) {
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
    files += tables.fileCount(fileAttempt) - existing;
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
  const states = RequestStates.of(ledger);
  return ledger.transaction(() => {
    lowerFileMaxLines(ledger, maxLines);
    return states.releaseLargeFiles(maxLines);
  });
}

/** A crash while writing a retry file leaves it incomplete: its requests go back to no file. */
function dropIncompleteRetryFiles(ledger: Ledger, states: RequestStates): void {
  for (const file of ledger.files({ complete: false }).filter((f) => f.attempt > 1)) {
    ledger.transaction(() => {
      states.releaseIncompleteFile(file.id);
      ledger.deleteFile(file.id);
    });
    rmSync(file.path, { force: true });
    rmSync(join(dirname(file.path), `.${file.name}.partial`), { force: true });
  }
}

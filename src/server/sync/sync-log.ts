/**
 * The synchronous endpoints' request log: one JSON line per call answered, appended to
 * `sync-requests.jsonl` in the data directory as it is answered, so a test or an operator can count
 * calls, 429s and what was sent after what (`none sent after it succeeded`). Owns that file only.
 */
import { appendFileSync } from 'node:fs';
import path from 'node:path';

/** One answered call. `client_id` is the `x-batchpipe-custom-id` header batchpipe sends, if any. */
export interface SyncLogLine {
  /** Milliseconds since the epoch (real time), when the answer was sent. */
  at: number;
  path: string;
  status: number;
  model: string;
  client_id: string | null;
  service_tier: string | null;
}

export const SYNC_LOG_NAME = 'sync-requests.jsonl';

export interface SyncLog {
  record(line: SyncLogLine): void;
}

/** Appends each line at once (a synchronous write: a killed server keeps every answered call). */
export function openSyncLog(dataDir: string): SyncLog {
  const file = path.join(dataDir, SYNC_LOG_NAME);
  return {
    record(line) {
      appendFileSync(file, `${JSON.stringify(line)}\n`);
    },
  };
}

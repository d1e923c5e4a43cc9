import { existsSync } from 'node:fs';
import { rename, rm, stat, unlink } from 'node:fs/promises';
import type { DataDir } from '../store/data-dir.js';
import type { NewFile, ServerStore, StoredBatch } from '../store/server-store.js';
import type { FileObject, FinalStatus } from '../types.js';
import type { DialectLifecycle } from './dialect-lifecycle.js';
import type { ResultJournal } from './result-journal.js';

const DEFAULT_OUTPUT_TTL_SECONDS = 30 * 24 * 3600;

/**
 * Ends a batch: closes its journal, turns the non-empty journal files into `batch_output` files under the
 * ids reserved for them, lets the batch's dialect write what its API shows beyond them, and records the
 * final status, timestamps, counts and usage in one transaction. Safe to run again after a crash at any
 * point: renamed files are found at their final path.
 */
export async function finalizeBatch(
  store: ServerStore,
  dataDir: DataDir,
  batchId: string,
  journal: ResultJournal,
  status: FinalStatus,
  /** Unix seconds by the server's clock. */
  now: number,
  lifecycle: DialectLifecycle,
): Promise<StoredBatch> {
  await journal.close();
  const stored = store.getBatch(batchId);
  if (!stored) throw new Error(`no batch ${batchId}`);
  const { internals } = stored;
  const ttl = internals.outputExpiresAfter ?? DEFAULT_OUTPUT_TTL_SECONDS;
  const files: NewFile[] = [];
  // Only the OpenAI Files API shows a batch's output and error files; the other APIs show results.
  const dialect = (internals.dialect ?? 'openai') === 'openai' ? 'openai' : 'internal';
  const place = async (from: string, fileId: string, filename: string): Promise<string | null> => {
    const target = dataDir.filePath(fileId);
    if (from !== target && existsSync(from)) {
      if ((await stat(from)).size === 0) await unlink(from);
      else await rename(from, target);
    }
    if (!existsSync(target)) return null;
    const bytes = (await stat(target)).size;
    const file: FileObject = {
      id: fileId,
      object: 'file',
      bytes,
      created_at: now,
      expires_at: now + ttl,
      filename,
      purpose: 'batch_output',
      status: 'processed',
      status_details: null,
    };
    files.push({ file, dialect });
    return fileId;
  };
  const outputFileId = await place(journal.outputPath, internals.outputFileId, `${batchId}_output.jsonl`);
  const errorFileId = await place(journal.errorPath, internals.errorFileId, `${batchId}_error.jsonl`);
  if (lifecycle.finish) {
    const journalFiles = {
      outputPath: outputFileId === null ? null : dataDir.filePath(outputFileId),
      errorPath: errorFileId === null ? null : dataDir.filePath(errorFileId),
    };
    files.push(...(await lifecycle.finish(stored, journalFiles, status, now)));
  }

  const { tally } = journal;
  const finished = store.finishBatch(batchId, files, ({ batch, internals: after }) => {
    batch.status = status;
    batch.output_file_id = outputFileId;
    batch.error_file_id = errorFileId;
    batch.request_counts = {
      total: batch.request_counts.total,
      completed: tally.completed,
      failed: tally.failed,
    };
    batch.usage = tally.usage;
    after.unrun = tally.unrun;
    if (status === 'completed') batch.completed_at = now;
    else if (status === 'expired') batch.expired_at = now;
    else batch.cancelled_at = now;
  });
  await rm(dataDir.workDir(batchId), { recursive: true, force: true });
  return finished;
}

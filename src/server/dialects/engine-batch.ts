/**
 * What the Anthropic and Gemini APIs share when they hand a batch to the engine: the engine's batch
 * object for a new batch, and the engine-form input written for it, kept as a file no API shows.
 */
import { rename, stat } from 'node:fs/promises';
import type { ApiContext } from '../api/api-context.js';
import { type BatchObject, emptyUsage } from '../types.js';
import { newBatchId } from '../util/ids.js';

/** A new engine batch (`validating`) over an input file that is already written. */
export function newEngineBatch(
  endpoint: string,
  inputFileId: string,
  createdMs: number,
  windowMs: number,
): BatchObject {
  const createdAt = Math.floor(createdMs / 1000);
  return {
    id: newBatchId(),
    object: 'batch',
    endpoint,
    model: null,
    errors: null,
    input_file_id: inputFileId,
    completion_window: '24h',
    status: 'validating',
    output_file_id: null,
    error_file_id: null,
    created_at: createdAt,
    in_progress_at: null,
    expires_at: createdAt + Math.ceil(windowMs / 1000),
    finalizing_at: null,
    completed_at: null,
    failed_at: null,
    expired_at: null,
    cancelling_at: null,
    cancelled_at: null,
    request_counts: { total: 0, completed: 0, failed: 0 },
    usage: emptyUsage(),
    metadata: null,
  };
}

/** What keeping a file needs of the server. */
export type FileKeeper = Pick<ApiContext, 'store' | 'dataDir' | 'clock'>;

/** Moves a written temporary file to `fileId` and records it as an `internal` file (shown by no API). */
export async function keepInternalFile(
  ctx: FileKeeper,
  tmpPath: string,
  fileId: string,
  filename: string,
): Promise<void> {
  await rename(tmpPath, ctx.dataDir.filePath(fileId));
  await recordInternalFile(ctx, fileId, filename);
}

/** Records the file already at `fileId`'s path as an `internal` file. */
export async function recordInternalFile(ctx: FileKeeper, fileId: string, filename: string): Promise<void> {
  const target = ctx.dataDir.filePath(fileId);
  ctx.store.insertFile(
    {
      id: fileId,
      object: 'file',
      bytes: (await stat(target)).size,
      created_at: ctx.clock.nowSeconds(),
      expires_at: null,
      filename,
      purpose: 'batch',
      status: 'processed',
      status_details: null,
    },
    'internal',
  );
}

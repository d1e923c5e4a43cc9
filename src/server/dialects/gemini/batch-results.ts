/**
 * A Gemini batch's results, in the order of its requests as Gemini writes them: one line a request
 * that ran, `{ key, response }` or `{ key, error }` (`metadata` instead of `key` for inline requests),
 * written when the batch ends from the engine's output and error files (which are in the order the
 * requests finished). Requests a stop left unrun (expired, cancelled) have no line. Owns the results
 * file: written under a temporary name and renamed, so a crash leaves it whole or absent.
 */
import { once } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import type { JournalFiles } from '../../engine/dialect-lifecycle.js';
import { isBlank, readLines } from '../../engine/jsonl-lines.js';
import { googleStatus, rpcCode } from '../../http/dialect-errors.js';
import type { NewFile, StoredBatch } from '../../store/server-store.js';
import { CANCELLED_CODE, EXPIRED_CODE, type GeminiBatchInternals, type OutputLine } from '../../types.js';
import { geminiBatchName } from '../../util/ids.js';
import type { FileKeeper } from '../engine-batch.js';
import { geminiFileRecord } from './files-api.js';

/** One line of a results file. */
export interface GeminiResultLine {
  key?: string;
  metadata?: Record<string, unknown>;
  response?: unknown;
  error?: { code: number; message: string };
}

/** Where a journal line is: which file, from which byte, how long. */
interface LinePlace {
  path: string;
  start: number;
  length: number;
}

/**
 * Writes the results file of an ending batch (the engine's `finish`), unless a run before a crash
 * already did, and returns its record: a Gemini file for a file-sourced batch (its `responsesFile`), an
 * internal one for inline requests (shown as `inlinedResponses`).
 */
export async function writeBatchResults(
  ctx: FileKeeper,
  stored: StoredBatch,
  journal: JournalFiles,
  now: number,
): Promise<NewFile[]> {
  const gemini = stored.internals.gemini as GeminiBatchInternals;
  const target = ctx.dataDir.filePath(gemini.resultsFileId);
  if (!existsSync(target)) {
    const tmp = `${target}.part`;
    try {
      await writeInInputOrder(ctx.dataDir.filePath(stored.batch.input_file_id), journal, tmp);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await rename(tmp, target);
  }
  const record = await geminiFileRecord(
    target,
    gemini.resultsFileId,
    {
      displayName: `${geminiBatchName(stored.batch.id).replace('/', '-')}-results`,
      mimeType: 'application/jsonl',
      source: 'GENERATED',
    },
    now,
  );
  return [{ ...record, dialect: gemini.sourceFileId === null ? 'internal' : 'gemini' }];
}

async function writeInInputOrder(inputPath: string, journal: JournalFiles, tmp: string): Promise<void> {
  const places = new Map<string, LinePlace>();
  for (const path of [journal.outputPath, journal.errorPath]) if (path) await indexLines(path, places);
  const handles = new Map<string, Awaited<ReturnType<typeof open>>>();
  const out = createWriteStream(tmp);
  try {
    // A batch cancelled before its file was converted has no input: its results are empty.
    if (existsSync(inputPath)) {
      for await (const { text } of readLines(inputPath)) {
        if (isBlank(text)) continue;
        const request = JSON.parse(text) as {
          custom_id: string;
          key?: string;
          metadata?: Record<string, unknown>;
        };
        const place = places.get(request.custom_id);
        if (!place) continue;
        let handle = handles.get(place.path);
        if (!handle) {
          handle = await open(place.path, 'r');
          handles.set(place.path, handle);
        }
        const bytes = Buffer.alloc(place.length);
        await handle.read(bytes, 0, place.length, place.start);
        const result = resultLine(JSON.parse(bytes.toString('utf8')) as OutputLine, request);
        if (result && !out.write(`${JSON.stringify(result)}\n`)) await once(out, 'drain');
      }
    }
    out.end();
    await once(out, 'close');
  } finally {
    out.destroy();
    await Promise.all([...handles.values()].map((h) => h.close()));
  }
}

/** Adds where each line of a journal file is, by custom_id. */
async function indexLines(path: string, places: Map<string, LinePlace>): Promise<void> {
  let start = 0;
  for await (const { text, end } of readLines(path)) {
    if (!isBlank(text)) {
      const customId = (JSON.parse(text) as OutputLine).custom_id;
      places.set(customId, { path, start, length: Buffer.byteLength(text) });
    }
    start = end;
  }
}

/** A journal line as a results line, or undefined for a request that never ran. */
export function resultLine(
  line: OutputLine,
  request: { key?: string; metadata?: Record<string, unknown> },
): GeminiResultLine | undefined {
  const { response, error } = line;
  if (error?.code === EXPIRED_CODE || error?.code === CANCELLED_CODE) return undefined;
  const returned = {
    ...(request.key === undefined ? {} : { key: request.key }),
    ...(request.metadata === undefined ? {} : { metadata: request.metadata }),
  };
  if (response && response.status_code >= 200 && response.status_code < 300) {
    return { ...returned, response: response.body };
  }
  if (response) {
    const body = response.body as { error?: { status?: unknown; message?: unknown } } | null;
    const status =
      typeof body?.error?.status === 'string' ? body.error.status : googleStatus(response.status_code);
    const message =
      typeof body?.error?.message === 'string'
        ? body.error.message
        : `The request failed (${response.status_code}).`;
    return { ...returned, error: { code: rpcCode(status), message } };
  }
  return {
    ...returned,
    error: { code: rpcCode('INTERNAL'), message: error?.message ?? 'The request failed.' },
  };
}

/**
 * Parse worker: parses line-aligned chunks of an output or error file and stages their outcomes in a
 * scratch database of its own, which is joined to the requests once the file is read. Nothing but
 * the bytes and a count crosses threads (a million cloned outcome objects would cost more than the
 * parse saves), and both threads parse and stage at once.
 */
import type { ProviderName } from '../dialects/dialect.js';
import { asBuffer } from '../internal/bytes.js';
import { poolWorkerData, serveTasks } from '../internal/worker-pool.js';
import { ScratchStaging } from '../ledger/outcome-stage.js';
import type { ExpectedOutput } from './extract.js';
import { parseLineChunk, type StagedTotals } from './line-chunks.js';

/** What the worker needs to read lines as `applyResultLines` would, and where to stage them. */
export interface ParseWorkerData {
  /** The run's provider, whose dialect reads the lines. */
  provider: ProviderName;
  endpoint: string;
  expect: ExpectedOutput;
  /** The output schema as JSON Schema (a zod object cannot cross threads). */
  outputJsonSchema: unknown;
  source: string;
  /** The scratch database file (created here, deleted by the ledger's thread). */
  scratchPath: string;
}

/** A chunk of whole lines (its bytes moved, not copied) and the number of its first line. */
export interface ParseTask {
  bytes: Uint8Array;
  firstLine: number;
}

/** What a chunk staged, and its memory moved back to the owner for the next chunk's copy. */
export interface ParseReply extends StagedTotals {
  spent: ArrayBuffer;
}

const data = poolWorkerData<ParseWorkerData>();
const ctx = {
  provider: data.provider,
  endpoint: data.endpoint,
  expect: data.expect,
  // zod is loaded only for a run with an output schema (see output-validation.ts).
  outputSchema:
    data.outputJsonSchema === undefined
      ? undefined
      : (await import('./output-schema.js')).outputSchemaFromJsonSchema(data.outputJsonSchema),
};
const staging = new ScratchStaging(data.scratchPath);

serveTasks<ParseTask, ParseReply>(
  (task) => {
    const parsed = parseLineChunk(
      { bytes: asBuffer(task.bytes), firstLine: task.firstLine },
      ctx,
      data.source,
    );
    // Staged: nothing refers to the chunk's bytes any more (each outcome's text is a string of its own).
    staging.add(parsed);
    const spent = task.bytes.buffer as ArrayBuffer;
    return { lines: parsed.outcomes.length, lastLine: parsed.lastLine, failures: parsed.failures, spent };
  },
  { onClose: () => staging.close(), transfer: (reply) => [reply.spent] },
);

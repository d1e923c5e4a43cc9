/**
 * Parse worker: parses line-aligned chunks of an output or error file and stages their outcomes in a
 * scratch database of its own, which is joined to the requests once the file is read. Nothing but
 * the bytes and a count crosses threads (a million cloned outcome objects would cost more than the
 * parse saves), and both threads parse and stage at once.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { type ErrorData, errorToData } from '../internal/thread-errors.js';
import { ScratchStaging } from '../ledger/outcome-stage.js';
import type { ExpectedOutput } from './extract.js';
import { parseLineChunk } from './line-chunks.js';

/** What the worker needs to read lines as `applyResultLines` would, and where to stage them. */
export interface ParseWorkerData {
  endpoint: string;
  expect: ExpectedOutput;
  /** The output schema as JSON Schema (a zod object cannot cross threads). */
  outputJsonSchema: unknown;
  source: string;
  /** The scratch database file (created here, deleted by the ledger's thread). */
  scratchPath: string;
}

/** Messages from the worker. */
export type ParseWorkerReply =
  | { parsed: { lines: number; lastLine: number; failures: number } }
  | { closed: true }
  | { error: ErrorData };

const data = workerData as ParseWorkerData;
const ctx = {
  endpoint: data.endpoint,
  expect: data.expect,
  // zod is loaded only for a run with an output schema (see output-validation.ts).
  outputSchema:
    data.outputJsonSchema === undefined
      ? undefined
      : (await import('./output-schema.js')).outputSchemaFromJsonSchema(data.outputJsonSchema),
};
const staging = new ScratchStaging(data.scratchPath);

const reply = (message: ParseWorkerReply) => parentPort!.postMessage(message);

parentPort!.on('message', (msg: { bytes: Uint8Array; firstLine: number } | { end: true }) => {
  try {
    if ('end' in msg) {
      staging.close();
      reply({ closed: true });
      return;
    }
    const bytes = Buffer.from(msg.bytes.buffer, msg.bytes.byteOffset, msg.bytes.byteLength);
    const parsed = parseLineChunk({ bytes, firstLine: msg.firstLine }, ctx, data.source);
    staging.add(parsed);
    reply({
      parsed: { lines: parsed.outcomes.length, lastLine: parsed.lastLine, failures: parsed.failures },
    });
  } catch (err) {
    reply({ error: errorToData(err) });
  }
});

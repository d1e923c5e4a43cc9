/**
 * The steps every prepare of a ledger takes around its records, whether `prepare()` reads the input
 * or the stream stages bring it to `batchSink`: check the limits, bind the ledger to the run's
 * identity and resume what an earlier run left, check the CSV header against the ledger's, and mark
 * the input read once every record is accounted for. Touches the ledger's meta and what resume clears.
 */
import type { BatchLimits } from '../dialects/dialect.js';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { markPrepared, recordInputColumns } from '../ledger/identity.js';
import type { Ledger } from '../ledger/ledger.js';
import { compileProbeBuilder, type RequestTemplateOptions } from '../transforms/request-builder.js';
import type { RunIdentity } from '../types.js';
import {
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_EMBEDDING_INPUTS,
  DEFAULT_MAX_LINES,
} from '../validate/file-rules.js';
import { embeddingInputCount } from '../validate/request-schema.js';
import { type ResumePoint, settleInterruptedRun } from './resume.js';
import { claimLedger } from './run-identity.js';

/** What a run's records are read as: the run identity's `format`. */
export type RecordFormat = RunIdentity['format'];

/** Refuses file limits the Batch API would not take. */
export function checkLimits(
  maxLines: number,
  maxBytes: number,
  limits: BatchLimits = { maxLines: DEFAULT_MAX_LINES, maxBytes: DEFAULT_MAX_BYTES },
): void {
  if (!Number.isInteger(maxLines) || maxLines < 1 || maxLines > limits.maxLines) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `--max-lines must be an integer from 1 to ${limits.maxLines}, got ${maxLines}`,
    );
  }
  if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > limits.maxBytes) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `--max-bytes must be an integer from 1 to ${limits.maxBytes}, got ${maxBytes}`,
    );
  }
}

/**
 * Binds the ledger to the run (refusing one made with other options) and clears what an interrupted
 * prepare left half done: the run id, and where writing starts again.
 */
export function openPreparedRun(
  ledger: Ledger,
  identity: RunIdentity,
  outDir: string,
): { runId: string; resume: ResumePoint } {
  const runId = claimLedger(ledger, identity);
  return { runId, resume: settleInterruptedRun(ledger, outDir, runId) };
}

/** A CSV run's header is recorded once; another header on a later run means other input. */
export function checkColumns(ledger: Ledger, columns: string[], source: string): void {
  const before = recordInputColumns(ledger, columns);
  if (before !== undefined) {
    throw new BatchpipeError(
      ErrorCodes.INPUT_CHANGED,
      `the CSV header differs from the run this ledger records (${JSON.stringify(before)})`,
      {
        file: source,
        line: 1,
      },
    );
  }
}

/** The options that make a run's requests, and nothing else (the identity records exactly these). */
export function templateOptions(options: RequestTemplateOptions): RequestTemplateOptions {
  const { provider, endpoint, model, prompt, system, body, idColumn, id } = options;
  return { provider, endpoint, model, prompt, system, body, idColumn, id };
}

/**
 * An embeddings batch may carry at most 50,000 inputs in all. Placeholders only fill strings, so
 * every request of a run carries as many inputs as its template: a file holds at most
 * 50,000 ÷ that many requests.
 */
export function linesPerFile(template: RequestTemplateOptions, maxLines: number): number {
  const inputs = embeddingInputCount(compileProbeBuilder(template)('x'));
  return inputs === 0 ? maxLines : Math.min(maxLines, Math.floor(DEFAULT_MAX_EMBEDDING_INPUTS / inputs));
}

/**
 * Marks the input read to its end, once the ledger accounts for every record (counts in equal counts
 * out, checked against what the ledger actually holds). An input without records is an error.
 */
export function finishPreparedRun(
  ledger: Ledger,
  totals: { read: number; staged: number; rejected: number },
  format: RecordFormat,
  source: string,
): void {
  if (totals.read === 0) {
    const only =
      format === 'csv' ? 'a header and no records' : format === 'json' ? 'an empty array' : 'no records';
    throw new BatchpipeError(ErrorCodes.NO_RECORDS, `the input holds ${only}: there is nothing to prepare`, {
      file: source,
    });
  }
  const held = ledger.requestAndRejectCount();
  markPrepared(ledger, totals.read);
  if (held !== totals.read || totals.staged + totals.rejected !== totals.read) {
    throw new Error(
      `internal error: read ${totals.read} records, staged ${totals.staged} + rejected ${totals.rejected}, but the ledger holds ${held}`,
    );
  }
}

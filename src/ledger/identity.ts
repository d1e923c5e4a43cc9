/**
 * The run a ledger belongs to, as its meta records it: the run identity (the options that decide its
 * requests), the run id, the CSV columns, whether prepare read its whole input, and the file size a
 * `run --max-lines` lowered to. The only module that reads or writes those meta keys, and the one
 * place their defaults live. Touches only the `meta` table, through the ledger.
 */
import type { RunIdentity } from '../types.js';
import type { Ledger } from './ledger.js';

const IDENTITY_KEY = 'identity';
const RUN_ID_KEY = 'run_id';
const CREATED_AT_KEY = 'created_at';
const COLUMNS_KEY = 'columns';
/** Set once prepare has read its whole input: the number of records. */
const PREPARED_KEY = 'prepared_records';
/** The most requests a file written from now on may hold (`run --max-lines N` on a prepared ledger). */
const MAX_LINES_KEY = 'restage_max_lines';
/** The input as the user named it to the CLI (a path, or `-` for stdin), for `status`. */
const INPUT_NAME_KEY = 'input_name';

/** The endpoint of a ledger that records none (filled from code, before it had an identity). */
export const DEFAULT_ENDPOINT = '/v1/chat/completions';
/** The run id of a ledger that records none. */
const DEFAULT_RUN_ID = 'run';
/** Identity fields added after ledgers existed without them, with the value those ledgers imply. */
const IMPLIED: Pick<RunIdentity, 'encoding' | 'jsonPath' | 'provider'> = {
  encoding: 'utf-8',
  jsonPath: null,
  provider: 'openai',
};

/** The run identity the ledger records (older ledgers' missing fields filled in), or `undefined`. */
export function storedRunIdentity(ledger: Ledger): RunIdentity | undefined {
  const stored = ledger.getMeta(IDENTITY_KEY);
  return stored === undefined ? undefined : { ...IMPLIED, ...(JSON.parse(stored) as RunIdentity) };
}

/** Whether a prepare (or a `batchSink` that records one) has bound the ledger to a run identity. */
export function hasRunIdentity(ledger: Ledger): boolean {
  return ledger.getMeta(IDENTITY_KEY) !== undefined;
}

/** The run's id, which names its request files and tags its remote batches. */
export function runIdOf(ledger: Ledger): string {
  return ledger.getMeta(RUN_ID_KEY) ?? DEFAULT_RUN_ID;
}

/** The run id of a ledger filled by hand-built requests (no identity): its own, or a new one. */
export function claimHandBuiltRunId(ledger: Ledger): string {
  let runId = ledger.getMeta(RUN_ID_KEY);
  if (runId === undefined) {
    runId = `stream-${Date.now().toString(36)}`;
    ledger.setMeta(RUN_ID_KEY, runId);
  }
  return runId;
}

/** The endpoint every request of the run goes to. */
export function runEndpointOf(ledger: Ledger): string {
  return storedRunIdentity(ledger)?.endpoint ?? DEFAULT_ENDPOINT;
}

/** Binds a new ledger to its run: identity, run id and when. */
export function bindRunIdentity(ledger: Ledger, identity: RunIdentity, runId: string): void {
  ledger.transaction(() => {
    ledger.setMeta(IDENTITY_KEY, JSON.stringify(identity));
    ledger.setMeta(RUN_ID_KEY, runId);
    ledger.setMeta(CREATED_AT_KEY, new Date().toISOString());
  });
}

/**
 * Binds a ledger that holds nothing yet (its first prepare failed before writing) to another
 * identity, forgetting the columns and the end of input of that attempt; the run id stays.
 */
export function rebindRunIdentity(ledger: Ledger, identity: RunIdentity): void {
  ledger.transaction(() => {
    ledger.setMeta(IDENTITY_KEY, JSON.stringify(identity));
    ledger.deleteMeta(COLUMNS_KEY);
    ledger.deleteMeta(PREPARED_KEY);
  });
}

/** The CSV header's columns, in order (empty for JSONL and JSON input). */
export function inputColumnsOf(ledger: Ledger): string[] {
  return JSON.parse(ledger.getMeta(COLUMNS_KEY) ?? '[]') as string[];
}

/**
 * Records the CSV header's columns on first use; returns the columns recorded before when they
 * differ (the input changed), else `undefined`.
 */
export function recordInputColumns(ledger: Ledger, columns: readonly string[]): string[] | undefined {
  const stored = ledger.getMeta(COLUMNS_KEY);
  const now = JSON.stringify(columns);
  if (stored === undefined) ledger.setMeta(COLUMNS_KEY, now);
  return stored === undefined || stored === now ? undefined : (JSON.parse(stored) as string[]);
}

/** The records prepare read once it reached the end of its input; `undefined` before that. */
export function preparedRecordsOf(ledger: Ledger): number | undefined {
  const prepared = ledger.getMeta(PREPARED_KEY);
  return prepared === undefined ? undefined : Number(prepared);
}

/** Marks the end of prepare's input: it read `records` records. */
export function markPrepared(ledger: Ledger, records: number): void {
  ledger.setMeta(PREPARED_KEY, String(records));
}

/** The most requests a file written from now on may hold: the identity's, or lower after `run --max-lines`. */
export function fileMaxLinesOf(ledger: Ledger, identity: RunIdentity): number {
  return Math.min(identity.maxLines, Number(ledger.getMeta(MAX_LINES_KEY) ?? Number.POSITIVE_INFINITY));
}

/** Lowers the size of files written from now on (never raises it). */
export function lowerFileMaxLines(ledger: Ledger, maxLines: number): void {
  const before = Number(ledger.getMeta(MAX_LINES_KEY) ?? Number.POSITIVE_INFINITY);
  if (maxLines < before) ledger.setMeta(MAX_LINES_KEY, String(maxLines));
}

/** Records the input's name as the user gave it (shown by `status`; never used to find the input). */
export function recordInputName(ledger: Ledger, name: string): void {
  ledger.setMeta(INPUT_NAME_KEY, name);
}

/** The run's input as named, its id and when it was made, for `status`. */
export function runSummaryOf(ledger: Ledger): { input: string | null; createdAt: string | null } {
  return {
    input: ledger.getMeta(INPUT_NAME_KEY) ?? null,
    createdAt: ledger.getMeta(CREATED_AT_KEY) ?? null,
  };
}

/**
 * What a ledger records about the run it belongs to: the options that decide its requests (one
 * identity per ledger), and whether its prepare read the whole input. Reads and writes them through
 * ledger/identity.ts.
 */
import { randomBytes } from 'node:crypto';
import { basename, extname } from 'node:path';
import { DEFAULT_PROVIDER } from '../dialects/dialect.js';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import {
  bindRunIdentity,
  hasRunIdentity,
  preparedRecordsOf,
  rebindRunIdentity,
  runIdOf,
  storedRunIdentity,
} from '../ledger/identity.js';
import type { Ledger } from '../ledger/ledger.js';
import { endpointOf, type RequestTemplateOptions } from '../transforms/request-builder.js';
import type { RunIdentity } from '../types.js';

/** The identity of a run with these options, as the ledger records it. */
export function runIdentity(
  template: RequestTemplateOptions,
  format: 'csv' | 'jsonl' | 'json',
  limits: { maxLines: number; maxBytes: number },
  encoding = 'utf-8',
  jsonPath?: string[],
): RunIdentity {
  return {
    format,
    provider: template.provider ?? DEFAULT_PROVIDER,
    endpoint: endpointOf(template),
    model: template.model ?? null,
    prompt: template.prompt ?? null,
    system: template.system ?? null,
    body: template.body ?? null,
    idColumn: template.idColumn ?? null,
    id: template.id ?? null,
    maxLines: limits.maxLines,
    maxBytes: limits.maxBytes,
    encoding,
    jsonPath: jsonPath ?? null,
  };
}

/**
 * Binds the ledger to this identity on first use and returns the run id; on later runs refuses a
 * ledger made with other options, naming what differs. A ledger that holds no request, reject or file
 * yet (its first prepare failed before writing any) has nothing to protect: it is bound again, to
 * these options and whatever header the input has.
 */
export function claimLedger(ledger: Ledger, identity: RunIdentity): string {
  const before = storedRunIdentity(ledger);
  if (before === undefined) {
    const runId = `${basename(ledger.path, extname(ledger.path)).replace(/[^A-Za-z0-9_-]/g, '_') || 'run'}-${randomBytes(3).toString('hex')}`;
    bindRunIdentity(ledger, identity, runId);
    return runId;
  }
  if (ledger.holdsNothing()) {
    rebindRunIdentity(ledger, identity);
    return runIdOf(ledger);
  }
  const was = before as unknown as Record<string, unknown>;
  const now = identity as unknown as Record<string, unknown>;
  const differing = Object.keys(identity).filter(
    (key) => JSON.stringify(was[key] ?? null) !== JSON.stringify(now[key] ?? null),
  );
  if (differing.length > 0) {
    const details = differing
      .map(
        (key) =>
          `${key}: ledger has ${JSON.stringify(was[key] ?? null)}, this run has ${JSON.stringify(now[key] ?? null)}`,
      )
      .join('; ');
    throw new BatchpipeError(
      ErrorCodes.LEDGER_MISMATCH,
      `ledger ${ledger.path} was created with different options (${details}); use a new --ledger, or the original options to resume`,
    );
  }
  return runIdOf(ledger);
}

/** How far the ledger's prepare got: `read` counts the records it accounts for (requests and rejects). */
export interface PrepareState {
  state: 'complete' | 'incomplete';
  read: number;
}

/**
 * Whether the ledger's prepare read its whole input; `undefined` for a ledger no prepare made (one
 * `batchSink` filled with requests built by hand, without `promptTemplate`, has no run identity).
 */
export function prepareState(ledger: Ledger): PrepareState | undefined {
  if (!hasRunIdentity(ledger)) return undefined;
  const prepared = preparedRecordsOf(ledger);
  return prepared === undefined
    ? { state: 'incomplete', read: ledger.requestAndRejectCount() }
    : { state: 'complete', read: prepared };
}

/**
 * Refuses a ledger whose prepare stopped before the end of its input (a bad record, a kill): its
 * results would silently lack the rest of the input. `ledgerName` is the path as the user gave it.
 */
export function requireCompletePrepare(ledger: Ledger, ledgerName: string, command: string): void {
  const state = prepareState(ledger);
  if (state?.state !== 'incomplete') return;
  throw new BatchpipeError(
    ErrorCodes.INCOMPLETE_RUN,
    `${command}: the run in ${ledgerName} stopped preparing after ${state.read} records, before the end of its input; run \`batchpipe run\` or \`batchpipe prepare\` again with the same input and --ledger ${ledgerName} to finish it (add --rejects FILE to set bad records aside)`,
  );
}

import { BatchTables } from '../ledger/batches.js';
import type { Ledger, RequestCounts } from '../ledger/ledger.js';
import { RequestStates } from '../ledger/request-states.js';
import { type PrepareState, prepareState } from '../prepare/run-identity.js';

/** The stable JSON shape of `batchpipe status --json`. */
export interface RunStatus {
  requests: RequestCounts;
  batches: {
    id: string | null;
    file: string;
    attempt: number;
    status: string | null;
    request_counts: unknown;
  }[];
  tokens: { input: number; output: number; peak_queued: Record<string, number> };
  /** Whether prepare read the whole input (absent for a ledger no prepare made, e.g. by `batchSink`). */
  prepare?: PrepareState;
}

/** Counts per request state, every batch with its progress, and tokens used so far. */
export function runStatus(ledger: Ledger): RunStatus {
  const tables = BatchTables.of(ledger);
  const files = new Map(ledger.files().map((f) => [f.id, f]));
  const tokens = RequestStates.of(ledger).tokenTotals();
  const prepare = prepareState(ledger);
  return {
    requests: ledger.counts(),
    batches: tables.batches().map((b) => ({
      id: b.remote_id,
      file: files.get(b.file_id)?.name ?? String(b.file_id),
      attempt: files.get(b.file_id)?.attempt ?? 1,
      status: b.status,
      request_counts: b.request_counts ? JSON.parse(b.request_counts) : null,
    })),
    tokens: { ...tokens, peak_queued: tables.peakQueued() },
    ...(prepare ? { prepare } : {}),
  };
}

/** The human form: one line of counts, then one line per batch. */
export function formatStatus(status: RunStatus): string {
  const r = status.requests;
  const p = status.prepare;
  const lines = [
    ...(p === undefined
      ? []
      : p.state === 'complete'
        ? [`prepare: complete, read ${p.read} records`]
        : [
            `prepare: incomplete, read ${p.read} records of the input before it stopped; run \`batchpipe run\` or \`batchpipe prepare\` again with the same input to finish`,
          ]),
    `requests: ${r.total} total: ${r.succeeded} succeeded, ${r.failed} failed, ${r.expired} expired, ${r.cancelled} cancelled, ${r.staged} staged, ${r.submitted} submitted, ${r.rejected} rejected`,
    `tokens: ${status.tokens.input} in, ${status.tokens.output} out`,
  ];
  for (const b of status.batches) {
    const c = b.request_counts as { total: number; completed: number; failed: number } | null;
    const progress = c ? ` ${c.completed + c.failed}/${c.total} done (${c.failed} failed)` : '';
    lines.push(`batch ${b.id ?? '(creating)'} ${b.file} ${b.status ?? 'pending'}${progress}`);
  }
  return `${lines.join('\n')}\n`;
}

import type { Ledger, RequestCounts } from '../ledger/ledger.js';
import { type PrepareState, prepareState } from '../prepare/run-identity.js';
import { BatchStore } from './batch-store.js';

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
  const store = new BatchStore(ledger);
  const files = new Map(ledger.files().map((f) => [f.id, f]));
  const tokens = ledger.db
    .prepare<[], { input: number | null; output: number | null }>(
      'SELECT sum(input_tokens) AS input, sum(output_tokens) AS output FROM requests',
    )
    .get()!;
  const peak = ledger.db
    .prepare<[], { key: string; value: string }>(
      "SELECT key, value FROM meta WHERE key LIKE 'peak_queued_tokens:%'",
    )
    .all();
  const prepare = prepareState(ledger);
  return {
    requests: ledger.counts(),
    batches: store.batches().map((b) => ({
      id: b.remote_id,
      file: files.get(b.file_id)?.name ?? String(b.file_id),
      attempt: files.get(b.file_id)?.attempt ?? 1,
      status: b.status,
      request_counts: b.request_counts ? JSON.parse(b.request_counts) : null,
    })),
    tokens: {
      input: tokens.input ?? 0,
      output: tokens.output ?? 0,
      peak_queued: Object.fromEntries(
        peak.map((p) => [p.key.slice('peak_queued_tokens:'.length), Number(p.value)]),
      ),
    },
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

/**
 * `batchpipe status` for people: the run, prepare, counts per state, tokens, and a table of batches
 * (status, progress, age, attempt) with a STUCK flag on a batch that has sat in `validating`,
 * `finalizing` or `cancelling` longer than usual. Pure: a `RunStatus` and the clock in, text out.
 */
import { formatMicroUsd } from '../cost/run-cost.js';
import type { CostStatus, RunStatus, TwoWaysUsd } from '../scheduler/status.js';
import { formatCount, formatDuration } from './human.js';
import { type StuckThresholds, stuckFor } from './stuck.js';

type StatusBatch = RunStatus['batches'][number];

/** Seconds a batch has been in its current status, by the ledger's first sight of it; undefined: unknown. */
export function secondsInStatus(batch: StatusBatch, now: number): number | undefined {
  return batch.status_since === null ? undefined : (now - Date.parse(batch.status_since)) / 1000;
}

/** Whether the batch is open and has sat in its status past the threshold. */
export function isStuck(batch: StatusBatch, now: number, thresholds: StuckThresholds): boolean {
  const seconds = secondsInStatus(batch, now);
  return (
    !batch.settled &&
    batch.status !== null &&
    seconds !== undefined &&
    stuckFor(batch.status, seconds, thresholds)
  );
}

/** `status --json`: the stable shape, each batch with its `stuck` flag added. */
export function statusJson(status: RunStatus, now: number, thresholds: StuckThresholds): object {
  return { ...status, batches: status.batches.map((b) => ({ ...b, stuck: isStuck(b, now, thresholds) })) };
}

export function formatStatusTable(status: RunStatus, now: number, thresholds: StuckThresholds): string {
  const lines: string[] = [];
  const r = status.run;
  if (r) {
    const age = r.created_at ? ` · made ${formatDuration((now - Date.parse(r.created_at)) / 1000)} ago` : '';
    lines.push(
      `run ${r.id} · ${r.model ?? '(model in the body)'} · ${r.endpoint} · input ${r.input ?? '(not recorded)'}${age}`,
    );
  }
  const p = status.prepare;
  if (p) {
    lines.push(
      p.state === 'complete'
        ? `prepare: complete, read ${formatCount(p.read)} records`
        : `prepare: incomplete, read ${p.read} records of the input before it stopped; run \`batchpipe run\` or \`batchpipe prepare\` again with the same input to finish`,
    );
  }
  const c = status.requests;
  lines.push(
    `requests: ${formatCount(c.total)} total: ${formatCount(c.succeeded)} succeeded, ${formatCount(c.failed)} failed, ${formatCount(c.expired)} expired, ${formatCount(c.cancelled)} cancelled, ${formatCount(c.staged)} staged, ${formatCount(c.submitted)} submitted, ${formatCount(c.rejected)} rejected`,
  );
  lines.push(`tokens: ${formatCount(status.tokens.input)} in, ${formatCount(status.tokens.output)} out`);
  if (status.cost) lines.push(...costLines(status.cost));
  if (status.batches.length > 0) {
    const rows = status.batches.map((b) => batchRow(b, now, thresholds));
    lines.push(
      '',
      ...table(['BATCH', 'FILE', 'ATTEMPT', 'STATUS', 'PROGRESS', 'AGE', 'IN STATUS', ''], rows),
    );
    const open = status.batches.filter((b) => !b.settled && b.polled_at !== null);
    const lastPoll = Math.max(...open.map((b) => Date.parse(b.polled_at!)));
    if (open.length > 0) {
      lines.push(
        `last poll ${formatDuration((now - lastPoll) / 1000)} ago (status reads the ledger; a running \`run\` or \`collect\` polls)`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Spent and projected, batch against synchronous prices, with what the figures leave out. */
function costLines(cost: CostStatus): string[] {
  const both = (c: TwoWaysUsd) =>
    `${formatMicroUsd(c.batch_micro_usd)} as sent (synchronously ${formatMicroUsd(c.sync_micro_usd)}, saving ${formatMicroUsd(c.sync_micro_usd - c.batch_micro_usd)})`;
  const r = cost.remaining;
  const notes = [
    r.approximate ? 'files not sent yet estimated from characters/4 until counted' : '',
    r.output_unknown > 0
      ? `${formatCount(r.output_unknown)} requests without an output limit priced as input only`
      : '',
    r.unplaced > 0 ? `${formatCount(r.unplaced)} requests waiting for a retry file left out` : '',
    cost.unpriced.length > 0
      ? `no price for ${cost.unpriced.map((m) => JSON.stringify(m)).join(', ')} (give --price-file FILE): left out`
      : '',
  ].filter((n) => n !== '');
  return [
    `cost: spent ${both(cost.spent)}`,
    `cost: projected ${both(cost.projected)}${r.requests > 0 ? `, ${formatCount(r.requests)} requests estimated` : ''}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`,
  ];
}

function batchRow(b: StatusBatch, now: number, thresholds: StuckThresholds): string[] {
  const c = b.request_counts as { total: number; completed: number; failed: number } | null;
  const progress = c
    ? `${formatCount(c.completed + c.failed)}/${formatCount(c.total)}${c.failed > 0 ? ` (${formatCount(c.failed)} failed)` : ''}`
    : '';
  const inStatus = secondsInStatus(b, now);
  const stuck = isStuck(b, now, thresholds)
    ? `STUCK: ${b.status} longer than ${formatDuration(thresholds[b.status!]!)}`
    : '';
  return [
    b.id ?? '(creating)',
    b.file,
    String(b.attempt),
    b.status ?? 'pending',
    progress,
    formatDuration((now - Date.parse(b.created_at)) / 1000),
    b.settled || inStatus === undefined ? '' : formatDuration(inStatus),
    stuck,
  ];
}

/** Columns padded to their widest cell, two spaces apart; trailing spaces trimmed. */
function table(header: string[], rows: string[][]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  return all.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}

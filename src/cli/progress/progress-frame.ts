/**
 * The progress frame a terminal shows while a command works: one line for prepare, one for uploads,
 * the overall bar of requests, then one line per open batch. Pure: a `RunProgress` and the clock in,
 * lines out, each cut to the terminal's width so that redrawing never wraps.
 */
import { bar, formatBytes, formatCount, formatDuration, formatUsd, percent, plural } from '../human.js';
import { type StuckThresholds, stuckFor } from '../stuck.js';
import type { RunProgress } from './run-progress.js';

export interface FrameSize {
  columns: number;
  rows: number;
}

/** The frame's lines (no trailing newline), at most `size.rows - 1` of them. */
export function progressFrame(
  progress: RunProgress,
  now: number,
  size: FrameSize,
  stuckAfter: StuckThresholds,
): string[] {
  const lines: string[] = [];
  const p = progress.prepare;
  if (p && progress.phase === 'preparing') {
    const size_ =
      p.totalBytes === undefined ? '' : ` ${formatBytes(p.bytesRead)} of ${formatBytes(p.totalBytes)}`;
    const head =
      p.totalBytes === undefined
        ? `preparing ${formatCount(p.records)} records`
        : `preparing ${bar(p.bytesRead, p.totalBytes)} ${percent(p.bytesRead, p.totalBytes)}${size_} · ${formatCount(p.records)} records`;
    const rejected = p.rejected > 0 ? ` · ${formatCount(p.rejected)} rejected` : '';
    lines.push(`${head}${rejected} · ${formatCount(p.rate)} rows/s`);
  }
  if (progress.uploads.files > 0 && progress.phase !== 'preparing') {
    lines.push(`uploaded ${plural(progress.uploads.files, 'file')} (${formatBytes(progress.uploads.bytes)})`);
  }
  const c = progress.counts;
  if (c && progress.phase !== 'preparing' && progress.phase !== 'starting') {
    const done = progress.done();
    const parts = [
      `requests ${bar(done, c.total)} ${formatCount(done)} of ${formatCount(c.total)} final`,
      `${formatCount(c.succeeded)} succeeded`,
      `${formatCount(progress.failed())} failed`,
    ];
    if (c.rejected > 0) parts.push(`${formatCount(c.rejected)} rejected`);
    if (progress.spentUsd !== undefined) parts.push(`${formatUsd(progress.spentUsd)} spent`);
    const eta = progress.etaSeconds();
    if (eta !== undefined) parts.push(`ETA ${formatDuration(eta)}`);
    lines.push(parts.join(' · '));
  }
  const batches = [...progress.batches.values()];
  const room = Math.max(1, size.rows - 1 - lines.length - 1);
  const shown = batches.length > room ? batches.slice(0, room - 1) : batches;
  for (const b of shown) {
    const counts = b.counts
      ? `${formatCount(b.counts.completed + b.counts.failed)}/${formatCount(b.counts.total)}${b.counts.failed > 0 ? ` (${formatCount(b.counts.failed)} failed)` : ''}`
      : '';
    const inStatus = (now - b.statusSince) / 1000;
    const stuck = stuckFor(b.status, inStatus, stuckAfter)
      ? `  STUCK? ${b.status} for ${formatDuration(inStatus)}`
      : '';
    lines.push(
      `  ${b.id}  ${b.status}  ${counts ? `${counts}  ` : ''}${formatDuration((now - b.seenAt) / 1000)}${stuck}`,
    );
  }
  if (shown.length < batches.length) {
    lines.push(`  … and ${plural(batches.length - shown.length, 'more batch', 'more batches')}`);
  }
  if (progress.phase === 'cancelling')
    lines.push(`cancelling: waiting for ${plural(batches.length, 'batch', 'batches')} to end`);
  return lines.map((line) => fit(line, size.columns));
}

/** Cuts a line to the terminal's width (one column spare: some terminals wrap on the last). */
function fit(line: string, columns: number): string {
  const max = Math.max(10, columns - 1);
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

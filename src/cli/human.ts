/**
 * How the CLI writes numbers, sizes and durations for people (stderr lines, the status table, the
 * progress frame). Pure functions; the one place for these forms.
 */

/** `1234567` → `1,234,567`. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** `1 file`, `2 files`. */
export function plural(n: number, noun: string, nouns = `${noun}s`): string {
  return `${formatCount(n)} ${n === 1 ? noun : nouns}`;
}

/** Sizes as the API states its limits: 200 MB = 209,715,200 bytes, so 1 MB = 2^20 bytes. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}

/** `42s`, `3m05s`, `2h14m`, `3d04h`: two units at most, as a glance wants. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor((s % 86_400) / 3600))}h`;
}

/** A bar of `width` cells, `done` of `total` filled (empty when the total is unknown). */
export function bar(done: number, total: number | undefined, width = 20): string {
  const fraction = total && total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/** `12%` of a known total; empty otherwise. */
export function percent(done: number, total: number | undefined): string {
  return total && total > 0 ? `${Math.floor((100 * Math.min(done, total)) / total)}%` : '';
}

/** `$0.42`, `$1,234.50`. */
export function formatUsd(usd: number): string {
  return `$${usd.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

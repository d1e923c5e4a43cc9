/**
 * What was under way when a signal stopped a command, in one clause for the interrupt line: read
 * from the progress the events built (and the ledger's counts, read again now).
 */
import { formatCount, plural } from '../human.js';
import type { RunProgress } from './run-progress.js';

/** Where the batches run: at a provider (they go on without us), or in this process (they pause). */
export type BatchHome = 'provider' | 'in-process';

/** e.g. `while collecting: 2 batches open (1 in_progress, 1 finalizing), running on at the provider; 340 of 1,000 requests done`. */
export function describeInFlight(progress: RunProgress, home: BatchHome): string {
  progress.refreshCounts();
  const c = progress.counts;
  const done = c ? `; ${formatCount(progress.done())} of ${formatCount(c.total)} requests done` : '';
  switch (progress.phase) {
    case 'preparing': {
      const records = progress.prepare?.records ?? 0;
      return `while preparing (${plural(records, 'record')} read): complete request files are kept, the rest is prepared again`;
    }
    case 'uploading':
    case 'creating':
      return `while submitting (${plural(progress.uploads.files, 'file')} uploaded by this command): an upload or batch under way is found again, never sent twice${done}`;
    case 'cancelling':
      return `while waiting for ${plural(progress.batches.size, 'cancelled batch', 'cancelled batches')} to end${done}`;
    default: {
      const n = progress.batches.size;
      if (n === 0) return `with nothing sent or open${done}`;
      const statuses = Object.entries(progress.byStatus())
        .map(([s, k]) => `${k} ${s}`)
        .join(', ');
      const fate =
        home === 'provider'
          ? 'running on at the provider'
          : 'paused with the built-in server until it starts again';
      return `while collecting: ${plural(n, 'batch', 'batches')} open (${statuses}), ${fate}${done}`;
    }
  }
}

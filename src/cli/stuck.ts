/**
 * When a batch has sat in one status longer than usual: `validating`, `finalizing` and `cancelling`
 * are short steps on every provider (minutes), so hours there mean a batch to look at (the most
 * reported "hung batch" of batch APIs is a long `finalizing`). `in_progress` depends on the load and
 * has no threshold unless one is given. Thresholds are settable with `--stuck-after STATUS=DURATION`.
 */
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { parseDurationSeconds } from '../server/util/duration.js';

/** Seconds in a status after which a batch is flagged, by status. */
export type StuckThresholds = Readonly<Record<string, number>>;

export const DEFAULT_STUCK_AFTER: StuckThresholds = {
  validating: 30 * 60,
  finalizing: 30 * 60,
  cancelling: 30 * 60,
};

/** The statuses `--stuck-after` takes. */
const STUCK_STATUSES = ['validating', 'in_progress', 'finalizing', 'cancelling'];

/**
 * Parses one `--stuck-after STATUS=DURATION` (commander calls it once per flag, with the thresholds
 * so far): `finalizing=30m`, `validating=10m`, `in_progress=12h`. A usage error names what it takes.
 */
export function parseStuckAfter(
  value: string,
  previous: StuckThresholds = DEFAULT_STUCK_AFTER,
): StuckThresholds {
  const [status = '', duration = ''] = value.split('=', 2);
  const seconds = parseDurationSeconds(duration);
  if (!STUCK_STATUSES.includes(status) || seconds === undefined) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `--stuck-after takes STATUS=DURATION with STATUS one of ${STUCK_STATUSES.join(', ')} (e.g. finalizing=30m), got ${JSON.stringify(value)}`,
    );
  }
  return { ...previous, [status]: seconds };
}

/** Whether a batch in `status` for `seconds` is past that status's threshold. */
export function stuckFor(status: string, seconds: number, thresholds: StuckThresholds): boolean {
  const limit = thresholds[status];
  return limit !== undefined && seconds >= limit;
}

/** `finalizing=30m, validating=30m, …` as the help states the defaults. */
export function describeThresholds(thresholds: StuckThresholds): string {
  return Object.entries(thresholds)
    .map(([status, s]) => `${status}=${s % 60 === 0 ? `${s / 60}m` : `${s}s`}`)
    .join(', ');
}

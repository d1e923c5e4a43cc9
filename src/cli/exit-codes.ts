/**
 * The CLI's exit codes, and the line that explains a 3. Documented in the README ("Exit codes").
 */
import type { RequestCounts } from '../ledger/ledger.js';
import { formatCommand } from './command-line.js';
import { formatCount } from './human.js';

export const ExitCodes = {
  /** Everything asked happened (for `run` and `collect`: every request succeeded). */
  OK: 0,
  /** A handled error (`BP_*`), said on stderr. */
  ERROR: 1,
  /** Bad command-line usage. */
  USAGE: 2,
  /** The run is finished, but not every input record succeeded: some failed, expired, were cancelled or rejected. */
  UNSUCCESSFUL_ROWS: 3,
  /** Stopped by SIGINT (Ctrl-C) / SIGTERM; the line before says how to go on. */
  SIGINT: 130,
  SIGTERM: 143,
} as const;

/** Rows of a finished run that did not succeed. */
export function unsuccessful(c: RequestCounts): number {
  return c.failed + c.expired + c.cancelled + c.rejected;
}

/**
 * The exit code of a finished run, and the line that says why when it is 3: the counts, and what
 * to do about them (undefined when every request succeeded).
 */
export function finishedRun(
  c: RequestCounts,
  ledgerPath: string,
): { code: number; line: string | undefined } {
  if (unsuccessful(c) === 0) return { code: ExitCodes.OK, line: undefined };
  const parts = [
    `${formatCount(c.failed)} failed`,
    `${formatCount(c.expired)} expired`,
    `${formatCount(c.cancelled)} cancelled`,
    `${formatCount(c.rejected)} rejected`,
  ];
  const retryable = c.failed + c.expired + c.cancelled;
  const retry =
    retryable > 0
      ? `; \`${formatCommand(['retry', '--ledger', ledgerPath])}\` stages the failed, expired and cancelled ones again for the next run`
      : '';
  return {
    code: ExitCodes.UNSUCCESSFUL_ROWS,
    line: `finished with ${parts.join(', ')} of ${formatCount(c.total)} (exit 3): \`${formatCommand(['results', '--ledger', ledgerPath, '--status', 'failed,expired,cancelled,rejected'])}\` lists them${retry}`,
  };
}

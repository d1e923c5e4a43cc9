/**
 * `--max-usd`: a run never creates a batch that would take what it has spent (the responses' usage)
 * plus what its unsettled batches are estimated to cost plus the next file's estimate over the
 * budget, and refuses to start when its estimate is over it. Estimates are batch prices of each
 * file's real token count and the output assumption (`--expect-output-tokens`, else each request's
 * limit). Reads the ledger; the scheduler holds files back and stops with BP_BUDGET. Deadline
 * hedging asks too: it moves unanswered rows to the hedge path only when they fit at its prices.
 */
import type { FileTokens } from '../cost/file-tokens.js';
import {
  type CostSettings,
  formatMicroUsd,
  priceEstimate,
  runCost,
  spentSoFar,
  tokenEstimate,
} from '../cost/run-cost.js';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { storedRunIdentity } from '../ledger/identity.js';
import type { FileRow } from '../ledger/ledger.js';
import type { ScheduledRun } from './scheduled-run.js';
import { fileTokens } from './token-count.js';

/** A budget in micro-dollars, and how to price against it. */
export interface Budget {
  maxMicroUsd: number;
  settings: CostSettings;
}

/** What the run is committed to now: spent, and the estimates of the batches not settled yet. */
export interface Commitment {
  spentMicroUsd: number;
  queuedMicroUsd: number;
}

/** The batch-price estimate of a file's requests; BP_BUDGET when their output cannot be estimated. */
export async function fileEstimate(run: ScheduledRun, file: FileRow, budget: Budget): Promise<number> {
  const tokens: FileTokens = await fileTokens(run, file);
  const estimate = tokenEstimate(file.model ?? '', tokens, budget.settings.expectOutputTokens);
  if (estimate.outputTokens === undefined) {
    throw new BatchpipeError(
      ErrorCodes.BUDGET,
      `--max-usd needs an estimate of every request's output, but ${estimate.unbounded} requests of ${file.name} set no output limit (max_tokens, max_completion_tokens or max_output_tokens): give --expect-output-tokens N, the output tokens to assume a request`,
    );
  }
  const costs = priceEstimate(estimate, { ...budget.settings, allowUnpriced: false })!;
  return costs.batchMicroUsd;
}

/** Spent so far plus the estimates of the files in unsettled batches. */
export async function commitment(run: ScheduledRun, budget: Budget): Promise<Commitment> {
  const runModel = storedRunIdentity(run.ledger)?.model ?? null;
  const settings = { ...budget.settings, allowUnpriced: false };
  const spentMicroUsd = spentSoFar(run.ledger, runModel, settings).batchMicroUsd;
  let queuedMicroUsd = 0;
  for (const file of run.tables.queuedFiles()) queuedMicroUsd += await fileEstimate(run, file, budget);
  return { spentMicroUsd, queuedMicroUsd };
}

/**
 * Before anything is sent (a run with no batch yet): refuses (BP_BUDGET) when spent + queued + every
 * file ready to send is estimated above the budget. Counts the ready files (and keeps their counts).
 */
export async function checkBudgetAtStart(run: ScheduledRun, budget: Budget): Promise<void> {
  const now = await commitment(run, budget);
  const ready = run.tables.filesReadyForBatch(false);
  let readyMicroUsd = 0;
  for (const file of ready) readyMicroUsd += await fileEstimate(run, file, budget);
  const total = now.spentMicroUsd + now.queuedMicroUsd + readyMicroUsd;
  if (total > budget.maxMicroUsd) {
    throw new BatchpipeError(
      ErrorCodes.BUDGET,
      `the run is estimated at ${formatMicroUsd(total)} at batch prices (${describe(now)}${ready.length} files to send: ${formatMicroUsd(readyMicroUsd)}), over --max-usd ${formatMicroUsd(budget.maxMicroUsd)}; nothing was sent. \`batchpipe estimate\` shows the figures; run again with a higher --max-usd`,
    );
  }
}

/** The stop when the next file does not fit and no batch is open: the figures, and how to go on. */
export function overBudget(
  run: ScheduledRun,
  file: FileRow,
  fileMicroUsd: number,
  now: Commitment,
  budget: Budget,
): BatchpipeError {
  const total = now.spentMicroUsd + now.queuedMicroUsd + fileMicroUsd;
  return new BatchpipeError(
    ErrorCodes.BUDGET,
    `stopped at the budget: ${describe(now)}${file.name}: ${formatMicroUsd(fileMicroUsd)} makes ${formatMicroUsd(total)}, over --max-usd ${formatMicroUsd(budget.maxMicroUsd)}; its requests stay staged. Run the same command again with a higher --max-usd to go on (\`batchpipe status --ledger ${run.ledger.path}\` shows what was spent)`,
  );
}

function describe(now: Commitment): string {
  const parts = [];
  if (now.spentMicroUsd > 0) parts.push(`spent ${formatMicroUsd(now.spentMicroUsd)}`);
  if (now.queuedMicroUsd > 0) parts.push(`queued ${formatMicroUsd(now.queuedMicroUsd)}`);
  return parts.length === 0 ? '' : `${parts.join(', ')}, `;
}

/**
 * Why hedging now would go over the budget, or undefined when it fits: what was spent plus every
 * unanswered request at the hedge path's prices (synchronous for `direct`; flex is priced as batch).
 * An upper bound: some of those requests may still be answered by their batch.
 */
export function hedgeOverBudget(
  run: ScheduledRun,
  budget: Budget,
  path: 'direct' | 'flex',
): string | undefined {
  const runModel = storedRunIdentity(run.ledger)?.model ?? null;
  const cost = runCost(run.ledger, runModel, budget.settings);
  const remaining = path === 'flex' ? cost.remaining.batchMicroUsd : cost.remaining.syncMicroUsd;
  const total = cost.spent.batchMicroUsd + remaining;
  if (total <= budget.maxMicroUsd) return undefined;
  return `sending the ${cost.remaining.requests} unanswered requests ${path} would take the run to ${formatMicroUsd(total)}, over --max-usd ${formatMicroUsd(budget.maxMicroUsd)}: the batches are left to finish`;
}

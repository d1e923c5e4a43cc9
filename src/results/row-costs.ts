/**
 * `results --cost`: each request's cost as sent (batch prices, or the direct path's synchronous or flex
 * prices for the rows it answered) from the usage its response reported, as a cell of exact dollars
 * (to the pico-dollar: a cheap request costs less than a micro-dollar). `status` prices the same tokens
 * exactly and rounds once, so the rows of a run add up to its spent total. Reads the ledger's usage.
 */

import { usageCost } from '../cost/prices.js';
import { type CostSettings, hasPathPrice, isPriced } from '../cost/run-cost.js';
import type { Ledger } from '../ledger/ledger.js';
import { type AnsweredBy, usageOfRequests } from '../ledger/usage-totals.js';

/** Cells by seq for a page of rows: `'0.000123'`, `'0.0000000762'`, or `''` (no usage or no price). */
export type RowCosts = (seqs: readonly number[]) => Map<number, string>;

/** The cost cells of `ledger`'s requests (the run's model for a request in no file). */
export function rowCosts(ledger: Ledger, runModel: string | null, settings: CostSettings): RowCosts {
  const memo = new Map<string, string>();
  const cell = (model: string, path: AnsweredBy, key: string, price: () => bigint): string => {
    const id = `${model}\u0000${key}`;
    let text = memo.get(id);
    if (text === undefined) {
      const priced = isPriced(model, settings) && (path !== 'flex' || hasPathPrice(model, 'flex', settings));
      text = priced ? usdCell(price()) : '';
      memo.set(id, text);
    }
    return text;
  };
  return (seqs) => {
    const cells = new Map<number, string>();
    for (const { seq, model: fileModel, path, usage } of usageOfRequests(ledger, seqs)) {
      if (usage === null) continue;
      const model = fileModel ?? runModel ?? '';
      const key = `${path},${usage.inputTokens},${usage.cachedInputTokens},${usage.cacheWriteTokens},${usage.outputTokens}`;
      cells.set(
        seq,
        cell(model, path, key, () => usageCost(usage, { model, path }, settings.table).picoUsd),
      );
    }
    return cells;
  };
}

/**
 * Pico-dollars as a decimal of dollars, exact: at least 6 places, more only where the cost has them.
 *
 * @example
 * ```ts
 * usdCell(123_000_000n); // '0.000123'
 * usdCell(76_250n); // '0.00000007625'
 * ```
 */
export function usdCell(picoUsd: bigint): string {
  const fraction = String(picoUsd % 1_000_000_000_000n)
    .padStart(12, '0')
    .replace(/0{1,6}$/, '');
  return `${picoUsd / 1_000_000_000_000n}.${fraction}`;
}

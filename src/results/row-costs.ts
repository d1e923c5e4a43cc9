/**
 * `results --cost`: each request's cost as sent (batch prices, or the direct path's synchronous or flex
 * prices for the rows it answered) from the usage its response reported, as a
 * cell of exact dollars (micro-dollar precision). Priced group by group as `status` prices the run,
 * so the rows of a run add up to its spent total to the micro-dollar. Reads the ledger's usage.
 */

import { usageCost } from '../cost/prices.js';
import { type CostSettings, hasPathPrice, isPriced } from '../cost/run-cost.js';
import type { Ledger } from '../ledger/ledger.js';
import { type AnsweredBy, usageOfRequests } from '../ledger/usage-totals.js';

/** Cells by seq for a page of rows: `'0.000123'`, or `''` for a request with no usage or no price. */
export type RowCosts = (seqs: readonly number[]) => Map<number, string>;

/** The cost cells of `ledger`'s requests (the run's model for a request in no file). */
export function rowCosts(ledger: Ledger, runModel: string | null, settings: CostSettings): RowCosts {
  const memo = new Map<string, string>();
  const cell = (model: string, path: AnsweredBy, key: string, price: () => number): string => {
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
        cell(model, path, key, () => usageCost(usage, { model, path }, settings.table).totalMicroUsd),
      );
    }
    return cells;
  };
}

/** Micro-dollars as a decimal of dollars with all 6 places: 123 → `0.000123`. */
export function usdCell(microUsd: number): string {
  return `${Math.floor(microUsd / 1e6)}.${String(microUsd % 1e6).padStart(6, '0')}`;
}

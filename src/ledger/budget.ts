/**
 * The run's budget as the ledger keeps it (meta `budget`): `--max-usd` in micro-dollars and the
 * output assumption it was given with, so every later command that creates batches (`run`, `submit`,
 * `collect`, which sends retry files) holds to it until a new `--max-usd` replaces it.
 */
import type { Ledger } from './ledger.js';

const BUDGET_KEY = 'budget';

export interface StoredBudget {
  maxMicroUsd: number;
  expectOutputTokens?: number | undefined;
}

/** The run's budget, if one was given. */
export function storedBudget(ledger: Ledger): StoredBudget | undefined {
  const text = ledger.getMeta(BUDGET_KEY);
  return text === undefined ? undefined : (JSON.parse(text) as StoredBudget);
}

/** Keeps `budget` as the run's (undefined: the run has none any more). */
export function storeBudget(ledger: Ledger, budget: StoredBudget | undefined): void {
  if (budget === undefined) ledger.deleteMeta(BUDGET_KEY);
  else ledger.setMeta(BUDGET_KEY, JSON.stringify(budget));
}

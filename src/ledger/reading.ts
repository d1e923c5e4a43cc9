/**
 * How a ledger is read by a command that only reads it once through, in seq order. Touches only
 * the connection's settings.
 */
import { connectionOf, type Ledger } from './ledger.js';

/** One pass in seq order reads each page once: a small page cache does (and saves ~14 MB). */
export function useSmallPageCache(ledger: Ledger): void {
  connectionOf(ledger).pragma('cache_size = -2048');
}

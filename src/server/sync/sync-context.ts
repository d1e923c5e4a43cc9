/** What the synchronous endpoints (sync-api.ts) need beside the batch API's context. Types only. */
import type { Executor } from '../execution.js';
import type { FlexRefusal } from '../faults/flex-unavailable.js';
import type { RateLimits } from './rate-limits.js';
import type { SyncLog } from './sync-log.js';

/** What the sync endpoints need beside the batch API's context. */
export interface SyncContext {
  executor: Executor;
  limits: RateLimits;
  /** Whether `--tpm` is set (tokens are only counted then). */
  countsTokens: boolean;
  log: SyncLog;
  /** `--flex-unavailable`: the capacity refusal a flex call gets, or undefined (also for other tiers). */
  flexRefusal: (serviceTier: string | null) => FlexRefusal | undefined;
}

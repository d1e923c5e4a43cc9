import { abortableSleep } from './latency.js';

/** The statuses `--stall` can hold a batch in. */
export const STALL_STATUSES = ['validating', 'in_progress', 'finalizing'] as const;
export type StallStatus = (typeof STALL_STATUSES)[number];

/** Seconds each batch is held in a status, by status. */
export type StallSeconds = Partial<Record<StallStatus, number>>;

/**
 * `--stall finalizing=SECONDS` (and `validating=`, `in_progress=`): every batch stays that long in
 * that status before it moves on, as a batch that seems hung at a provider does (a long
 * `finalizing` is the most reported). The engine calls the hold as a batch enters the status; a
 * cancel or shutdown ends the hold at once (the batch then goes on as it would have).
 */
export function stallHold(stall: StallSeconds): (status: StallStatus, signal: AbortSignal) => Promise<void> {
  return async (status, signal) => {
    const seconds = stall[status];
    if (!(seconds !== undefined && seconds > 0)) return;
    await abortableSleep(seconds * 1000, signal).catch(() => undefined);
  };
}

/** Parses one `STATUS=SECONDS` of `--stall`; undefined when it is not one. */
export function parseStall(value: string): { status: StallStatus; seconds: number } | undefined {
  const match = /^([a-z_]+)=(\d+(?:\.\d+)?)$/.exec(value.trim());
  const status = match?.[1] as StallStatus | undefined;
  if (!match || status === undefined || !STALL_STATUSES.includes(status)) return undefined;
  return { status, seconds: Number(match[2]) };
}

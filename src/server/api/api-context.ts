import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BatchEngine } from '../engine/batch-engine.js';
import type { ApiFaults } from '../faults/api-faults.js';
import type { DataDir } from '../store/data-dir.js';
import type { ServerStore } from '../store/server-store.js';
import type { ServerClock } from '../util/clock.js';

/** What every API handler works with. */
export interface ApiContext {
  store: ServerStore;
  dataDir: DataDir;
  engine: BatchEngine;
  /** How long a batch may run, in milliseconds (`--completion-window`). */
  completionWindowMs: number;
  maxUploadBytes: number;
  /** The server's (possibly skewed) clock: timestamps and the `date` header. */
  clock: ServerClock;
  faults: ApiFaults;
  log: (line: string) => void;
}

/** A route handler: `params` are the decoded path segments the route captured. */
export type Handler = (
  ctx: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  params: string[],
  query: URLSearchParams,
) => Promise<void>;

/**
 * Wraps a handler so its response, an error included, carries the server clock's `date` header
 * (Node would send the real time): clients read the provider's clock from it.
 */
export function withServerDate(handler: Handler): Handler {
  return (ctx, req, res, params, query) => {
    res.setHeader('date', ctx.clock.httpDate());
    return handler(ctx, req, res, params, query);
  };
}

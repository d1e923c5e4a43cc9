import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BatchEngine } from '../engine/batch-engine.js';
import type { Tally } from '../engine/result-journal.js';
import type { ApiFaults } from '../faults/api-faults.js';
import type { DataDir } from '../store/data-dir.js';
import type { ServerStore, StoredBatch } from '../store/server-store.js';
import type { SyncContext } from '../sync/sync-context.js';
import type { BatchObject } from '../types.js';
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
  /** The synchronous endpoints' executor, rate limits and request log. */
  sync: SyncContext;
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

/** The engine's live counts of a batch that is running (the stored object has them once it ends). */
export function liveTally(ctx: ApiContext, batch: BatchObject): Tally | undefined {
  const running =
    batch.status === 'in_progress' || batch.status === 'cancelling' || batch.status === 'finalizing';
  return running ? ctx.engine.tally(batch.id) : undefined;
}

/**
 * The origin the client reached the server at (`http://host:port`), from its `Host` header, for the
 * absolute URLs an API hands out (Anthropic's `results_url`, Gemini's upload URL). A Host that is not
 * a plain host and port falls back to the socket's own address.
 */
export function requestOrigin(req: IncomingMessage): string {
  const host = req.headers.host;
  if (host && /^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$/.test(host)) return `http://${host}`;
  const address = req.socket.localAddress ?? '127.0.0.1';
  return `http://${address.includes(':') ? `[${address}]` : address}:${req.socket.localPort}`;
}

/** Marks a batch `cancelling` and has the engine stop it; it ends `cancelled` with what has finished. */
export function startCancelling(ctx: ApiContext, batchId: string): StoredBatch {
  const updated = ctx.store.updateBatch(batchId, ({ batch }) => {
    batch.status = 'cancelling';
    batch.cancelling_at = ctx.clock.nowSeconds();
  });
  ctx.engine.cancel(batchId);
  return updated;
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BatchEngine } from '../engine/batch-engine.js';
import type { DataDir } from '../store/data-dir.js';
import type { ServerStore } from '../store/server-store.js';

/** What every API handler works with. */
export interface ApiContext {
  store: ServerStore;
  dataDir: DataDir;
  engine: BatchEngine;
  /** How long a batch may run, in milliseconds (`--completion-window`). */
  completionWindowMs: number;
  maxUploadBytes: number;
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

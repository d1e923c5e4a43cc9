import { basename, dirname, extname, join } from 'node:path';
import OpenAI from 'openai';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { startLocalServer } from '../server/index.js';

export type BackendName = 'openai' | 'local';

export interface BackendOptions {
  backend: BackendName;
  /** Ledger path: the local backend keeps its state beside it. */
  ledgerPath: string;
  /** Any OpenAI-compatible Batch API (else OPENAI_BASE_URL, else OpenAI's). */
  baseUrl?: string | undefined;
  /** Defaults to OPENAI_API_KEY; read here and handed to the SDK, never stored or printed. */
  apiKey?: string | undefined;
  /** Where to say which backend is in use (stderr for the CLI). */
  log?: ((line: string) => void) | undefined;
}

/** An SDK client bound to a backend; close() stops the in-process server of the local backend. */
export interface Backend {
  client: OpenAI;
  name: BackendName;
  /** Replaces any secret in a message before it is shown or stored. */
  redact(text: string): string;
  close(): Promise<void>;
}

/**
 * Opens the backend: the official SDK against OpenAI (or `--base-url`), or against the built-in
 * Batch API server started in this process with its state beside the ledger. The SDK's own retries
 * absorb 429/5xx on reads; calls that create things are retried by batchpipe, which checks first
 * whether the earlier attempt landed.
 */
export async function openBackend(options: BackendOptions): Promise<Backend> {
  if (options.backend === 'local') {
    const dataDir = localServerDir(options.ledgerPath);
    const server = await startLocalServer({ dataDir, port: 0 });
    options.log?.(`local backend: built-in Batch API server at ${server.url} (state in ${dataDir})`);
    return {
      client: new OpenAI({ apiKey: 'local', baseURL: server.url, maxRetries: 4 }),
      name: 'local',
      redact: (text) => text,
      close: () => server.close(),
    };
  }
  const apiKey = options.apiKey ?? process.env.OPENAI_API_KEY;
  if (!apiKey) {
    throw new BatchpipeError(
      ErrorCodes.USAGE_NO_KEY,
      'no OpenAI API key: set OPENAI_API_KEY (for OpenAI or --base-url), or use --backend local to run on the built-in local Batch API server',
    );
  }
  const baseURL = options.baseUrl ?? process.env.OPENAI_BASE_URL;
  const client = new OpenAI({ apiKey, ...(baseURL ? { baseURL } : {}), maxRetries: 4 });
  return {
    client,
    name: 'openai',
    redact: (text) => text.split(apiKey).join('[redacted]'),
    close: async () => {},
  };
}

/** `runs/fb.db` → `runs/fb.server/`: the local backend's state travels with the ledger. */
export function localServerDir(ledgerPath: string): string {
  return join(dirname(ledgerPath), `${basename(ledgerPath, extname(ledgerPath))}.server`);
}

/**
 * The local backend: the built-in Batch API server (src/server) started in this process, its state
 * beside the ledger, and the run's provider talking to it over real HTTP through its own SDK (the
 * server speaks OpenAI's, Anthropic's and Gemini's APIs).
 */

import { basename, dirname, extname, join } from 'node:path';
import OpenAI from 'openai';
import type { ProviderName } from '../../dialects/dialect.js';
import { startLocalServer } from '../../server/index.js';
import { redactUrl } from '../../server/options.js';
import { openAIProvider, SDK_RETRIES } from '../openai/openai-provider.js';
import type { BatchProvider } from '../port.js';

/** A local server answers within seconds: poll every second. */
const LOCAL_POLL_MS = 1000;

/** Starts the built-in server for the ledger at `ledgerPath`; `close()` stops it. */
export async function startLocalProvider(options: {
  /** Whose API the provider speaks to the server (default openai). */
  provider?: ProviderName | undefined;
  ledgerPath: string;
  /** An OpenAI-compatible chat server the built-in one forwards requests to (its key: BATCHPIPE_UPSTREAM_API_KEY). */
  upstream?: string | undefined;
  log?: ((line: string) => void) | undefined;
}): Promise<BatchProvider> {
  const dataDir = localServerDir(options.ledgerPath);
  const upstreamApiKey = process.env.BATCHPIPE_UPSTREAM_API_KEY;
  const server = await startLocalServer({
    dataDir,
    port: 0,
    ...(options.upstream === undefined ? {} : { upstream: options.upstream }),
    ...(upstreamApiKey ? { upstreamApiKey } : {}),
  });
  const answers =
    options.upstream === undefined ? 'synthetic answers' : `answers from ${redactUrl(options.upstream)}`;
  options.log?.(
    `local backend: built-in Batch API server at ${server.url} (${answers}; state in ${dataDir})`,
  );
  if (options.provider === 'gemini') {
    // The Gemini SDK adds `/v1beta/…` itself: its base URL is the server's origin.
    const { openGeminiProvider } = await import('../gemini/open-gemini.js');
    return openGeminiProvider({
      apiKey: 'local',
      baseUrl: server.origin,
      secret: false,
      pollIntervalMs: LOCAL_POLL_MS,
      close: () => server.close(),
    });
  }
  if (options.provider === 'anthropic') {
    // Another provider's SDK is loaded only for its runs (open-provider.ts says why).
    const [{ default: Anthropic }, { anthropicProvider }] = await Promise.all([
      import('@anthropic-ai/sdk'),
      import('../anthropic/anthropic-provider.js'),
    ]);
    return anthropicProvider({
      // The Anthropic SDK adds `/v1/…` itself: its base URL is the server's origin.
      client: new Anthropic({ apiKey: 'local', baseURL: server.origin, maxRetries: SDK_RETRIES }),
      pollIntervalMs: LOCAL_POLL_MS,
      close: () => server.close(),
    });
  }
  return openAIProvider({
    client: new OpenAI({ apiKey: 'local', baseURL: server.url, maxRetries: SDK_RETRIES }),
    pollIntervalMs: LOCAL_POLL_MS,
    close: () => server.close(),
  });
}

/** `runs/fb.db` → `runs/fb.server/`: the local backend's state travels with the ledger. */
export function localServerDir(ledgerPath: string): string {
  return join(dirname(ledgerPath), `${basename(ledgerPath, extname(ledgerPath))}.server`);
}

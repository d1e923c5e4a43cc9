/**
 * Opens the Gemini provider: Google's Batch API with a key from `GEMINI_API_KEY` / `GOOGLE_API_KEY`
 * (or `baseUrl`, a `batchpipe serve` say), or the built-in server beside the ledger, which speaks the
 * Gemini Files and Batch API too. The key is handed to the SDK only; it is never stored or printed.
 */
import { GoogleGenAI } from '@google/genai';
import { BatchpipeError, ErrorCodes } from '../../errors.js';
import { startLocalServer } from '../../server/index.js';
import { localServerDir } from '../local/local-provider.js';
import { ServerClock } from '../openai/server-clock.js';
import type { BatchProvider } from '../port.js';
import { geminiHttpOptions, geminiProvider } from './gemini-provider.js';

/** Google's endpoint, the SDK's default. */
const GEMINI_BASE_URL = 'https://generativelanguage.googleapis.com';
/** A server on this machine (the local backend, a `batchpipe serve`) answers in seconds: poll every second. */
const NEAR_POLL_MS = 1000;

export interface OpenGeminiOptions {
  /** Defaults to GOOGLE_API_KEY, then GEMINI_API_KEY (the SDK's own order). */
  apiKey?: string | undefined;
  /** Another Gemini-compatible API (a `batchpipe serve`): its origin, without `/v1beta`. */
  baseUrl?: string | undefined;
}

/** Gemini's Batch API (or `baseUrl`) as a provider. Throws `BP_NO_API_KEY` without a key. */
export function openGeminiProvider(options: OpenGeminiOptions = {}): BatchProvider {
  const apiKey = options.apiKey ?? (process.env.GOOGLE_API_KEY || process.env.GEMINI_API_KEY);
  if (!apiKey) throw noGeminiKeyError();
  return geminiOver(options.baseUrl, apiKey, {
    redact: (text) => text.split(apiKey).join('[redacted]'),
    ...(options.baseUrl === undefined ? {} : { pollIntervalMs: NEAR_POLL_MS }),
  });
}

/** The built-in server, started in this process with its state beside the ledger, spoken to as Gemini. */
export async function startLocalGeminiProvider(options: {
  ledgerPath: string;
  log?: ((line: string) => void) | undefined;
}): Promise<BatchProvider> {
  const dataDir = localServerDir(options.ledgerPath);
  const server = await startLocalServer({ dataDir, port: 0 });
  options.log?.(
    `local backend: built-in Gemini Batch API server at ${server.origin} (synthetic answers; state in ${dataDir})`,
  );
  return geminiOver(server.origin, 'local', { pollIntervalMs: NEAR_POLL_MS, close: () => server.close() });
}

function geminiOver(
  baseUrl: string | undefined,
  apiKey: string,
  extra: { pollIntervalMs?: number; close?: () => Promise<void>; redact?: (text: string) => string },
): BatchProvider {
  const clock = new ServerClock();
  const client = new GoogleGenAI({ apiKey, httpOptions: geminiHttpOptions(baseUrl, clock) });
  return geminiProvider({
    client,
    clock,
    baseUrl: baseUrl ?? GEMINI_BASE_URL,
    ...extra,
  });
}

/** `BP_NO_API_KEY` for Gemini: what to set, or the backend that needs no key. */
export function noGeminiKeyError(): BatchpipeError {
  return new BatchpipeError(
    ErrorCodes.USAGE_NO_KEY,
    'no Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY), or use --backend local to run on the built-in local Batch API server',
  );
}

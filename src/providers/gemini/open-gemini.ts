/**
 * Makes the Gemini provider's SDK client: `@google/genai` with its base URL, the key handed to the SDK
 * only (never stored or printed; removed from messages by `redact`), and the transport hook that reads
 * the API's clock. `openProvider` resolves the key (GOOGLE_API_KEY, then GEMINI_API_KEY: the SDK's own
 * order) and the local backend points it at the built-in server.
 */
import { GoogleGenAI } from '@google/genai';
import { ServerClock } from '../openai/server-clock.js';
import type { BatchProvider } from '../port.js';
import { secretRedactor } from '../redact.js';
import { geminiHttpOptions, geminiProvider } from './gemini-provider.js';

/** Google's endpoint, the SDK's default. */
const GEMINI_BASE_URL = 'https://generativelanguage.googleapis.com';

export interface GeminiClientOptions {
  apiKey: string;
  /** Another Gemini API (a `batchpipe serve`, the local backend): its origin, without `/v1beta`. */
  baseUrl?: string | undefined;
  /** True when the key is a real secret to remove from messages (not the local backend's placeholder). */
  secret: boolean;
  pollIntervalMs?: number | undefined;
  close?: (() => Promise<void>) | undefined;
}

/** The Gemini Batch API (or `baseUrl`) as a provider. */
export function openGeminiProvider(options: GeminiClientOptions): BatchProvider {
  const { apiKey, baseUrl } = options;
  const clock = new ServerClock();
  const client = new GoogleGenAI({ apiKey, httpOptions: geminiHttpOptions(baseUrl, clock) });
  return geminiProvider({
    client,
    clock,
    baseUrl: baseUrl ?? GEMINI_BASE_URL,
    ...(options.secret ? { redact: secretRedactor(apiKey) } : {}),
    pollIntervalMs: options.pollIntervalMs,
    close: options.close,
  });
}

/**
 * Opens the provider a run talks to, from a backend name: `openai` (OpenAI, or any OpenAI-compatible
 * Batch API by base URL) or `local` (the built-in server beside the ledger). The API key is read
 * here and handed to the SDK; it is never stored or printed.
 */
import OpenAI, { AzureOpenAI } from 'openai';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { startLocalProvider } from './local/local-provider.js';
import { openAIProvider, SDK_RETRIES } from './openai/openai-provider.js';
import type { BatchProvider } from './port.js';
import { secretRedactor } from './redact.js';

export type BackendName = 'openai' | 'local';

export interface OpenProviderOptions {
  /** `openai` (default) or `local`. */
  backend?: BackendName | undefined;
  /** The run's ledger: the local backend keeps its server's state beside it (required for `local`). */
  ledgerPath?: string | undefined;
  /** Any OpenAI-compatible Batch API (else OPENAI_BASE_URL, else OpenAI's). */
  baseUrl?: string | undefined;
  /** Defaults to OPENAI_API_KEY (AZURE_OPENAI_API_KEY for `azure`). */
  apiKey?: string | undefined;
  /** The local backend's server answers from this OpenAI-compatible chat server instead of its synthetic responder. */
  upstream?: string | undefined;
  /**
   * Azure OpenAI through the SDK's `AzureOpenAI` client (the `api-key` header, `?api-version=`, the
   * resource's `/openai/...` paths); the endpoint defaults to AZURE_OPENAI_ENDPOINT and the version
   * to OPENAI_API_VERSION. `model` is the deployment's name.
   */
  azure?: { endpoint?: string | undefined; apiVersion?: string | undefined } | undefined;
  /** Where to say which backend is in use (stderr for the CLI). */
  log?: ((line: string) => void) | undefined;
}

/** A Batch API named by `baseUrl` (a `batchpipe serve`, a test server) is polled every second. */
const BASE_URL_POLL_MS = 1000;

/**
 * Opens the provider: the official SDK against OpenAI (or `baseUrl`), or against the built-in Batch
 * API server started in this process with its state beside the ledger. `close()` it when done.
 *
 * @example
 * const provider = await openProvider({ backend: 'local', ledgerPath: 'runs/fb.db' });
 * try {
 *   await drive({ ledger, provider });
 * } finally {
 *   await provider.close();
 * }
 */
export async function openProvider(options: OpenProviderOptions = {}): Promise<BatchProvider> {
  if (options.backend === 'local') {
    if (options.ledgerPath === undefined) {
      throw new BatchpipeError(ErrorCodes.USAGE, 'the local backend needs the ledger path (ledgerPath)');
    }
    return startLocalProvider({
      ledgerPath: options.ledgerPath,
      upstream: options.upstream,
      log: options.log,
    });
  }
  if (options.azure) return openAzureProvider(options, options.azure);
  const apiKey = options.apiKey ?? process.env.OPENAI_API_KEY;
  if (!apiKey) throw noApiKeyError();
  const baseURL = options.baseUrl ?? process.env.OPENAI_BASE_URL;
  return openAIProvider({
    client: new OpenAI({ apiKey, ...(baseURL ? { baseURL } : {}), maxRetries: SDK_RETRIES }),
    redact: secretRedactor(apiKey),
    // A base URL (flag or OPENAI_BASE_URL) names a compatible API or a local server, polled as often.
    ...(baseURL ? { pollIntervalMs: BASE_URL_POLL_MS } : {}),
  });
}

function openAzureProvider(
  options: OpenProviderOptions,
  azure: NonNullable<OpenProviderOptions['azure']>,
): BatchProvider {
  const endpoint = azure.endpoint ?? process.env.AZURE_OPENAI_ENDPOINT;
  const apiVersion = azure.apiVersion ?? process.env.OPENAI_API_VERSION;
  const apiKey = options.apiKey ?? process.env.AZURE_OPENAI_API_KEY;
  const missing = [
    endpoint ? '' : '--azure-endpoint (or AZURE_OPENAI_ENDPOINT)',
    apiVersion ? '' : '--api-version (or OPENAI_API_VERSION)',
  ].filter((m) => m !== '');
  if (missing.length > 0) {
    throw new BatchpipeError(ErrorCodes.USAGE, `Azure OpenAI needs ${missing.join(' and ')}`);
  }
  if (!apiKey) {
    throw new BatchpipeError(ErrorCodes.USAGE_NO_KEY, 'no Azure OpenAI API key: set AZURE_OPENAI_API_KEY');
  }
  return openAIProvider({
    client: new AzureOpenAI({
      endpoint: endpoint!,
      apiVersion: apiVersion!,
      apiKey,
      // null: the endpoint names the API even where OPENAI_BASE_URL is set (for another provider).
      baseURL: null,
      maxRetries: SDK_RETRIES,
    }),
    redact: secretRedactor(apiKey),
    // An endpoint on this machine (a `batchpipe serve` standing in for Azure) answers in seconds.
    ...(/^https?:\/\/(127\.|localhost[:/]|\[::1\])/.test(endpoint!)
      ? { pollIntervalMs: BASE_URL_POLL_MS }
      : {}),
  });
}

/** `BP_NO_API_KEY`: what to set, or the backend that needs no key. */
export function noApiKeyError(): BatchpipeError {
  return new BatchpipeError(
    ErrorCodes.USAGE_NO_KEY,
    'no OpenAI API key: set OPENAI_API_KEY (for OpenAI or --base-url), or use --backend local to run on the built-in local Batch API server',
  );
}

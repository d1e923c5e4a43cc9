/**
 * Opens the provider a run talks to, from a provider name (`openai`, `anthropic`, `gemini`) and a backend name:
 * `openai` (the provider's API: OpenAI or any OpenAI-compatible Batch API by base URL; Anthropic's) or
 * `local` (the built-in server beside the ledger, which speaks every provider's API). The API key is
 * read here and handed to the SDK; it is never stored or printed. The other providers' SDKs and the
 * local server are imported only when chosen: loaded, their code is ~10 MB of the heap for the whole
 * run, and V8 lets a heap grow to a few times what stays live.
 */
import OpenAI, { AzureOpenAI } from 'openai';
import { DEFAULT_PROVIDER, type ProviderName } from '../dialects/dialect.js';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { openAIProvider, SDK_RETRIES } from './openai/openai-provider.js';
import type { BatchProvider } from './port.js';
import { secretRedactor } from './redact.js';

export type BackendName = 'openai' | 'local';

export interface OpenProviderOptions {
  /** The Batch API spoken: `openai` (default, and every compatible API), `anthropic` or `gemini`. */
  provider?: ProviderName | undefined;
  /** `openai` (default: the provider's own API) or `local`. */
  backend?: BackendName | undefined;
  /** The run's ledger: the local backend keeps its server's state beside it (required for `local`). */
  ledgerPath?: string | undefined;
  /** Any OpenAI-compatible Batch API (else OPENAI_BASE_URL, else OpenAI's); for anthropic, else ANTHROPIC_BASE_URL; for gemini, the API's origin (else the SDK's default). */
  baseUrl?: string | undefined;
  /** Defaults to OPENAI_API_KEY (AZURE_OPENAI_API_KEY for `azure`, ANTHROPIC_API_KEY for anthropic, GOOGLE_API_KEY or GEMINI_API_KEY for gemini). */
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
    const { startLocalProvider } = await import('./local/local-provider.js');
    return startLocalProvider({
      provider: options.provider ?? DEFAULT_PROVIDER,
      ledgerPath: options.ledgerPath,
      upstream: options.upstream,
      log: options.log,
    });
  }
  if (options.provider === 'anthropic') return openAnthropicProvider(options);
  if (options.provider === 'gemini') {
    const apiKey = options.apiKey ?? (process.env.GOOGLE_API_KEY || process.env.GEMINI_API_KEY);
    if (!apiKey) throw noApiKeyError('gemini');
    // The SDK adds `/v1beta/…` itself: a base URL given with `/v1` (as `batchpipe serve` prints it) or `/v1beta` is cut back.
    const baseUrl = options.baseUrl?.replace(/\/v1(beta)?\/?$/, '');
    const { openGeminiProvider } = await import('./gemini/open-gemini.js');
    return openGeminiProvider({
      apiKey,
      baseUrl,
      secret: true,
      ...(options.baseUrl ? { pollIntervalMs: BASE_URL_POLL_MS } : {}),
    });
  }
  if (options.provider !== undefined && options.provider !== 'openai') throw unavailable(options.provider);
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

async function openAnthropicProvider(options: OpenProviderOptions): Promise<BatchProvider> {
  const apiKey = options.apiKey ?? process.env.ANTHROPIC_API_KEY;
  if (!apiKey) throw noApiKeyError('anthropic');
  // Anthropic's SDK adds `/v1/…` to its base URL: a URL given with `/v1` (as `batchpipe serve`
  // prints it, and as --base-url takes it for OpenAI) means the same API.
  const baseURL = (options.baseUrl ?? process.env.ANTHROPIC_BASE_URL)?.replace(/\/v1\/?$/, '');
  const [{ default: Anthropic }, { anthropicProvider }] = await Promise.all([
    import('@anthropic-ai/sdk'),
    import('./anthropic/anthropic-provider.js'),
  ]);
  return anthropicProvider({
    client: new Anthropic({ apiKey, ...(baseURL ? { baseURL } : {}), maxRetries: SDK_RETRIES }),
    redact: secretRedactor(apiKey),
    ...(baseURL ? { pollIntervalMs: BASE_URL_POLL_MS } : {}),
  });
}

function unavailable(provider: string): BatchpipeError {
  return new BatchpipeError(ErrorCodes.USAGE, `--provider ${provider} is not available yet`);
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

/** The environment variable that holds each provider's API key. */
const KEY_VARIABLES: Record<ProviderName, string> = {
  openai: 'OPENAI_API_KEY',
  anthropic: 'ANTHROPIC_API_KEY',
  gemini: 'GEMINI_API_KEY',
};

/** Whether the environment holds `provider`'s API key (Gemini's may also be GOOGLE_API_KEY). */
export function hasApiKey(provider: ProviderName = DEFAULT_PROVIDER): boolean {
  if (provider === 'gemini' && process.env.GOOGLE_API_KEY) return true;
  return Boolean(process.env[KEY_VARIABLES[provider]]);
}

/** `BP_NO_API_KEY`: what to set, or the backend that needs no key. */
export function noApiKeyError(provider: ProviderName = DEFAULT_PROVIDER): BatchpipeError {
  if (provider !== 'openai') {
    const name = provider === 'anthropic' ? 'Anthropic' : 'Gemini';
    const variables = provider === 'gemini' ? 'GEMINI_API_KEY (or GOOGLE_API_KEY)' : KEY_VARIABLES[provider];
    return new BatchpipeError(
      ErrorCodes.USAGE_NO_KEY,
      `no ${name} API key: set ${variables}, or use --backend local to run on the built-in local Batch API server`,
    );
  }
  return new BatchpipeError(
    ErrorCodes.USAGE_NO_KEY,
    'no OpenAI API key: set OPENAI_API_KEY (for OpenAI or --base-url), or use --backend local to run on the built-in local Batch API server',
  );
}

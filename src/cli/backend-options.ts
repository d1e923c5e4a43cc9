import { existsSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { DEFAULT_PROVIDER, type ProviderName } from '../dialects/dialect.js';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { BatchTables } from '../ledger/batches.js';
import type { Ledger } from '../ledger/ledger.js';
import { type BackendName, hasApiKey, noApiKeyError, openProvider } from '../providers/open-provider.js';
import type { BatchProvider } from '../providers/port.js';
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_BATCHES, type SchedulerOptions } from '../scheduler/api.js';
import { costSettingsFromFlags, type PriceFlags } from './cost-options.js';
import { intOption, numberOption } from './options.js';
import type { BatchHome } from './progress/in-flight.js';
import { addProviderOption, runProvider } from './provider-option.js';
import type { Reporter } from './reporter.js';

/** Flags every command that talks to a Batch API shares (`run` and `submit` add the price flags). */
export interface BackendFlags extends PriceFlags {
  ledger: string;
  provider?: ProviderName;
  backend: BackendName;
  baseUrl?: string;
  upstream?: string;
  azureEndpoint?: string;
  apiVersion?: string;
  maxBatches: number;
  maxEnqueuedTokens?: number;
  maxAttempts: number;
  pollInterval?: number;
}

export function addBackendOptions(cmd: Command): Command {
  return addProviderOption(cmd)
    .addOption(
      new Option(
        '--backend <name>',
        "openai: the provider's API (OPENAI_API_KEY, OPENAI_BASE_URL; ANTHROPIC_API_KEY for --provider anthropic, GEMINI_API_KEY for gemini), or local (built-in server beside the ledger, synthetic answers)",
      )
        .choices(['openai', 'local'])
        .default('openai'),
    )
    .option(
      '--base-url <url>',
      'any OpenAI-compatible Batch API, e.g. Groq or a `batchpipe serve` (default: OPENAI_BASE_URL)',
    )
    .option(
      '--upstream <url>',
      'with --backend local: the built-in server answers from this OpenAI-compatible chat server (llama.cpp, Ollama, vLLM)',
    )
    .option(
      '--azure-endpoint <url>',
      'Azure OpenAI resource, e.g. https://NAME.openai.azure.com (default: AZURE_OPENAI_ENDPOINT; key: AZURE_OPENAI_API_KEY)',
    )
    .option(
      '--api-version <version>',
      'Azure OpenAI api-version, e.g. 2025-03-01-preview (default: OPENAI_API_VERSION)',
    )
    .option(
      '--max-batches <n>',
      'unfinished batches at most',
      intOption('--max-batches'),
      DEFAULT_MAX_BATCHES,
    )
    .option(
      '--max-enqueued-tokens <n>',
      'estimated tokens queued per model at most',
      intOption('--max-enqueued-tokens'),
    )
    .option(
      '--max-attempts <n>',
      'tries per request before a retryable failure is final',
      intOption('--max-attempts'),
      DEFAULT_MAX_ATTEMPTS,
    )
    .option(
      '--poll-interval <seconds>',
      'first wait between polls; grows while nothing changes (default: 1 locally, 60 otherwise)',
      numberOption('--poll-interval', { min: 0, aboveMin: true, max: 86_400 }),
    );
}

/**
 * Flags that cannot go together: a usage error naming both, before anything is opened; and the API
 * key of `provider` (the run's: given when the ledger is open; else `--provider`, else openai for a
 * ledger yet to be made, else unknown until the ledger is read).
 */
export function checkBackendFlags(flags: BackendFlags, provider?: ProviderName): void {
  const usage = (message: string) => new BatchpipeError(ErrorCodes.USAGE, message);
  if (flags.backend === 'local') {
    if (flags.baseUrl !== undefined) {
      throw usage(
        '--backend local starts the built-in server itself: drop --base-url, or drop --backend local to use the Batch API at --base-url',
      );
    }
    if (flags.azureEndpoint !== undefined) throw usage('--azure-endpoint is not for --backend local');
  } else if (flags.upstream !== undefined) {
    throw usage(
      '--upstream is for --backend local (the built-in server forwards to it); for a `batchpipe serve` of your own, start it with `batchpipe serve --upstream URL`',
    );
  }
  if (flags.azureEndpoint !== undefined && flags.baseUrl !== undefined) {
    throw usage('--azure-endpoint and --base-url both name the API: give one');
  }
  const azure = flags.azureEndpoint !== undefined || flags.apiVersion !== undefined;
  const speaks = provider ?? flags.provider ?? (existsSync(flags.ledger) ? undefined : DEFAULT_PROVIDER);
  if (azure && speaks !== undefined && speaks !== 'openai') {
    throw usage(`--azure-endpoint and --api-version are for --provider openai, not ${speaks}`);
  }
  // The built-in server forwards only OpenAI requests upstream: others would get synthetic answers.
  if (flags.upstream !== undefined && speaks !== undefined && speaks !== 'openai') {
    throw usage(
      `--upstream forwards OpenAI requests only; --provider ${speaks} on --backend local gets the built-in synthetic answers`,
    );
  }
  // Said before any work (a prepare of millions of rows), not when the first call needs the key.
  if (flags.backend === 'openai' && !azure && speaks !== undefined && !hasApiKey(speaks)) {
    throw noApiKeyError(speaks);
  }
}

/** Where the batches of these flags run: the local backend's server lives in this process. */
export function batchHome(flags: BackendFlags): BatchHome {
  return flags.backend === 'local' ? 'in-process' : 'provider';
}

/** Opens the provider of the ledger's run (`--provider` naming another is refused). */
export async function openProviderFromFlags(
  flags: BackendFlags,
  reporter: Reporter,
  ledger: Ledger,
): Promise<BatchProvider> {
  const name = runProvider(ledger, flags.provider);
  checkBackendFlags(flags, name);
  const provider = await openProvider({
    provider: name,
    backend: flags.backend,
    ledgerPath: flags.ledger,
    baseUrl: flags.baseUrl,
    upstream: flags.upstream,
    azure:
      flags.azureEndpoint !== undefined || flags.apiVersion !== undefined
        ? { endpoint: flags.azureEndpoint, apiVersion: flags.apiVersion }
        : undefined,
    log: (line) => reporter.log(line),
  });
  reporter.setRedact((line) => provider.redact(line));
  return provider;
}

/**
 * The scheduler's options from the flags; its events go to the reporter, which is shown the
 * ledger's counts and the batches already open.
 */
export function schedulerOptionsFromFlags(
  flags: BackendFlags,
  ledger: Ledger,
  provider: BatchProvider,
  reporter: Reporter,
): SchedulerOptions {
  reporter.countFrom(() => ledger.counts());
  const tables = BatchTables.of(ledger);
  reporter.progress.seed(
    tables.openBatches().map((b) => ({
      id: b.remote_id!,
      file: tables.file(b.file_id).name,
      status: b.status ?? 'validating',
      counts: b.request_counts ? JSON.parse(b.request_counts) : null,
      seenAt: b.create_started_at * 1000,
    })),
  );
  return {
    ledger,
    provider,
    onEvent: reporter.onEvent,
    maxBatches: flags.maxBatches,
    maxEnqueuedTokens: flags.maxEnqueuedTokens,
    maxAttempts: flags.maxAttempts,
    // The progress adds up what each result file cost (the built-in prices unless --price-file).
    prices: costSettingsFromFlags(flags),
    pollIntervalMs: flags.pollInterval === undefined ? undefined : flags.pollInterval * 1000,
  };
}

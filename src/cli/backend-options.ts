import { type Command, Option } from 'commander';
import type { Ledger } from '../ledger/ledger.js';
import { type BackendName, openProvider } from '../providers/open-provider.js';
import type { BatchProvider } from '../providers/port.js';
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_BATCHES, type SchedulerOptions } from '../scheduler/api.js';
import { intOption, numberOption } from './options.js';
import { stderrRenderer } from './render-events.js';

/** Flags every command that talks to a Batch API shares. */
export interface BackendFlags {
  ledger: string;
  backend: BackendName;
  baseUrl?: string;
  maxBatches: number;
  maxEnqueuedTokens?: number;
  maxAttempts: number;
  pollInterval?: number;
}

export function addBackendOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--backend <name>',
        'openai (OPENAI_API_KEY, OPENAI_BASE_URL) or local (built-in server beside the ledger)',
      )
        .choices(['openai', 'local'])
        .default('openai'),
    )
    .option(
      '--base-url <url>',
      'any OpenAI-compatible Batch API, e.g. a `batchpipe serve` (default: OPENAI_BASE_URL)',
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

export function openProviderFromFlags(flags: BackendFlags): Promise<BatchProvider> {
  return openProvider({
    backend: flags.backend,
    ledgerPath: flags.ledger,
    baseUrl: flags.baseUrl,
    log: (line) => process.stderr.write(`batchpipe: ${line}\n`),
  });
}

/** The scheduler's options from the flags; its events render as the CLI's log lines on stderr. */
export function schedulerOptionsFromFlags(
  flags: BackendFlags,
  ledger: Ledger,
  provider: BatchProvider,
): SchedulerOptions {
  return {
    ledger,
    provider,
    onEvent: stderrRenderer((line) => provider.redact(line)),
    maxBatches: flags.maxBatches,
    maxEnqueuedTokens: flags.maxEnqueuedTokens,
    maxAttempts: flags.maxAttempts,
    pollIntervalMs: flags.pollInterval === undefined ? undefined : flags.pollInterval * 1000,
  };
}

import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { BatchpipeError, ErrorCodes } from '../../errors.js';
import { parseStall, STALL_STATUSES, type StallSeconds } from '../../server/faults/stall.js';
import { startLocalServer } from '../../server/index.js';
import {
  DEFAULT_HEADERS_TIMEOUT_SECONDS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_REQUEST_TIMEOUT_SECONDS,
} from '../../server/options.js';
import { examples } from '../help.js';
import { durationOption, numberOption } from '../options.js';

interface ServeOptions {
  port: number;
  host: string;
  data: string;
  apiKey?: string;
  apiKeyFile?: string;
  seed: number;
  completionWindow: number;
  failRate: number;
  httpFaultRate: number;
  flexUnavailable: number;
  enqueuedTokenLimit?: number;
  latency: number;
  clockSkew: number;
  truncateDownloads: number;
  loseCreateResponses: number;
  nullOutputFiles: number;
  failValidationLine?: number;
  stall: StallSeconds;
  upstream?: string;
  upstreamApiKey?: string;
  concurrency: number;
  rpm?: number;
  tpm?: number;
  maxConnections: number;
  headersTimeout?: number;
  requestTimeout: number;
}

/**
 * `batchpipe serve`: the built-in Batch API server on its own (OpenAI, Anthropic and Gemini APIs). The
 * URL goes to stderr; SIGINT or SIGTERM stops it cleanly (unfinished batches continue at the next start
 * on the same `--data`).
 */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'run the built-in local Batch API server (OpenAI Files + Batches, Anthropic Message Batches, Gemini Files + Batch API over HTTP)',
    )
    .option(
      '--port <n>',
      'TCP port (0 picks a free one)',
      numberOption('--port', { min: 0, max: 65_535, integer: true }),
      8787,
    )
    .option('--host <address>', 'interface to bind', '127.0.0.1')
    .option('--data <dir>', 'directory for the server state and files', '.batchpipe/server')
    .addOption(
      new Option(
        '--api-key <key>',
        'accept only this bearer key (default: any key). Other users can see it in `ps`: prefer --api-key-file or the env BATCHPIPE_SERVE_API_KEY',
      ).conflicts('apiKeyFile'),
    )
    .option(
      '--api-key-file <file>',
      'accept only the bearer key held in FILE (surrounding whitespace ignored)',
    )
    .option(
      '--seed <n>',
      'seed of the built-in responder and the fault draws',
      numberOption('--seed', { min: 0, max: 2 ** 31, integer: true }),
      0,
    )
    .addOption(
      new Option('--completion-window <duration>', 'how long a batch may run: 24h, 30m, 5s, …')
        .argParser(durationOption('--completion-window'))
        .default(86_400, '24h'),
    )
    .option(
      '--fail-rate <f>',
      'fraction of requests answered with an error in the output (500/429; Anthropic 500/529)',
      numberOption('--fail-rate', { min: 0, max: 1 }),
      0,
    )
    .option(
      '--http-fault-rate <f>',
      'fraction of API calls answered 500/429 with Retry-After (Anthropic also 529, Gemini 503)',
      numberOption('--http-fault-rate', { min: 0, max: 1 }),
      0,
    )
    .option(
      '--flex-unavailable <f>',
      'fraction of synchronous service_tier: flex calls refused 429 resource_unavailable (no flex capacity)',
      numberOption('--flex-unavailable', { min: 0, max: 1 }),
      0,
    )
    .option(
      '--enqueued-token-limit <n>',
      'tokens queued per model above which a batch fails',
      numberOption('--enqueued-token-limit', { min: 0, integer: true }),
    )
    .option(
      '--latency <ms>',
      'milliseconds each request takes (0.5×–1.5×)',
      numberOption('--latency', { min: 0, max: 3_600_000 }),
      0,
    )
    .option(
      '--clock-skew <seconds>',
      "seconds the server's clock runs ahead (negative: behind): timestamps, expiry, the date header",
      numberOption('--clock-skew', { min: -31_536_000, max: 31_536_000 }),
      0,
    )
    .option(
      '--truncate-downloads <n>',
      'the first N downloads of output/error files end after half their lines',
      numberOption('--truncate-downloads', { min: 0, integer: true }),
      0,
    )
    .option(
      '--lose-create-responses <n>',
      'the first N uploads and batch creations take effect, then lose their response',
      numberOption('--lose-create-responses', { min: 0, integer: true }),
      0,
    )
    .option(
      '--null-output-files <n>',
      'the first N completed batches are retrieved once with output_file_id null',
      numberOption('--null-output-files', { min: 0, integer: true }),
      0,
    )
    .option(
      '--fail-validation-line <n>',
      'a batch of N or more requests fails validation naming line N',
      numberOption('--fail-validation-line', { min: 1, integer: true }),
    )
    .option(
      '--stall <status=seconds>',
      'hold every batch this long in validating, in_progress or finalizing (repeatable), as a batch that seems hung',
      stallOption,
      {},
    )
    .option(
      '--upstream <url>',
      'forward OpenAI requests to this OpenAI-compatible base URL (e.g. http://127.0.0.1:8080/v1)',
    )
    .option(
      '--upstream-api-key <key>',
      'bearer key for the upstream (visible in `ps`: prefer the env BATCHPIPE_UPSTREAM_API_KEY)',
    )
    .option(
      '--concurrency <n>',
      'requests running at once across all batches',
      numberOption('--concurrency', { min: 1, max: 10_000, integer: true }),
      16,
    )
    .option(
      '--rpm <n>',
      'requests per minute the synchronous endpoints take; more are answered 429 in the shape of the API called, with its rate-limit headers',
      numberOption('--rpm', { min: 1, max: 100_000_000, integer: true }),
    )
    .option(
      '--tpm <n>',
      'tokens per minute (input + max output) the synchronous endpoints take; more are answered 429',
      numberOption('--tpm', { min: 1, max: 10_000_000_000, integer: true }),
    )
    .option(
      '--max-connections <n>',
      'connections open at once; more are closed as soon as accepted (clients retry)',
      numberOption('--max-connections', { min: 1, max: 1_000_000, integer: true }),
      DEFAULT_MAX_CONNECTIONS,
    )
    .addOption(
      new Option(
        '--headers-timeout <duration>',
        `time a client has to send a request's headers (default: ${DEFAULT_HEADERS_TIMEOUT_SECONDS}s, or --request-timeout if shorter)`,
      ).argParser(durationOption('--headers-timeout')),
    )
    .addOption(
      new Option(
        '--request-timeout <duration>',
        'time a client has to send a whole request, body included; then 408 and closed',
      )
        .argParser(durationOption('--request-timeout'))
        .default(DEFAULT_REQUEST_TIMEOUT_SECONDS, `${DEFAULT_REQUEST_TIMEOUT_SECONDS / 60}m`),
    )
    .addHelpText(
      'after',
      examples([
        'batchpipe serve --port 8787 --data .batchpipe/server   # then: --base-url http://127.0.0.1:8787/v1',
        'batchpipe serve --upstream http://127.0.0.1:8080/v1 --latency 200 --stall finalizing=60',
        'batchpipe serve --rpm 600 --tpm 200000   # rate limits of the synchronous endpoints (run --mode direct)',
      ]),
    )
    .action(async (options: ServeOptions) => {
      await serve(options);
    });
}

async function serve(options: ServeOptions): Promise<void> {
  const log = (line: string) => process.stderr.write(`batchpipe serve: ${line}\n`);
  if (options.headersTimeout !== undefined && options.headersTimeout > options.requestTimeout) {
    throw usage(
      '--headers-timeout must not be longer than --request-timeout (the request includes its headers)',
    );
  }
  if (options.apiKey === '')
    throw usage('--api-key is empty: give the key, or leave the flag out to accept any key');
  const apiKey =
    options.apiKey ??
    (options.apiKeyFile !== undefined
      ? readKeyFile(options.apiKeyFile)
      : process.env.BATCHPIPE_SERVE_API_KEY);
  const upstreamApiKey = options.upstreamApiKey ?? process.env.BATCHPIPE_UPSTREAM_API_KEY;
  let server: Awaited<ReturnType<typeof startLocalServer>>;
  try {
    server = await startLocalServer({
      dataDir: options.data,
      port: options.port,
      host: options.host,
      seed: options.seed,
      completionWindowSeconds: options.completionWindow,
      failRate: options.failRate,
      httpFaultRate: options.httpFaultRate,
      flexUnavailable: options.flexUnavailable,
      latencyMs: options.latency,
      clockSkewSeconds: options.clockSkew,
      truncateDownloads: options.truncateDownloads,
      loseCreateResponses: options.loseCreateResponses,
      nullOutputFiles: options.nullOutputFiles,
      concurrency: options.concurrency,
      ...(options.rpm !== undefined ? { rpm: options.rpm } : {}),
      ...(options.tpm !== undefined ? { tpm: options.tpm } : {}),
      maxConnections: options.maxConnections,
      requestTimeoutSeconds: options.requestTimeout,
      log,
      stall: options.stall,
      ...(apiKey ? { apiKey } : {}),
      ...(upstreamApiKey ? { upstreamApiKey } : {}),
      ...(options.upstream !== undefined ? { upstream: options.upstream } : {}),
      ...(options.headersTimeout !== undefined ? { headersTimeoutSeconds: options.headersTimeout } : {}),
      ...(options.enqueuedTokenLimit !== undefined ? { enqueuedTokenLimit: options.enqueuedTokenLimit } : {}),
      ...(options.failValidationLine !== undefined ? { failValidationLine: options.failValidationLine } : {}),
    });
  } catch (err) {
    throw new BatchpipeError(
      ErrorCodes.IO,
      `cannot start the server: ${err instanceof Error ? err.message : String(err)}`,
      {
        cause: err,
      },
    );
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log(`${signal}: stopping (unfinished batches continue at the next start)`);
  await server.close();
}

/** One `--stall STATUS=SECONDS`, added to those before it. */
function stallOption(value: string, previous: StallSeconds): StallSeconds {
  const stall = parseStall(value);
  if (!stall) {
    throw usage(
      `--stall takes STATUS=SECONDS with STATUS one of ${STALL_STATUSES.join(', ')} (e.g. finalizing=60), got ${JSON.stringify(value)}`,
    );
  }
  return { ...previous, [stall.status]: stall.seconds };
}

function usage(message: string): BatchpipeError {
  return new BatchpipeError(ErrorCodes.USAGE, message);
}

/** A duration flag (`24h`, `30m`, `5s`, `0.5s`), or a usage error naming the flag. */
/**
 * The key in an `--api-key-file`, without surrounding whitespace (the newline an editor or `echo`
 * adds). Errors name the file, never its content.
 */
function readKeyFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw new BatchpipeError(ErrorCodes.IO, `--api-key-file ${file}: cannot read it (${reason})`);
  }
  const key = text.trim();
  if (key === '' || /\s/.test(key)) {
    throw usage(
      `--api-key-file ${file}: the file must hold one key${key === '' ? ' (it is empty)' : ' (it holds whitespace inside)'}`,
    );
  }
  return key;
}

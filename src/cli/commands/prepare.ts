import { basename, dirname, extname, join } from 'node:path';
import { type Command, Option } from 'commander';
import { ANTHROPIC_DIALECT } from '../../dialects/anthropic.js';
import type { ProviderName } from '../../dialects/dialect.js';
import { GEMINI_DIALECT } from '../../dialects/gemini.js';
import type { EventListener } from '../../events.js';
import { recordInputName } from '../../ledger/identity.js';
import { Ledger } from '../../ledger/ledger.js';
import {
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_LINES,
  type PrepareOptions,
  type PrepareSummary,
  prepare,
} from '../../prepare/prepare.js';
import { ENDPOINTS, type Endpoint } from '../../types.js';
import { userArgs } from '../argv.js';
import { repeatCommand } from '../command-line.js';
import { examples } from '../help.js';
import { onInterrupt } from '../interrupt.js';
import { intOption, numberOption, readJsonObjectFile } from '../options.js';
import { checkOutputPath } from '../output.js';
import { describeInFlight } from '../progress/in-flight.js';
import { addProviderOption, providerOfLedger } from '../provider-option.js';
import { addReportOptions, Reporter, type ReportFlags } from '../reporter.js';

/** More encode threads than this only add start-up and memory: the main thread keeps order alone. */
const MAX_THREADS = 64;

/**
 * The options `prepare` and `run` share: input, template, limits, rejects; and `estimate`, which
 * gives its own `--ledger` (`ledger: false`).
 */
export function addPrepareOptions(cmd: Command, options: { ledger?: boolean } = {}): Command {
  if (options.ledger !== false) {
    cmd.requiredOption(
      '--ledger <path>',
      'SQLite ledger of this run (created if missing; resumes if present)',
    );
  }
  return addProviderOption(cmd)
    .option(
      '--out <dir>',
      'directory for the request .jsonl files (default: beside the ledger, runs/fb.db → runs/fb.requests/)',
    )
    .option('--model <name>', 'model for every request')
    .option('--prompt <text>', 'user message template, e.g. "Classify: {{text}}"')
    .option('--system <text>', 'system message template')
    .option('--body <file.json>', 'request body template (any string value may hold {{field}})')
    .addOption(
      new Option(
        '--endpoint <path>',
        "Batch API endpoint (default: the provider's first, /v1/chat/completions; anthropic: /v1/messages; gemini: /v1beta/generateContent or /v1beta/embedContent)",
      ).choices(ENDPOINTS),
    )
    .option('--id-column <name>', 'use this field verbatim as custom_id')
    .option('--id <template>', 'custom_id template, e.g. "fb-{{id}}"')
    .addOption(
      new Option(
        '--input-format <format>',
        'input format (default: from the extension or first byte)',
      ).choices(['csv', 'jsonl', 'json']),
    )
    .option('--json-path <keys>', 'JSON input: the array of records at these dotted keys, e.g. data.items')
    .option(
      '--encoding <name>',
      "the input's encoding: windows-1252, latin1, macintosh, utf-16le, … (default: UTF-8, or UTF-16 by its BOM)",
    )
    .option(
      '--max-lines <n>',
      `requests per file (default and max: the provider's, ${DEFAULT_MAX_LINES} for openai, ${ANTHROPIC_DIALECT.limits.maxLines} for anthropic)`,
      intOption('--max-lines'),
    )
    .option(
      '--max-bytes <n>',
      `bytes per file (default and max: the provider's, ${DEFAULT_MAX_BYTES} for openai, ${ANTHROPIC_DIALECT.limits.maxBytes} for anthropic, ${GEMINI_DIALECT.limits.maxBytes} for gemini)`,
      intOption('--max-bytes'),
    )
    .option('--rejects <file>', 'write bad records here as JSONL and go on (default: stop at the first)')
    .option(
      '--threads <n>',
      'encode threads (default: 2 for large inputs, 0 = this thread)',
      numberOption('--threads', { min: 0, max: MAX_THREADS, integer: true }),
    );
}

export interface PrepareFlags {
  ledger: string;
  out?: string;
  model?: string;
  prompt?: string;
  system?: string;
  body?: string;
  provider?: ProviderName;
  endpoint?: Endpoint;
  idColumn?: string;
  id?: string;
  inputFormat?: 'csv' | 'jsonl' | 'json';
  jsonPath?: string;
  encoding?: string;
  maxLines?: number;
  maxBytes?: number;
  rejects?: string;
  threads?: number;
}

/** Maps CLI flags to the library's options. */
export function prepareOptionsFromFlags(
  file: string | undefined,
  flags: PrepareFlags,
  ledger: Ledger,
  onEvent?: EventListener,
): PrepareOptions {
  return {
    onEvent,
    input: file ?? '-',
    inputFormat: flags.inputFormat,
    jsonPath: flags.jsonPath,
    encoding: flags.encoding,
    ledger,
    outDir: flags.out ?? defaultOutDir(flags.ledger),
    provider: flags.provider ?? providerOfLedger(ledger),
    endpoint: flags.endpoint,
    model: flags.model,
    prompt: flags.prompt,
    system: flags.system,
    body: flags.body === undefined ? undefined : readJsonObjectFile('--body', flags.body),
    idColumn: flags.idColumn,
    id: flags.id,
    maxLines: flags.maxLines,
    maxBytes: flags.maxBytes,
    rejectsPath: flags.rejects,
    threads: flags.threads,
  };
}

/** `runs/fb.db` → `runs/fb.requests/`. */
export function defaultOutDir(ledgerPath: string): string {
  return join(dirname(ledgerPath), `${basename(ledgerPath, extname(ledgerPath))}.requests`);
}

export function formatPrepareSummary(s: PrepareSummary, outDir: string): string {
  const resumed =
    s.resumedFrom > 0 ? `, resumed after ${s.resumedFrom} records already in complete files` : '';
  return `prepared: read ${s.read} = staged ${s.staged} + rejected ${s.rejected}; ${s.files} files in ${outDir} (run ${s.runId}${resumed})\n`;
}

/**
 * Prepares the input named on the command line into `ledger`, with progress to the reporter: what
 * `prepare` does, and `run` before it sends anything. A signal meanwhile repeats the command.
 */
export async function prepareFromCli(
  file: string | undefined,
  flags: PrepareFlags,
  ledger: Ledger,
  reporter: Reporter,
  cmd: Command,
): Promise<void> {
  const input = file ?? '-';
  const stdin = input === '-';
  onInterrupt(() => ({
    doing: `${describeInFlight(reporter.progress, 'provider')}${stdin ? ' (give it the same input on stdin)' : ''}`,
    resume: repeatCommand(cmd, userArgs(cmd)),
  }));
  reporter.progress.phase = 'preparing';
  if (stdin && process.stdin.isTTY) reporter.log('reading records from stdin (Ctrl-D to end)');
  const options = prepareOptionsFromFlags(input, flags, ledger, reporter.onEvent);
  const summary = await prepare(options);
  recordInputName(ledger, input);
  reporter.close();
  reporter.log(formatPrepareSummary(summary, options.outDir).trimEnd());
}

export function registerPrepare(program: Command): void {
  addReportOptions(
    addPrepareOptions(
      program
        .command('prepare')
        .description('turn CSV/JSONL records into Batch API request files, recorded in a ledger')
        .argument('[file]', 'input file, or - for stdin', '-'),
    ),
  )
    .addHelpText(
      'after',
      examples([
        "batchpipe prepare examples/feedback.csv --ledger runs/fb.db --model gpt-4o-mini --id-column id --prompt 'Classify: {{text}}'",
        "zcat big.jsonl.gz | batchpipe prepare - --ledger runs/big.db --model gpt-4o-mini --prompt '{{body}}' --rejects bad.jsonl",
      ]),
    )
    .action(async (file: string, flags: PrepareFlags & ReportFlags, cmd: Command) => {
      if (flags.rejects !== undefined) checkOutputPath('--rejects', flags.rejects);
      const reporter = Reporter.open(flags);
      const ledger = Ledger.open(flags.ledger, { holder: 'batchpipe prepare' });
      try {
        await prepareFromCli(file, flags, ledger, reporter, cmd);
      } finally {
        ledger.close();
      }
    });
}

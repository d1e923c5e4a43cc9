import { basename, dirname, extname, join } from 'node:path';
import { type Command, Option } from 'commander';
import { Ledger } from '../../ledger/ledger.js';
import {
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_LINES,
  type PrepareOptions,
  type PrepareSummary,
  prepare,
} from '../../prepare/prepare.js';
import { ENDPOINTS, type Endpoint } from '../../types.js';
import { intOption, numberOption, readJsonObjectFile } from '../options.js';
import { checkOutputPath } from '../output.js';

/** More encode threads than this only add start-up and memory: the main thread keeps order alone. */
const MAX_THREADS = 64;

/** The options `prepare` and `run` share: input, template, limits, rejects. */
export function addPrepareOptions(cmd: Command, { outRequired = true } = {}): Command {
  const out = new Option(
    '--out <dir>',
    `directory for the request .jsonl files${outRequired ? '' : ' (default: beside the ledger)'}`,
  );
  return cmd
    .requiredOption('--ledger <path>', 'SQLite ledger of this run (created if missing; resumes if present)')
    .addOption(outRequired ? out.makeOptionMandatory() : out)
    .option('--model <name>', 'model for every request')
    .option('--prompt <text>', 'user message template, e.g. "Classify: {{text}}"')
    .option('--system <text>', 'system message template')
    .option('--body <file.json>', 'request body template (any string value may hold {{field}})')
    .addOption(
      new Option('--endpoint <path>', 'Batch API endpoint')
        .choices(ENDPOINTS)
        .default('/v1/chat/completions'),
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
      `requests per file (max ${DEFAULT_MAX_LINES})`,
      intOption('--max-lines'),
      DEFAULT_MAX_LINES,
    )
    .option(
      '--max-bytes <n>',
      `bytes per file (max ${DEFAULT_MAX_BYTES})`,
      intOption('--max-bytes'),
      DEFAULT_MAX_BYTES,
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
  endpoint: Endpoint;
  idColumn?: string;
  id?: string;
  inputFormat?: 'csv' | 'jsonl' | 'json';
  jsonPath?: string;
  encoding?: string;
  maxLines: number;
  maxBytes: number;
  rejects?: string;
  threads?: number;
}

/** Maps CLI flags to the library's options. */
export function prepareOptionsFromFlags(
  file: string | undefined,
  flags: PrepareFlags,
  ledger: Ledger,
): PrepareOptions {
  return {
    input: file ?? '-',
    inputFormat: flags.inputFormat,
    jsonPath: flags.jsonPath,
    encoding: flags.encoding,
    ledger,
    outDir: flags.out ?? defaultOutDir(flags.ledger),
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

export function registerPrepare(program: Command): void {
  addPrepareOptions(
    program
      .command('prepare')
      .description('turn CSV/JSONL records into Batch API request files, recorded in a ledger')
      .argument('[file]', 'input file, or - for stdin', '-'),
  ).action(async (file: string, flags: PrepareFlags) => {
    if (flags.rejects !== undefined) checkOutputPath('--rejects', flags.rejects);
    const ledger = Ledger.open(flags.ledger, { holder: 'batchpipe prepare' });
    try {
      const summary = await prepare(prepareOptionsFromFlags(file, flags, ledger));
      process.stderr.write(formatPrepareSummary(summary, flags.out ?? defaultOutDir(flags.ledger)));
    } finally {
      ledger.close();
    }
  });
}

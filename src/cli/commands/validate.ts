import { once } from 'node:events';
import type { Command } from 'commander';
import { BatchpipeError, ErrorCodes } from '../../errors.js';
import {
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_EMBEDDING_INPUTS,
  DEFAULT_MAX_LINES,
} from '../../validate/file-rules.js';
import { formatIssue } from '../../validate/issues.js';
import {
  type FileProblem,
  type FileSummary,
  type ValidateFileOptions,
  validateJsonl,
  validateJsonlFile,
} from '../../validate/validate-files.js';
import { examples } from '../help.js';
import { formatBytes, plural } from '../human.js';
import { intOption } from '../options.js';
import { writeOutput } from '../output.js';

interface ValidateCommandOptions {
  maxLines: number;
  maxBytes: number;
  maxEmbeddingInputs: number;
}

/** Problems are written in blocks of about this many characters, so a bad file is not a write per line. */
const WRITE_BLOCK_CHARS = 64 * 1024;

/**
 * `batchpipe validate FILE...`: checks existing request `.jsonl` files against the Batch API rules.
 * Each problem is a line `FILE:LINE: CODE message` on stdout (the command's data); the summary goes to
 * stderr. Exit 1 when any file has a problem or cannot be read, else 0.
 */
export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check request .jsonl files against the Batch API rules before uploading them')
    .argument('<files...>', 'request files to check (- for stdin)')
    .option('--max-lines <n>', 'most requests per file', intOption('--max-lines'), DEFAULT_MAX_LINES)
    .option('--max-bytes <n>', 'most bytes per file', intOption('--max-bytes'), DEFAULT_MAX_BYTES)
    .option(
      '--max-embedding-inputs <n>',
      'most embedding inputs per embeddings file',
      intOption('--max-embedding-inputs'),
      DEFAULT_MAX_EMBEDDING_INPUTS,
    )
    .addHelpText(
      'after',
      examples([
        'batchpipe validate runs/fb.requests/*.jsonl',
        'batchpipe validate my-requests.jsonl --max-lines 10000',
      ]),
    )
    .action(async (files: string[], options: ValidateCommandOptions) => {
      process.exitCode = await writeOutput(undefined, (out) => validateCommand(files, options, out));
    });
}

async function validateCommand(
  files: string[],
  options: ValidateCommandOptions,
  stdout: NodeJS.WritableStream,
): Promise<number> {
  if (files.filter((f) => f === '-').length > 1) {
    throw new BatchpipeError(ErrorCodes.USAGE, 'stdin (-) can be given only once');
  }
  const limits: ValidateFileOptions = {
    maxLines: options.maxLines,
    maxBytes: options.maxBytes,
    maxEmbeddingInputs: options.maxEmbeddingInputs,
  };
  const out = new BlockWriter(stdout);
  let requests = 0;
  let bytes = 0;
  let problems = 0;
  let failedFiles = 0;
  for (const file of files) {
    const source = file === '-' ? validateJsonl(process.stdin, '-', limits) : validateJsonlFile(file, limits);
    let summary: FileSummary;
    try {
      summary = await drain(source, (p) => out.write(formatProblem(p)));
    } catch (err) {
      if (!(err instanceof BatchpipeError) || err.code !== ErrorCodes.IO) throw err;
      await out.write(`${err.format()}\n`);
      problems += 1;
      failedFiles += 1;
      continue;
    }
    requests += summary.requests;
    bytes += summary.bytes;
    problems += summary.problems;
    if (summary.problems > 0) failedFiles += 1;
  }
  await out.flush();
  const totals = `${plural(files.length, 'file')}, ${plural(requests, 'request')}, ${formatBytes(bytes)}`;
  if (problems === 0) {
    process.stderr.write(`ok: ${totals}\n`);
    return 0;
  }
  process.stderr.write(`${plural(problems, 'problem')} in ${failedFiles} of ${totals}\n`);
  return 1;
}

/** Runs a file's validation to its end, handing each problem on; resolves to the file's summary. */
async function drain(
  problems: AsyncGenerator<FileProblem, FileSummary, undefined>,
  onProblem: (problem: FileProblem) => Promise<void>,
): Promise<FileSummary> {
  for (let next = await problems.next(); ; next = await problems.next()) {
    if (next.done) return next.value;
    await onProblem(next.value);
  }
}

/** Compiler-style `file:line: code message`, the form editors and grep understand. */
function formatProblem(p: FileProblem): string {
  return `${p.file}:${p.line}: ${p.code} ${formatIssue(p)}\n`;
}

/** Buffers text into blocks and writes them with backpressure: waits for 'drain' when the stream is full. */
class BlockWriter {
  #buffer = '';
  constructor(private readonly stream: NodeJS.WritableStream) {}

  async write(text: string): Promise<void> {
    this.#buffer += text;
    if (this.#buffer.length >= WRITE_BLOCK_CHARS) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#buffer === '') return;
    const text = this.#buffer;
    this.#buffer = '';
    if (!this.stream.write(text)) await once(this.stream, 'drain');
  }
}

import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { commandsFor } from './commands/index.js';

/**
 * Runs the CLI and resolves to the process exit code: 0 success, 1 a handled error, 2 a usage error.
 * Data goes to stdout; progress, summaries and errors to stderr.
 */
export async function main(argv: string[]): Promise<number> {
  exitQuietlyOnBrokenPipe();
  const program = new Command('batchpipe')
    .description('Move bulk LLM work onto the OpenAI Batch API.')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    for (const register of await commandsFor(argv)) register(program);
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err);
  }
}

/** This package's version, from its package.json (two levels above dist/src/cli). */
function packageVersion(): string {
  const file = new URL('../../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // --help and --version also arrive here, with exit code 0.
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof BatchpipeError) {
    process.stderr.write(`batchpipe: ${err.format()}\n`);
    return err.code === ErrorCodes.USAGE ? 2 : 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`batchpipe: ${message}\n`);
  return 1;
}

/** A downstream `head` closing the pipe is not an error for a CLI that writes data to stdout. */
function exitQuietlyOnBrokenPipe(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

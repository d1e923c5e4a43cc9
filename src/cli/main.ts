import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { BatchpipeError, ErrorCodes, ioError } from '../errors.js';
import { commandsFor } from './commands/index.js';

/**
 * Runs the CLI and resolves to the process exit code: 0 success, 1 a handled error, 2 a usage error.
 * Data goes to stdout; progress, summaries and errors to stderr.
 */
export async function main(argv: string[]): Promise<number> {
  const stdout = watchStdout();
  const program = new Command('batchpipe')
    .description('Move bulk LLM work onto the OpenAI Batch API.')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  let failure: { error: unknown } | undefined;
  try {
    for (const register of await commandsFor(argv)) register(program);
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    failure = { error: err };
  }
  // Data that never reached stdout (a full disk) fails the command, whatever else happened.
  const lost = await stdout.settle();
  if (lost !== undefined) return reportError(ioError('write', 'stdout', lost));
  if (failure) return reportError(failure.error);
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
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

/**
 * A downstream `head` closing the pipe is not an error for a CLI that writes data to stdout: exit 0.
 * Any other error of stdout is kept; `settle()` flushes stdout and returns the first one.
 */
function watchStdout(): { settle(): Promise<unknown> } {
  let failure: unknown;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    failure ??= err;
  });
  return {
    settle: () =>
      new Promise((resolve) => {
        if (failure !== undefined || process.stdout.destroyed) return resolve(failure);
        process.stdout.write('', (err) => resolve(failure ?? err ?? undefined));
      }),
  };
}

import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { BatchpipeError, ErrorCodes, ioError } from '../errors.js';
import { rememberArgv } from './argv.js';
import { commandsFor, isCommand } from './commands/index.js';
import { ExitCodes } from './exit-codes.js';
import { configureHelp } from './help.js';
import { handleSignals } from './interrupt.js';
import { loadTerminalFrames } from './progress/terminal-frame.js';
import { activeReporter } from './reporter.js';

/**
 * Runs the CLI and resolves to the process exit code (src/cli/exit-codes.ts): 0 success, 1 a
 * handled error, 2 a usage error, 3 a finished run with rows that did not succeed, 130/143 a signal.
 * Data goes to stdout; progress, summaries and errors to stderr.
 */
export async function main(argv: string[]): Promise<number> {
  const stdout = watchStdout();
  rememberArgv(argv);
  // `serve` stops its server on a signal itself; every other command says what to type to go on.
  if (argv[0] !== 'serve') handleSignals();
  // Progress frames are drawn only on a terminal: only then is their module loaded.
  if (process.stderr.isTTY === true) await loadTerminalFrames();
  const program = configureHelp(new Command('batchpipe'))
    .description('Move bulk LLM work onto the OpenAI Batch API (and compatible ones).')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  let failure: { error: unknown } | undefined;
  try {
    if (argv[0] === 'help' && argv[1] !== undefined && !isCommand(argv[1])) {
      // commander would print the program's help for a command it does not know.
      throw new BatchpipeError(
        ErrorCodes.USAGE,
        `unknown command '${argv[1]}' (batchpipe --help lists them)`,
      );
    }
    for (const register of await commandsFor(argv)) register(program);
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    failure = { error: err };
  }
  activeReporter()?.close();
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
    return err.exitCode === 0 ? ExitCodes.OK : ExitCodes.USAGE;
  }
  const reporter = activeReporter();
  const say = (text: string, code?: string) =>
    reporter ? reporter.error(text, code) : process.stderr.write(`batchpipe: ${text}\n`);
  if (err instanceof BatchpipeError) {
    say(err.format(), err.code);
    return err.code === ErrorCodes.USAGE ? ExitCodes.USAGE : ExitCodes.ERROR;
  }
  say(err instanceof Error ? err.message : String(err));
  return ExitCodes.ERROR;
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

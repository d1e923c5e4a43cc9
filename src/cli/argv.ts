/**
 * The user's own arguments, as typed, kept for the command lines the CLI prints back (resume
 * lines, follow-ups). Main hands them over before commander parses them; nothing else writes here.
 */
import type { Command } from 'commander';

let argv: readonly string[] = [];

/** Main hands over the user's arguments (`run x.csv --ledger …`) before commander parses them. */
export function rememberArgv(args: readonly string[]): void {
  argv = args;
}

/** The user's arguments after the command's name. */
export function userArgs(cmd: Command): string[] {
  const at = argv.indexOf(cmd.name());
  return at < 0 ? [] : argv.slice(at + 1);
}

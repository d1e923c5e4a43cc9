/**
 * Ctrl-C (SIGINT) and SIGTERM during a command: one line saying what was in flight and the exact
 * command that goes on from there, then exit 130 (SIGINT) or 143 (SIGTERM). Stopping at any moment
 * is safe by design (every ledger change is a transaction, every remote side effect has an intent
 * that the next run settles): the process only has to say so, not to wind anything down. Owns the
 * process's signal handlers for every command but `serve`, which stops its server itself.
 */
import { activeReporter } from './reporter.js';

/** What the running command tells about itself when interrupted. */
export interface InterruptNote {
  /** What was under way, e.g. `while collecting: 2 batches open …`. */
  doing?: string | undefined;
  /** The command line that goes on (or repeats the command), e.g. `batchpipe collect --ledger x.db`. */
  resume?: string | undefined;
}

let describe: (() => InterruptNote) | undefined;

/** Tells what to say if a signal stops the command now (called again as the command moves on). */
export function onInterrupt(note: () => InterruptNote): void {
  describe = note;
}

const EXIT_CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/** Installs the handlers for SIGINT and SIGTERM. */
export function handleSignals(): void {
  for (const signal of Object.keys(EXIT_CODES)) {
    process.once(signal, () => interrupted(signal));
  }
}

function interrupted(signal: string): void {
  let note: InterruptNote = {};
  try {
    note = describe?.() ?? {};
  } catch (err) {
    // The ledger may be mid-close: say what is known.
    note = { doing: `(its state could not be read: ${err instanceof Error ? err.message : String(err)})` };
  }
  const text = `interrupted by ${signal}${note.doing ? ` ${note.doing}` : ''}${note.resume ? `; to go on: ${note.resume}` : ''}`;
  const reporter = activeReporter();
  if (reporter) reporter.interrupted(text, signal, note);
  else process.stderr.write(`batchpipe: ${text}\n`);
  process.exit(EXIT_CODES[signal] ?? 1);
}

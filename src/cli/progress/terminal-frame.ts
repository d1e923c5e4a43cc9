/**
 * The one module that redraws lines in place on a terminal, through `log-update` (erases the lines
 * it drew last and draws the new ones, wrap-aware; hides the cursor meanwhile and shows it again
 * whenever the process ends). Everything else writes plain text; this is only used on a TTY.
 */

import type * as LogUpdate from 'log-update';

let createLogUpdate: typeof LogUpdate.createLogUpdate | undefined;

/**
 * Loads `log-update` and what it imports, once, for a command whose stderr is a terminal: their
 * memory and start-up would otherwise be carried for nothing by every other command (stderr to a
 * file or a pipe, `--log-format json`).
 */
export async function loadTerminalFrames(): Promise<void> {
  createLogUpdate ??= (await import('log-update')).createLogUpdate;
}

export interface TerminalFrame {
  /** Replaces the frame with these lines. */
  draw(lines: readonly string[]): void;
  /** Writes text above the frame (a log line), then draws the frame again under it. */
  print(text: string): void;
  /** Erases the frame and gives the terminal back (cursor shown). */
  close(): void;
  /** Leaves the frame on the screen as it is and gives the terminal back. */
  keep(): void;
}

/** A terminal that reports no size (a pseudo-terminal nobody sized, as under `script`) is taken as 80×24. */
export function terminalSize(stream: NodeJS.WriteStream): { columns: number; rows: number } {
  return { columns: stream.columns || 80, rows: stream.rows || 24 };
}

export function terminalFrame(stream: NodeJS.WriteStream): TerminalFrame {
  // log-update fits the frame to `rows` and wraps at `columns`: a size of 0 would hide it all.
  const sized = {
    get columns() {
      return terminalSize(stream).columns;
    },
    get rows() {
      return terminalSize(stream).rows;
    },
    write: (text: string) => stream.write(text),
  } as unknown as NodeJS.WriteStream;
  if (createLogUpdate === undefined) {
    throw new Error('internal error: a terminal frame before loadTerminalFrames() was awaited');
  }
  const update = createLogUpdate(sized);
  let last: readonly string[] = [];
  const render = (lines: readonly string[]) => {
    if (lines.length === 0) update.clear();
    else update(lines.join('\n'));
  };
  return {
    draw(lines) {
      last = lines;
      render(lines);
    },
    print(text) {
      update.clear();
      stream.write(text);
      render(last);
    },
    close() {
      update.clear();
      update.done();
      last = [];
    },
    keep() {
      update.done();
      last = [];
    },
  };
}

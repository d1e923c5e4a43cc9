import { once } from 'node:events';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { truncate } from 'node:fs/promises';
import {
  type BatchUsage,
  CANCELLED_CODE,
  EXPIRED_CODE,
  emptyUsage,
  type OutputLine,
  type UnrunCounts,
} from '../types.js';
import { readLines } from './jsonl-lines.js';
import { addUsage } from './output-line.js';

const WRITE_BUFFER_BYTES = 1024 * 1024;

/** Live totals of a running batch, which the API shows while it runs. */
export interface Tally {
  completed: number;
  failed: number;
  usage: BatchUsage;
  /** Of the failed lines, those of requests that never ran (expired, or cancelled for Anthropic). */
  unrun: UnrunCounts;
}

/**
 * The output and error files of a running batch, appended line by line as requests finish. They are the
 * batch's only record of progress: after a crash, reopening them recovers which custom_ids are done and
 * the totals, after cutting off a line the crash tore.
 */
export interface ResultJournal {
  readonly tally: Tally;
  /** Paths the lines are in (the staging files, or the final files if a crash came mid-rename). */
  readonly outputPath: string;
  readonly errorPath: string;
  /** custom_ids that have a line (recovered ones and the ones recorded since). */
  isDone(customId: string): boolean;
  record(line: OutputLine, ok: boolean): void;
  /** True while a file's write buffer is full; wait for `drained()` before recording more. */
  needsDrain(): boolean;
  drained(): Promise<void>;
  close(): Promise<void>;
}

/** Opens a batch's journal, recovering whatever lines the files already hold. */
export async function openJournal(outputPath: string, errorPath: string): Promise<ResultJournal> {
  const tally: Tally = { completed: 0, failed: 0, usage: emptyUsage(), unrun: { expired: 0, cancelled: 0 } };
  const done = new Set<string>();
  tally.completed = await recover(outputPath, done, (line) => addUsage(tally.usage, line.response?.body));
  tally.failed = await recover(errorPath, done, (line) => countUnrun(tally.unrun, line));

  // A large buffer: with the default 16 KiB, a fast responder waits on the disk every twenty lines.
  const output = createWriteStream(outputPath, { flags: 'a', highWaterMark: WRITE_BUFFER_BYTES });
  const errors = createWriteStream(errorPath, { flags: 'a', highWaterMark: WRITE_BUFFER_BYTES });
  let full: WriteStream[] = [];

  return {
    tally,
    outputPath,
    errorPath,
    isDone: (customId) => done.has(customId),
    record(line, ok) {
      done.add(line.custom_id);
      const target = ok ? output : errors;
      if (ok) {
        tally.completed++;
        addUsage(tally.usage, line.response?.body);
      } else {
        tally.failed++;
        countUnrun(tally.unrun, line);
      }
      if (!target.write(`${JSON.stringify(line)}\n`)) full.push(target);
    },
    needsDrain: () => full.length > 0,
    async drained() {
      const waiting = full;
      full = [];
      await Promise.all(
        waiting.map((stream) => (stream.writableNeedDrain ? once(stream, 'drain') : undefined)),
      );
    },
    async close() {
      await Promise.all([endStream(output), endStream(errors)]);
    },
  };
}

async function endStream(stream: WriteStream): Promise<void> {
  if (stream.closed) return;
  const closed = once(stream, 'close');
  stream.end();
  await closed;
}

function countUnrun(unrun: UnrunCounts, line: OutputLine): void {
  if (line.error?.code === EXPIRED_CODE) unrun.expired++;
  else if (line.error?.code === CANCELLED_CODE) unrun.cancelled++;
}

/**
 * Reads a journal file: adds its custom_ids to `done`, hands each line to `count`, and returns its line
 * count. A torn last line (or anything after the first unreadable line) is cut off.
 */
async function recover(
  filePath: string,
  done: Set<string>,
  count: (line: OutputLine) => void,
): Promise<number> {
  if (!existsSync(filePath)) return 0;
  let lines = 0;
  let goodEnd = 0;
  let torn = false;
  for await (const { text, end, terminated } of readLines(filePath)) {
    const line = terminated ? parseLine(text) : undefined;
    if (!line) {
      torn = true;
      break;
    }
    done.add(line.custom_id);
    count(line);
    lines++;
    goodEnd = end;
  }
  if (torn) await truncate(filePath, goodEnd);
  return lines;
}

function parseLine(text: string): OutputLine | undefined {
  try {
    const line = JSON.parse(text) as OutputLine;
    return typeof line?.custom_id === 'string' ? line : undefined;
  } catch {
    return undefined;
  }
}

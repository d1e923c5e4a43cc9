/**
 * Where commands write what the user asked for: stdout, or a file a flag names. Owns the checks
 * before a run starts and the guard while it writes, so that a missing folder, a full disk or a
 * closed descriptor ends the command with a `BP_IO` error naming the path, never a stack trace.
 * Touches only the streams and files it is given.
 */
import { createWriteStream, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { BatchpipeError, ErrorCodes, ioError } from '../errors.js';

/**
 * Fails now, before any work, when `path` (named by `flag`) cannot be written later: its folder is
 * missing or not a folder, or the path is a folder itself. Whatever else goes wrong (permissions, a
 * full disk) is caught when the file is written.
 */
export function checkOutputPath(flag: string, path: string): void {
  const folder = dirname(path);
  let problem: string | undefined;
  try {
    if (!statSync(folder).isDirectory()) problem = `${folder} is not a folder`;
    else if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) problem = `${path} is a folder`;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problem = code === 'ENOENT' ? `the folder ${folder} does not exist` : `${folder}: ${code ?? err}`;
  }
  if (problem !== undefined) {
    throw new BatchpipeError(ErrorCodes.IO, `cannot write ${flag} ${path}: ${problem}`);
  }
}

/**
 * Runs `write` against the output (`path`, or stdout when it is undefined) and finishes it: a file
 * is ended and closed, stdout flushed. The first error the stream reports stops the command as a
 * `BP_IO` naming the path, even while `write` still waits for the stream to drain.
 */
export async function writeOutput<T>(
  path: string | undefined,
  write: (out: Writable) => Promise<T>,
): Promise<T> {
  const name = path ?? 'stdout';
  let out: Writable;
  if (path === undefined) out = process.stdout;
  else {
    let fd: number;
    try {
      fd = openSync(path, 'w');
    } catch (err) {
      throw ioError('write', path, err);
    }
    out = createWriteStream(path, { fd });
  }
  let failure: unknown;
  let onError: (err: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    onError = (err) => {
      failure ??= err;
      reject(ioError('write', name, failure));
    };
  });
  failed.catch(() => {}); // observed through the races below
  out.on('error', onError);
  try {
    const result = await Promise.race([write(out), failed]);
    await Promise.race([path === undefined ? flushed(out) : ended(out), failed]);
    return result;
  } catch (err) {
    if (failure !== undefined) throw ioError('write', name, failure);
    throw err;
  } finally {
    out.off('error', onError);
    if (path !== undefined && !out.writableFinished) out.destroy();
  }
}

/** Resolves once everything written so far has left the stream (a zero-length write's callback). */
function flushed(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write('', (err) => (err ? reject(err) : resolve()));
  });
}

async function ended(out: Writable): Promise<void> {
  out.end();
  await finished(out);
}

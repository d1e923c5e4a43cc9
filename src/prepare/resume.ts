import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { Ledger } from '../ledger/ledger.js';
import { discardUnfinishedPrepare } from '../ledger/prepare-resume.js';

export interface ResumePoint {
  /** The first seq not inside a complete file: everything from here is (re)done. */
  nextSeq: number;
  /** Number the next file gets. */
  nextFileNumber: number;
  completeFiles: number;
}

/**
 * Finds where an interrupted `prepare` stopped and clears what it left half done: files not marked
 * complete (under their temporary or final name), their ledger rows, rejects past the resume point,
 * and stray temporary files of this run. Complete files must still be on disk as written.
 */
export function settleInterruptedRun(ledger: Ledger, outDir: string, runId: string): ResumePoint {
  const complete = ledger.files({ complete: true }).filter((f) => f.attempt === 1);
  for (const file of complete) {
    let size: number;
    try {
      size = statSync(file.path).size;
    } catch {
      throw new BatchpipeError(
        ErrorCodes.LEDGER_MISMATCH,
        `request file ${file.path} is in the ledger but missing on disk`,
      );
    }
    if (size !== file.bytes) {
      throw new BatchpipeError(
        ErrorCodes.LEDGER_MISMATCH,
        `request file ${file.path} is ${size} bytes on disk but the ledger recorded ${file.bytes}`,
      );
    }
  }
  const nextSeq = complete.reduce((max, f) => Math.max(max, f.end_seq ?? 0), 0);
  // Retry files (attempt > 1) belong to collect, which settles its own.
  const incomplete = ledger.files({ complete: false }).filter((f) => f.attempt === 1);
  for (const file of incomplete) rmSync(file.path, { force: true });
  discardUnfinishedPrepare(
    ledger,
    incomplete.map((f) => f.id),
    nextSeq,
  );
  for (const name of safeReaddir(outDir)) {
    if (name.startsWith(`.${runId}-`) && name.endsWith('.partial'))
      rmSync(join(outDir, name), { force: true });
  }
  return { nextSeq, nextFileNumber: complete.length + 1, completeFiles: complete.length };
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * An input that cannot be parsed before the end of what complete files already hold (a truncated or
 * edited copy: a quote cut open) has changed: say so, with the counts, not only where parsing broke.
 */
export function changedInputError(
  err: unknown,
  ledger: Ledger,
  resume: ResumePoint,
  source: string,
): unknown {
  if (!(err instanceof BatchpipeError) || err.code !== ErrorCodes.PARSE || err.line === undefined) return err;
  const lastKept = resume.nextSeq > 0 ? ledger.keptRecord(resume.nextSeq - 1) : undefined;
  if (lastKept === undefined || err.line > lastKept.line) return err;
  return new BatchpipeError(
    ErrorCodes.INPUT_CHANGED,
    `the input differs from the run this ledger records: the ledger holds ${resume.nextSeq} records from it in complete files (to line ${lastKept.line}), but the input breaks off at line ${err.line} (${err.code} ${err.message}); resume with the whole input, or use a new --ledger for new input`,
    { file: source, line: err.line, cause: err },
  );
}

/**
 * What each API's batches need of the one engine beyond the OpenAI lifecycle: their input's limits
 * and model rule, an input to prepare before validation, lines for cancelled requests, and files to
 * write as the batch ends. The engine asks for a batch's lifecycle by its dialect; the dialects
 * (src/server/dialects/) supply them, so the engine imports none of them.
 */
import type { NewFile, StoredBatch } from '../store/server-store.js';
import type { BatchError, Dialect, FinalStatus } from '../types.js';
import { DEFAULT_INPUT_LIMITS, type InputLimits, type ModelRule } from './validate-input.js';

/** The paths of an ending batch's output and error files (null: no such file, nothing went there). */
export interface JournalFiles {
  outputPath: string | null;
  errorPath: string | null;
}

export interface DialectLifecycle {
  limits: InputLimits;
  models: ModelRule | ((stored: StoredBatch) => ModelRule);
  /** Whether `--fail-validation-line` applies (it stands for OpenAI's file validation). */
  injectsLineErrors: boolean;
  /** Whether `--enqueued-token-limit` applies (a per-model queue of tokens: OpenAI, Gemini). */
  countsEnqueuedTokens: boolean;
  /** Whether a cancel writes a line for each request that never ran (Anthropic reports them `canceled`). */
  recordsCancelled: boolean;
  /**
   * Writes the engine-form input file of a batch that is validating, when the API's own input must be
   * converted first (a Gemini JSONL file). Returns the errors that fail the batch, if any. Must be safe
   * to run again after a crash.
   */
  prepareInput?(stored: StoredBatch): Promise<BatchError[] | undefined>;
  /**
   * Writes the files the API shows of an ended batch beyond the output and error files (Gemini's
   * results in input order), before the batch is recorded as ended. Must be safe to run again.
   */
  finish?(stored: StoredBatch, journal: JournalFiles, status: FinalStatus, now: number): Promise<NewFile[]>;
}

/** The OpenAI Batch API's lifecycle: the engine's own. */
export const OPENAI_LIFECYCLE: DialectLifecycle = {
  limits: DEFAULT_INPUT_LIMITS,
  models: 'one',
  injectsLineErrors: true,
  countsEnqueuedTokens: true,
  recordsCancelled: false,
};

/** The lifecycle of each dialect. */
export type Lifecycles = (dialect: Dialect) => DialectLifecycle;

import { readFileSync } from 'node:fs';
import { BatchpipeError, type ErrorCode, ErrorCodes } from '../errors.js';
import type { Ledger } from '../ledger/ledger.js';
import { parseDurationSeconds } from '../server/util/duration.js';

/** The values a numeric flag takes. */
export interface NumberRange {
  min: number;
  max?: number | undefined;
  integer?: boolean | undefined;
  /** `min` itself is refused (e.g. a poll interval above 0). */
  aboveMin?: boolean | undefined;
}

/**
 * Parses a numeric flag value (`_` may group digits), or fails as a usage error naming the flag and
 * the values it takes.
 */
export function numberOption(flag: string, range: NumberRange): (value: string) => number {
  return (value) => {
    const n = Number(value.replace(/_/g, ''));
    const fits =
      value.trim() !== '' &&
      Number.isFinite(n) &&
      (range.aboveMin ? n > range.min : n >= range.min) &&
      (range.max === undefined || n <= range.max) &&
      (!range.integer || Number.isSafeInteger(n));
    if (!fits) {
      throw new BatchpipeError(
        ErrorCodes.USAGE,
        `${flag} takes ${describeRange(range)}, got ${JSON.stringify(value)}`,
      );
    }
    return n;
  };
}

function describeRange({ min, max, integer, aboveMin }: NumberRange): string {
  if (integer && min === 1 && max === undefined) return 'a positive integer';
  const kind = integer ? 'an integer' : 'a number';
  if (aboveMin) return `${kind} above ${min}${max === undefined ? '' : ` and at most ${max}`}`;
  return max === undefined ? `${kind} of at least ${min}` : `${kind} from ${min} to ${max}`;
}

/** Parses a positive integer flag value, or fails as a usage error naming the flag. */
export function intOption(flag: string): (value: string) => number {
  return numberOption(flag, { min: 1, integer: true });
}

/** Parses a duration flag value (`24h`, `30m`, `5s`) into seconds, or fails as a usage error naming the flag. */
export function durationOption(flag: string): (value: string) => number {
  return (value) => {
    const seconds = parseDurationSeconds(value);
    if (seconds === undefined) {
      throw new BatchpipeError(
        ErrorCodes.USAGE,
        `${flag} takes a duration such as 24h, 30m or 5s, got ${JSON.stringify(value)}`,
      );
    }
    return seconds;
  };
}

/** Reads and parses a JSON file named on the command line; invalid JSON fails with `invalidCode`. */
export function readJsonFile(
  flag: string,
  path: string,
  invalidCode: ErrorCode = ErrorCodes.TEMPLATE_INVALID,
): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BatchpipeError(
      ErrorCodes.IO,
      `${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BatchpipeError(invalidCode, `${flag}: ${path} is not valid JSON: ${(err as Error).message}`, {
      file: path,
    });
  }
}

/** Reads a JSON object from a file named on the command line (e.g. `--body FILE.json`). */
export function readJsonObjectFile(flag: string, path: string): Record<string, unknown> {
  const value = readJsonFile(flag, path);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new BatchpipeError(
      ErrorCodes.TEMPLATE_INVALID,
      `${flag}: ${path} must hold a JSON object (the request body)`,
      {
        file: path,
      },
    );
  }
  return value as Record<string, unknown>;
}

/** Reads `--output-schema FILE.json`, checks it is a usable JSON Schema, and keeps it in the ledger. */
export async function storeOutputSchema(ledger: Ledger, path: string): Promise<void> {
  const json = readJsonFile('--output-schema', path, ErrorCodes.OUTPUT_SCHEMA);
  // zod is loaded only when there is an output schema (see output-validation.ts).
  const { outputSchemaFromJsonSchema, setOutputSchema } = await import('../results/output-schema.js');
  outputSchemaFromJsonSchema(json, `--output-schema ${path}`);
  setOutputSchema(ledger, json as object);
}

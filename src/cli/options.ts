import { readFileSync } from 'node:fs';
import { BatchpipeError, type ErrorCode, ErrorCodes } from '../errors.js';
import type { Ledger } from '../ledger/ledger.js';

/** Parses a positive integer flag value, or fails as a usage error naming the flag. */
export function intOption(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value.replace(/_/g, ''));
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new BatchpipeError(
        ErrorCodes.USAGE,
        `${flag} takes a positive integer, got ${JSON.stringify(value)}`,
      );
    }
    return n;
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

/**
 * The run's output schema as the ledger keeps it: JSON Schema text under meta `output_schema`, so
 * `collect`, `ingest`, `run` and `results` of any process check and expand a run's outputs alike.
 * Only the stored form lives here; building zod schemas from it is src/results/output-schema.ts.
 */
import type { Ledger } from './ledger.js';

const OUTPUT_SCHEMA_KEY = 'output_schema';

/** The run's output schema as JSON Schema, if it has one. */
export function storedOutputJsonSchema(ledger: Ledger): unknown {
  const text = ledger.getMeta(OUTPUT_SCHEMA_KEY);
  return text === undefined ? undefined : JSON.parse(text);
}

/** Keeps `jsonSchema` as the run's output schema. */
export function storeOutputJsonSchema(ledger: Ledger, jsonSchema: unknown): void {
  ledger.setMeta(OUTPUT_SCHEMA_KEY, JSON.stringify(jsonSchema));
}

/**
 * Output schemas: what a parsed model output must look like. In code a zod schema; on the command
 * line a JSON Schema file (`--output-schema FILE.json`), turned into zod with zod 4's own
 * `z.fromJSONSchema`, so both validate the same way and report zod issues. The ledger keeps the JSON
 * Schema (meta `output_schema`), so `collect`, `ingest` and `run` validate a run's outputs alike.
 */
import { z } from 'zod';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { Ledger } from '../ledger/ledger.js';
import { storedOutputJsonSchema, storeOutputJsonSchema } from '../ledger/output-schema.js';
import type { OutputSchema } from './output-validation.js';

export { formatZodPath, type OutputSchema, validateOutput } from './output-validation.js';

/**
 * Builds a zod schema from a JSON Schema (draft 2020-12, 7 or 4). Fails with `BP_OUTPUT_SCHEMA` for
 * what zod cannot express (`if`/`then`, `not`, external `$ref`s…).
 *
 * @example outputSchemaFromJsonSchema({ type: 'object', properties: { sentiment: { enum: ['positive', 'negative'] } }, required: ['sentiment'] })
 */
export function outputSchemaFromJsonSchema(jsonSchema: unknown, source = 'the output schema'): OutputSchema {
  if (typeof jsonSchema !== 'boolean' && (typeof jsonSchema !== 'object' || jsonSchema === null)) {
    throw new BatchpipeError(ErrorCodes.OUTPUT_SCHEMA, `${source} must be a JSON Schema object`);
  }
  try {
    return z.fromJSONSchema(jsonSchema as Parameters<typeof z.fromJSONSchema>[0]);
  } catch (err) {
    throw new BatchpipeError(
      ErrorCodes.OUTPUT_SCHEMA,
      `${source} cannot be used: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/**
 * Stores the run's output schema in the ledger. A zod schema is stored as its JSON Schema
 * (`z.toJSONSchema`); parts JSON Schema cannot express (refinements, transforms) are then not
 * checked by a later process that loads it, so keep passing the zod schema in code where they matter.
 */
export function setOutputSchema(ledger: Ledger, schema: OutputSchema | object): void {
  const jsonSchema =
    schema instanceof z.ZodType ? z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' }) : schema;
  outputSchemaFromJsonSchema(jsonSchema); // refuse what could not be loaded back
  storeOutputJsonSchema(ledger, jsonSchema);
}

/** The run's stored output schema, if any. */
export function loadOutputSchema(ledger: Ledger): OutputSchema | undefined {
  const json = storedOutputJsonSchema(ledger);
  return json === undefined ? undefined : outputSchemaFromJsonSchema(json, `the ledger's output schema`);
}

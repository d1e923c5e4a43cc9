/**
 * Which columns the CSV results get beyond the input's own: `--expand`'s `result.<field>` columns,
 * and the columns of a JSONL input.
 */
import { storedRunIdentity } from '../ledger/identity.js';
import type { Ledger } from '../ledger/ledger.js';
import { storedOutputJsonSchema } from '../ledger/output-schema.js';
import { resultDialectOf } from './result-dialects.js';

/** `--expand`'s result columns: one per field, and whether a whole-`result` column is needed too. */
export interface ExpandColumns {
  /** Field names, each a `result.<field>` column. */
  fields: string[];
  /** Some result is not an object (or no field is known): keep a `result` column for it. */
  other: boolean;
}

/**
 * The fields of `--expand`: the `properties` of the run's output schema (meta `output_schema`), or
 * else of the JSON schema the request body asks for, in schema order; then any other key found in
 * the succeeded results (unless the schema forbids extra keys), in order of first appearance. Every
 * key of every result thus has a column, and a schema's columns are there even when no row has a
 * value yet.
 */
export function expandColumns(ledger: Ledger): ExpandColumns {
  const schema = resolveTopRef(storedOutputJsonSchema(ledger) ?? requestedSchemaOf(ledger));
  const fields = isObject(schema) && isObject(schema.properties) ? Object.keys(schema.properties) : [];
  const closed = isObject(schema) && schema.additionalProperties === false && fields.length > 0;
  if (!closed) {
    const known = new Set(fields);
    for (const key of ledger.resultFieldNames()) if (!known.has(key)) fields.push(key);
  }
  return { fields, other: fields.length === 0 || ledger.hasNonObjectResult() };
}

/** The CSV columns of a JSONL input: every top-level key of its records, in order of first appearance. */
export function jsonlInputColumns(ledger: Ledger): string[] {
  return ledger.recordFieldNames();
}

function requestedSchemaOf(ledger: Ledger): unknown {
  const identity = storedRunIdentity(ledger);
  if (identity === undefined) return undefined;
  return resultDialectOf(identity.provider).requestedSchema({
    endpoint: identity.endpoint,
    body: identity.body,
  });
}

/** A schema that is only `{ $ref: '#/$defs/x' }` (and its `$defs`) stands for the definition it names. */
function resolveTopRef(schema: unknown): unknown {
  if (!isObject(schema) || typeof schema.$ref !== 'string') return schema;
  const match = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(schema.$ref);
  const defs = match ? schema[match[1]!] : undefined;
  return isObject(defs) ? (defs[match![2]!] ?? schema) : schema;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checking parsed model outputs against an output schema, without loading zod itself: a schema's own
 * `safeParse` does the work. Building schemas from JSON Schema needs zod (output-schema.ts), and is
 * loaded only when a run has an output schema: zod takes ~40 ms to load, in every process and
 * worker that would import it.
 */
import type { ZodType } from 'zod';

/** A zod schema for one parsed result. */
export type OutputSchema = ZodType;

/** The first issue zod finds, or the parsed value (zod may transform it). */
export function validateOutput(
  schema: OutputSchema,
  value: unknown,
): { ok: true; value: unknown } | { ok: false; issue: { path: PropertyKey[]; message: string } } {
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  return { ok: false, issue: { path: issue?.path ?? [], message: issue?.message ?? 'invalid' } };
}

/**
 * A zod issue path the way batchpipe prints paths: `topics[0].name`; `''` for the value itself.
 * @example formatZodPath(['topics', 0, 'name']) // → 'topics[0].name'
 */
export function formatZodPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

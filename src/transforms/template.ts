import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { SourceRecord } from '../types.js';

/**
 * `{{field}}` templates, compiled once into a list of literal and field parts so rendering a record is
 * a concatenation. Dotted paths (`{{user.name}}`) reach into nested JSONL objects; a field whose name
 * itself contains a dot (or `&`, spaces…) is matched whole first.
 */
type Part = string | FieldRef;

interface FieldRef {
  name: string;
  get: FieldAccessor;
}

/** Reads one field from a record; records are objects (JSONL, code) or value arrays (CSV). */
// biome-ignore lint/suspicious/noExplicitAny: accessors are built for one record shape at compile time
export type FieldAccessor = (record: any) => unknown;
/** Turns a placeholder name into an accessor, once, at compile time. */
export type FieldResolver = (name: string) => FieldAccessor;

/**
 * Resolves against objects: the whole name first (CSV headers like `Food&Beverages` or `a.b`), then
 * a dotted path into nested JSONL objects.
 */
export const objectFieldResolver: FieldResolver = (name) => {
  const path = name.split('.');
  if (path.length === 1) return (record: SourceRecord) => record[name];
  return (record: SourceRecord) => {
    const whole = record[name];
    if (whole !== undefined) return whole;
    let value: unknown = record;
    for (const key of path) {
      if (value === null || typeof value !== 'object') return undefined;
      value = (value as Record<string, unknown>)[key];
    }
    return value;
  };
};

/** Resolves against CSV value arrays by header position; an unknown column fails at compile time. */
export function columnFieldResolver(columns: readonly string[]): FieldResolver {
  return (name) => {
    const index = columns.indexOf(name);
    if (index === -1) {
      throw new BatchpipeError(
        ErrorCodes.TEMPLATE_MISSING_FIELD,
        `field ${JSON.stringify(name)} is not a column of the CSV header (${columns.join(', ')})`,
        { field: name, line: 1 },
      );
    }
    return (values: readonly string[]) => values[index];
  };
}

export interface CompiledTemplate {
  /** The field names the template reads, for early checks against a CSV header. */
  fields: string[];
  /** True when the template has no placeholders. */
  constant: boolean;
  render(record: SourceRecord | readonly string[]): string;
}

const PLACEHOLDER = /\{\{\s*([^{}]+?)\s*\}\}/g;

/** Thrown by `render` when a record lacks a field; the caller adds file, line and seq. */
export class MissingFieldError extends Error {
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(`field ${JSON.stringify(field)} ${detail}`);
  }
}

/** Compiles a template string. Throws BP_TEMPLATE_INVALID on an unclosed `{{`. */
export function compileTemplate(
  template: string,
  what = 'template',
  resolve: FieldResolver = objectFieldResolver,
): CompiledTemplate {
  const parts: Part[] = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    if (match.index > last) parts.push(template.slice(last, match.index));
    const name = match[1]!;
    parts.push({ name, get: resolve(name) });
    last = match.index + match[0].length;
  }
  if (last < template.length) parts.push(template.slice(last));
  const rest = template.replace(PLACEHOLDER, '');
  if (rest.includes('{{')) {
    throw new BatchpipeError(
      ErrorCodes.TEMPLATE_INVALID,
      `${what} has an unclosed "{{": ${JSON.stringify(template)}`,
    );
  }
  const fields = parts.filter((p): p is FieldRef => typeof p !== 'string').map((p) => p.name);
  if (fields.length === 0) return { fields, constant: true, render: () => template };
  return {
    fields,
    constant: false,
    render(record: SourceRecord | readonly string[]) {
      let out = '';
      for (const part of parts)
        out += typeof part === 'string' ? part : renderValue(part.get(record), part.name);
      return out;
    },
  };
}

/** Values go in as text: strings verbatim, numbers and booleans as written, objects as JSON. */
function renderValue(value: unknown, name: string): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'undefined':
      throw new MissingFieldError(name, 'is missing from the record');
    default:
      if (value === null) throw new MissingFieldError(name, 'is null');
      return JSON.stringify(value);
  }
}

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
  path: string[];
}

export interface CompiledTemplate {
  /** The field names the template reads, for early checks against a CSV header. */
  fields: string[];
  /** True when the template has no placeholders. */
  constant: boolean;
  render(record: SourceRecord): string;
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
export function compileTemplate(template: string, what = 'template'): CompiledTemplate {
  const parts: Part[] = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    if (match.index > last) parts.push(template.slice(last, match.index));
    const name = match[1]!;
    parts.push({ name, path: name.split('.') });
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
    render(record) {
      let out = '';
      for (const part of parts)
        out += typeof part === 'string' ? part : renderValue(lookup(record, part), part.name);
      return out;
    },
  };
}

function lookup(record: SourceRecord, ref: FieldRef): unknown {
  const whole = record[ref.name];
  if (whole !== undefined || ref.path.length === 1) return whole;
  let value: unknown = record;
  for (const key of ref.path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
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

/**
 * Compiles a JSON body template: every string value (not key) may hold placeholders. Rendering
 * builds a fresh object, inserting values as data, never splicing text into JSON.
 */
export function compileBodyTemplate(body: unknown): {
  fields: string[];
  render(record: SourceRecord): unknown;
} {
  const fields: string[] = [];
  const build = (node: unknown, path: string): ((record: SourceRecord) => unknown) => {
    if (typeof node === 'string') {
      const t = compileTemplate(node, `body template at ${path}`);
      fields.push(...t.fields);
      return t.constant ? () => node : t.render;
    }
    if (Array.isArray(node)) {
      const items = node.map((item, i) => build(item, `${path}[${i}]`));
      return (record) => items.map((render) => render(record));
    }
    if (node !== null && typeof node === 'object') {
      const entries = Object.entries(node).map(([k, v]) => [k, build(v, `${path}.${k}`)] as const);
      return (record) => {
        const out: Record<string, unknown> = {};
        for (const [k, render] of entries) out[k] = render(record);
        return out;
      };
    }
    return () => node;
  };
  return { fields, render: build(body, 'body') };
}

import type { Rng } from '../util/prng.js';

/** Options for {@link instanceForSchema}. */
export interface InstanceOptions {
  rng: Rng;
  /** Words to build strings from (e.g. taken from the prompt). */
  words?: readonly string[];
}

type Schema = Record<string, unknown>;

/** Below this depth optional parts are left out and recursive shapes take their shortest branch. */
const SHALLOW_DEPTH = 5;
/** A hard stop for schemas that require infinite recursion. */
const MAX_DEPTH = 24;
const FALLBACK_WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];

/**
 * Generates a JSON value valid against a JSON Schema (the subset Structured Outputs uses and then some):
 * `type` (also as an array), `nullable`, `const`, `enum`, `object`/`properties`/`required`/
 * `additionalProperties`/`minProperties`, `array`/`items`/`prefixItems`/`minItems`/`maxItems`/`uniqueItems`,
 * `string` with `minLength`/`maxLength`/`format`, `number`/`integer` with bounds and `multipleOf`,
 * `boolean`, `null`, `anyOf`/`oneOf`/`allOf`, and local `$ref`s (`#/$defs/…`, `#/definitions/…`, `#`).
 * `pattern` is not honoured. Deterministic for a given `rng` state.
 * @example instanceForSchema({ type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }, { rng })
 */
export function instanceForSchema(schema: unknown, options: InstanceOptions): unknown {
  const words = options.words && options.words.length > 0 ? options.words : FALLBACK_WORDS;
  const gen = new InstanceGenerator(schema, options.rng, words);
  return gen.value(schema, 0, '');
}

class InstanceGenerator {
  constructor(
    private readonly root: unknown,
    private readonly rng: Rng,
    private readonly words: readonly string[],
  ) {}

  value(input: unknown, depth: number, key: string): unknown {
    if (input === false) return null;
    if (!isSchema(input)) return this.string({}, key);
    const schema = this.resolve(input);
    if (depth > MAX_DEPTH) return null;
    if ('const' in schema) return schema.const;
    if (Array.isArray(schema.enum) && schema.enum.length > 0) return this.rng.pick(schema.enum);
    if (Array.isArray(schema.allOf)) return this.value(this.mergeAll(schema), depth, key);
    const branches = (schema.anyOf ?? schema.oneOf) as unknown;
    if (Array.isArray(branches) && branches.length > 0) {
      const { anyOf: _a, oneOf: _o, ...rest } = schema;
      const branch = this.chooseBranch(branches, depth);
      return this.value({ ...rest, ...(isSchema(branch) ? this.resolve(branch) : {}) }, depth, key);
    }
    switch (this.chooseType(schema, depth)) {
      case 'null':
        return null;
      case 'boolean':
        return this.rng.next() < 0.5;
      case 'integer':
        return this.number(schema, true);
      case 'number':
        return this.number(schema, false);
      case 'array':
        return this.array(schema, depth, key);
      case 'object':
        return this.object(schema, depth);
      default:
        return this.string(schema, key);
    }
  }

  private resolve(schema: Schema, seen = 0): Schema {
    const ref = schema.$ref;
    if (typeof ref !== 'string' || seen > 32) return schema;
    const target = this.pointer(ref);
    const { $ref: _r, ...rest } = schema;
    return this.resolve({ ...(isSchema(target) ? target : {}), ...rest }, seen + 1);
  }

  private pointer(ref: string): unknown {
    if (!ref.startsWith('#')) return {};
    const parts = ref.slice(1).split('/').filter(Boolean);
    let node: unknown = this.root;
    for (const raw of parts) {
      const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      node = isSchema(node) ? node[part] : undefined;
    }
    return node;
  }

  private mergeAll(schema: Schema): Schema {
    const { allOf, ...rest } = schema;
    const merged: Schema = { ...rest };
    for (const part of allOf as unknown[]) {
      if (!isSchema(part)) continue;
      const sub = this.resolve(part);
      const properties = {
        ...(merged.properties as Schema | undefined),
        ...(sub.properties as Schema | undefined),
      };
      const required = [...toStrings(merged.required), ...toStrings(sub.required)];
      Object.assign(merged, sub, { properties, required });
    }
    return merged;
  }

  /** Prefers non-null branches; deep down, prefers the ones that end recursion. */
  private chooseBranch(branches: unknown[], depth: number): unknown {
    const kinds = branches.map((b) => (isSchema(b) ? this.resolve(b) : {}));
    if (depth >= SHALLOW_DEPTH) {
      const leaf = kinds.findIndex((b) => b.type === 'null' || isLeafType(b.type));
      if (leaf >= 0) return branches[leaf];
    }
    const nonNull = branches.filter((_, i) => kinds[i]?.type !== 'null');
    return this.rng.pick(nonNull.length > 0 ? nonNull : branches);
  }

  private chooseType(schema: Schema, depth: number): string {
    const declared = Array.isArray(schema.type) ? toStrings(schema.type) : toStrings([schema.type]);
    const nullable = declared.includes('null') || schema.nullable === true;
    const types = declared.filter((t) => t !== 'null');
    if (nullable && (types.length === 0 || depth >= SHALLOW_DEPTH)) return 'null';
    if (types.length > 0)
      return depth >= SHALLOW_DEPTH ? (types.find(isLeafType) ?? this.rng.pick(types)) : this.rng.pick(types);
    if (isSchema(schema.properties) || schema.required !== undefined) return 'object';
    if (schema.items !== undefined || schema.prefixItems !== undefined) return 'array';
    if (schema.minimum !== undefined || schema.maximum !== undefined) return 'number';
    return 'string';
  }

  private object(schema: Schema, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const properties = isSchema(schema.properties) ? schema.properties : {};
    const required = new Set(toStrings(schema.required));
    for (const [name, sub] of Object.entries(properties)) {
      if (depth >= SHALLOW_DEPTH && !required.has(name)) continue;
      out[name] = this.value(sub, depth + 1, name);
    }
    // Required names without a declared schema still have to be present.
    for (const name of required)
      if (!(name in out)) out[name] = this.value(schema.additionalProperties, depth + 1, name);
    const minProperties = toInt(schema.minProperties) ?? 0;
    for (let i = 1; Object.keys(out).length < minProperties && schema.additionalProperties !== false; i++) {
      out[`extra_${i}`] = this.value(schema.additionalProperties, depth + 1, `extra_${i}`);
    }
    return out;
  }

  private array(schema: Schema, depth: number, key: string): unknown[] {
    const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : [];
    const min = Math.max(toInt(schema.minItems) ?? 0, prefix.length);
    const max = Math.max(min, toInt(schema.maxItems) ?? min + 3);
    let count = depth >= SHALLOW_DEPTH ? min : Math.min(max, Math.max(min, this.rng.int(1, 3)));
    const items = schema.items === undefined || schema.items === true ? { type: 'string' } : schema.items;
    if (schema.uniqueItems === true && isSchema(items)) {
      const resolved = this.resolve(items);
      if (Array.isArray(resolved.enum)) count = Math.max(min, Math.min(count, resolved.enum.length));
    }
    const out: unknown[] = [];
    const seen = new Set<string>();
    for (let i = 0; out.length < count && i < count * 8 + 8; i++) {
      const sub = i < prefix.length ? prefix[i] : items;
      const value = this.value(sub, depth + 1, key);
      if (schema.uniqueItems === true) {
        const fingerprint = JSON.stringify(value);
        if (seen.has(fingerprint)) continue;
        seen.add(fingerprint);
      }
      out.push(value);
    }
    return out;
  }

  private number(schema: Schema, integer: boolean): number {
    let lo = toNumber(schema.minimum) ?? -Infinity;
    let hi = toNumber(schema.maximum) ?? Infinity;
    const exMin = schema.exclusiveMinimum;
    const exMax = schema.exclusiveMaximum;
    const step = integer ? 1 : 0.01;
    // Draft 2020-12 gives exclusive bounds as numbers, draft 4 as booleans beside minimum/maximum.
    if (typeof exMin === 'number') lo = Math.max(lo, exMin + step);
    else if (exMin === true) lo += step;
    if (typeof exMax === 'number') hi = Math.min(hi, exMax - step);
    else if (exMax === true) hi -= step;
    if (lo === -Infinity) lo = hi === Infinity ? 0 : hi - 100;
    if (hi === Infinity) hi = lo + 100;
    const multipleOf = toNumber(schema.multipleOf);
    if (multipleOf !== undefined && multipleOf > 0) {
      const k = this.rng.int(
        Math.ceil(lo / multipleOf),
        Math.max(Math.ceil(lo / multipleOf), Math.floor(hi / multipleOf)),
      );
      return Number((k * multipleOf).toPrecision(12));
    }
    if (integer) return this.rng.int(Math.ceil(lo), Math.max(Math.ceil(lo), Math.floor(hi)));
    const value = Math.round((lo + this.rng.next() * (hi - lo)) * 100) / 100;
    return Math.min(hi, Math.max(lo, value));
  }

  private string(schema: Schema, key: string): string {
    let text = this.formatted(schema.format) ?? this.phrase(key);
    const min = toInt(schema.minLength) ?? 0;
    const max = toInt(schema.maxLength);
    while ([...text].length < min) text += ` ${this.rng.pick(this.words)}`;
    if (max !== undefined) text = [...text].slice(0, max).join('');
    return text;
  }

  private phrase(key: string): string {
    const count = this.rng.int(1, 3);
    const parts: string[] = [];
    for (let i = 0; i < count; i++) parts.push(this.rng.pick(this.words));
    return key && this.rng.next() < 0.3 ? `${key.replace(/_/g, ' ')} ${parts.join(' ')}` : parts.join(' ');
  }

  private formatted(format: unknown): string | undefined {
    const r = this.rng;
    const two = (n: number) => String(n).padStart(2, '0');
    const date = () => `20${two(r.int(20, 29))}-${two(r.int(1, 12))}-${two(r.int(1, 28))}`;
    const time = () => `${two(r.int(0, 23))}:${two(r.int(0, 59))}:${two(r.int(0, 59))}`;
    const hex = (n: number) => Array.from({ length: n }, () => r.int(0, 15).toString(16)).join('');
    switch (format) {
      case 'date-time':
        return `${date()}T${time()}Z`;
      case 'date':
        return date();
      case 'time':
        return `${time()}Z`;
      case 'email':
        return `${r.pick(this.words).replace(/[^a-z0-9]/gi, '') || 'user'}@example.com`;
      case 'uri':
      case 'url':
        return `https://example.com/${r.pick(this.words).replace(/[^a-z0-9]/gi, '') || 'page'}`;
      case 'hostname':
        return 'example.com';
      case 'uuid':
        return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
      case 'ipv4':
        return `192.0.2.${r.int(1, 254)}`;
      case 'ipv6':
        return `2001:db8::${r.int(1, 9999)}`;
      case 'duration':
        return `P${r.int(1, 30)}D`;
      default:
        return undefined;
    }
  }
}

function isSchema(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isLeafType(type: unknown): boolean {
  return type === 'string' || type === 'number' || type === 'integer' || type === 'boolean';
}

function toStrings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function toNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function toInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

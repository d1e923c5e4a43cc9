import { dialectOf, type ProviderName, type RequestDialect } from '../dialects/index.js';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { Endpoint, SourceRecord } from '../types.js';
import {
  type CompiledTemplate,
  compileTemplate,
  type FieldResolver,
  objectFieldResolver,
} from './template.js';

/** How records become request lines. Everything here is part of a run's identity in the ledger. */
export interface RequestTemplateOptions {
  /** The provider whose native body the options build (its request dialect); default `openai`. */
  provider?: ProviderName | undefined;
  /** Batch endpoint; default the provider's first (`/v1/chat/completions`, Anthropic's `/v1/messages`). */
  endpoint?: Endpoint | undefined;
  /** The model, set on every body (overrides a model in the body template). */
  model?: string | undefined;
  /** The user message (chat), `input` (responses, embeddings, moderations) or `prompt` (completions). */
  prompt?: string | undefined;
  /** The system message (chat) or `instructions` (responses). */
  system?: string | undefined;
  /** A JSON body template: any string value may hold `{{field}}` placeholders. */
  body?: Record<string, unknown> | undefined;
  /** Use this field's value verbatim as `custom_id`. */
  idColumn?: string | undefined;
  /** A `{{field}}` template for `custom_id`. */
  id?: string | undefined;
}

/** What the builder makes of one record: the id (undefined = derive from seq) and the request parts. */
export interface BuiltRequest {
  customId: string | undefined;
  url: Endpoint;
  body: Record<string, unknown>;
}

export type RequestBuilder = (record: SourceRecord | readonly string[]) => BuiltRequest;

/** Default `custom_id` for a record without an id column or template. */
export function derivedCustomId(seq: number): string {
  return `req-${seq}`;
}

/**
 * Compiles the options once into a function from record to request: the object view of
 * {@link compileTailEncoder}'s text (the one compiler), parsed back, so both are the same request.
 */
export function compileRequestBuilder(
  options: RequestTemplateOptions,
  resolve: FieldResolver = objectFieldResolver,
): RequestBuilder {
  const encodeTail = compileTailEncoder(options, resolve);
  return function buildRequest(record) {
    const { customId, tail } = encodeTail(record);
    const { url, body } = JSON.parse(`{${tail}`) as { url: Endpoint; body: Record<string, unknown> };
    return { customId, url, body };
  };
}

/** The endpoint the options name, else the provider's default. */
export function endpointOf(options: RequestTemplateOptions): string {
  return options.endpoint ?? dialectOf(options.provider).endpoints[0]!;
}

/** Refuses options no request can be built from, before anything is compiled. */
function checkOptions(
  options: RequestTemplateOptions,
  dialect: RequestDialect,
  endpoint: string,
): asserts endpoint is Endpoint {
  const endpoints = dialect.endpoints as readonly string[];
  if (!endpoints.includes(endpoint)) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `--provider ${dialect.name} has no endpoint ${endpoint}; expected ${endpoints.join(', ')}`,
    );
  }
  if (options.idColumn !== undefined && options.id !== undefined) {
    throw new BatchpipeError(ErrorCodes.USAGE, 'give --id-column or --id, not both');
  }
  if (options.model === undefined && typeof options.body?.model !== 'string') {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      'a model is required: give --model (or "model" in the --body template)',
    );
  }
  if (options.body === undefined && options.prompt === undefined) {
    throw new BatchpipeError(ErrorCodes.USAGE, 'nothing to send: give --prompt or a --body template');
  }
  if (options.system !== undefined && !dialect.systemEndpoints.includes(endpoint as Endpoint)) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `--system applies to ${dialect.systemEndpoints.join(' and ')}, not ${endpoint}`,
    );
  }
}

/**
 * The whole body as one template: the model first, then the `--body` fields, then prompt and system
 * placed by the provider's dialect, and what the provider requires filled in.
 */
function bodyTemplateOf(
  options: RequestTemplateOptions,
  dialect: RequestDialect,
  endpoint: Endpoint,
): Record<string, unknown> {
  const body: Record<string, unknown> = { ...(options.model === undefined ? {} : { model: options.model }) };
  Object.assign(body, options.body);
  if (options.model !== undefined) body.model = options.model;
  if (options.prompt !== undefined) dialect.placePrompt(endpoint, body, options.prompt, options.system);
  dialect.completeBody(endpoint, body);
  return body;
}

function idTemplateOf(options: RequestTemplateOptions, resolve: FieldResolver): CompiledTemplate | undefined {
  if (options.id !== undefined) return compileTemplate(options.id, '--id', resolve);
  if (options.idColumn !== undefined)
    return compileTemplate(`{{${options.idColumn}}}`, '--id-column', resolve);
  return undefined;
}

/** The request line after its custom_id, as JSON text, and the request's model. */
export interface EncodedTail {
  customId: string | undefined;
  model: string | undefined;
  /** `"method":"POST","url":…,"body":{…}}`: the line without `{"custom_id":…,`. */
  tail: string;
}

/**
 * The request compiler: compiles the options straight to JSON text. Constant parts are encoded once,
 * and each record only renders its placeholders (values go in as data, JSON-escaped strings, never
 * spliced into the JSON) without building and walking an object per row.
 */
export function compileTailEncoder(
  options: RequestTemplateOptions,
  resolve: FieldResolver = objectFieldResolver,
): (record: SourceRecord | readonly string[]) => EncodedTail {
  const dialect = dialectOf(options.provider);
  const endpoint = endpointOf(options);
  checkOptions(options, dialect, endpoint);
  const body = bodyTemplateOf(options, dialect, endpoint);
  const parts = compileJsonText({ method: 'POST', url: endpoint, body }, resolve);
  const first = parts[0];
  if (typeof first === 'string') parts[0] = first.slice(1); // drop the opening brace
  const id = idTemplateOf(options, resolve);
  const model = typeof body.model === 'string' ? compileTemplate(body.model, 'model', resolve) : undefined;
  return function encodeTail(record) {
    let tail = '';
    for (const part of parts) tail += typeof part === 'string' ? part : JSON.stringify(part.render(record));
    return { customId: id?.render(record), model: model?.render(record), tail };
  };
}

/** JSON text of a template value as constant text and templates to render and JSON-escape. */
function compileJsonText(node: unknown, resolve: FieldResolver): (string | CompiledTemplate)[] {
  const parts: (string | CompiledTemplate)[] = [];
  const text = (t: string) => {
    const last = parts.length - 1;
    if (typeof parts[last] === 'string') parts[last] += t;
    else parts.push(t);
  };
  const walk = (value: unknown, path: string): void => {
    if (typeof value === 'string') {
      const t = compileTemplate(value, `body template at ${path}`, resolve);
      if (t.constant) text(JSON.stringify(value));
      else parts.push(t);
    } else if (Array.isArray(value)) {
      text('[');
      value.forEach((item, i) => {
        if (i > 0) text(',');
        walk(item, `${path}[${i}]`);
      });
      text(']');
    } else if (value !== null && typeof value === 'object') {
      text('{');
      Object.entries(value).forEach(([k, v], i) => {
        text(`${i > 0 ? ',' : ''}${JSON.stringify(k)}:`);
        walk(v, `${path}.${k}`);
      });
      text('}');
    } else text(JSON.stringify(value));
  };
  walk(node, 'request');
  return parts;
}

/**
 * A builder whose every placeholder renders `probe`, for checking a template against the schemas
 * once instead of every record against them (see createRequestEncoder).
 */
export function compileProbeBuilder(options: RequestTemplateOptions): (probe: string) => BuiltRequest {
  let current = '';
  const build = compileRequestBuilder(options, () => () => current);
  return (probe) => {
    current = probe;
    return build({});
  };
}

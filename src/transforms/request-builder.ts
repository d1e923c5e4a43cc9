import { BatchpipeError, ErrorCodes } from '../errors.js';
import { ENDPOINTS, type Endpoint, type SourceRecord } from '../types.js';
import { compileBodyTemplate, compileTemplate, type FieldResolver, objectFieldResolver } from './template.js';

/** How records become request lines. Everything here is part of a run's identity in the ledger. */
export interface RequestTemplateOptions {
  /** Batch endpoint; default `/v1/chat/completions`. */
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

/** Compiles the options once into a function from record to request. */
export function compileRequestBuilder(
  options: RequestTemplateOptions,
  resolve: FieldResolver = objectFieldResolver,
): RequestBuilder {
  const endpoint = options.endpoint ?? '/v1/chat/completions';
  if (!(ENDPOINTS as readonly string[]).includes(endpoint)) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `unknown endpoint ${endpoint}; expected one of ${ENDPOINTS.join(', ')}`,
    );
  }
  if (options.idColumn !== undefined && options.id !== undefined) {
    throw new BatchpipeError(ErrorCodes.USAGE, 'give --id-column or --id, not both');
  }
  // The model leads the body (as in OpenAI's examples) and is a constant of the template.
  const bodySource: Record<string, unknown> = {
    ...(options.model === undefined ? {} : { model: options.model }),
  };
  Object.assign(bodySource, options.body);
  if (options.model !== undefined) bodySource.model = options.model;
  const bodyTemplate = compileBodyTemplate(bodySource, resolve);
  const prompt =
    options.prompt === undefined ? undefined : compileTemplate(options.prompt, '--prompt', resolve);
  const system =
    options.system === undefined ? undefined : compileTemplate(options.system, '--system', resolve);
  const idTemplate = options.id === undefined ? undefined : compileTemplate(options.id, '--id', resolve);
  const idColumn =
    options.idColumn === undefined
      ? undefined
      : compileTemplate(`{{${options.idColumn}}}`, '--id-column', resolve);
  if (options.model === undefined && typeof options.body?.model !== 'string') {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      'a model is required: give --model (or "model" in the --body template)',
    );
  }
  if (options.body === undefined && prompt === undefined) {
    throw new BatchpipeError(ErrorCodes.USAGE, 'nothing to send: give --prompt or a --body template');
  }
  if (system !== undefined && !['/v1/chat/completions', '/v1/responses'].includes(endpoint)) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `--system applies to chat completions and responses, not ${endpoint}`,
    );
  }
  const placePrompt = promptPlacer(endpoint);

  return function buildRequest(record) {
    const body = bodyTemplate.render(record) as Record<string, unknown>;
    if (prompt !== undefined) placePrompt(body, prompt.render(record), system?.render(record));
    const source = idColumn ?? idTemplate;
    return { customId: source?.render(record), url: endpoint, body };
  };
}

/** Where `--prompt` and `--system` go in each endpoint's body. */
function promptPlacer(
  endpoint: Endpoint,
): (body: Record<string, unknown>, prompt: string, system?: string) => void {
  switch (endpoint) {
    case '/v1/chat/completions':
      return (body, prompt, system) => {
        const user = { role: 'user', content: prompt };
        const earlier = Array.isArray(body.messages) ? body.messages : [];
        body.messages =
          system === undefined ? [...earlier, user] : [{ role: 'system', content: system }, ...earlier, user];
      };
    case '/v1/responses':
      return (body, prompt, system) => {
        body.input = prompt;
        if (system !== undefined) body.instructions = system;
      };
    case '/v1/completions':
      return (body, prompt) => {
        body.prompt = prompt;
      };
    case '/v1/embeddings':
    case '/v1/moderations':
      return (body, prompt) => {
        body.input = prompt;
      };
  }
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

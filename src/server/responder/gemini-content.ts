import { contentsText } from '../../cost/prompt-text.js';
import { counterForModel } from '../../cost/tokens.js';
import type { Outcome } from '../execution.js';
import { unitVector } from './embeddings.js';
import { positiveInt, promptWords, replyText } from './reply-text.js';
import { isObject, ok, type RespondContext } from './respond-context.js';
import { instanceForSchema } from './schema-instance.js';
import { JSON_OBJECT_SCHEMA, structuredText } from './structured-output.js';

/**
 * Gemini's `models/{model}:generateContent`: one candidate per `candidateCount`, each a `model` content
 * with one part. `generationConfig.responseMimeType: application/json` gives JSON text valid against
 * `responseJsonSchema` or `responseSchema` (Gemini's OpenAPI-subset schema); a function forced by
 * `toolConfig.functionCallingConfig.mode: ANY` gives a `functionCall` part whose `args` fit the
 * function's parameters; otherwise a short text cut at `maxOutputTokens` (`finishReason: MAX_TOKENS`).
 */
export function respondGenerateContent(ctx: RespondContext, model: string): Outcome {
  const { body, rng } = ctx;
  if (!Array.isArray(body.contents) || body.contents.length === 0) {
    return invalidArgument('* GenerateContentRequest.contents: contents is not specified');
  }
  const empty = body.contents.findIndex(
    (c) => !isObject(c) || !Array.isArray(c.parts) || c.parts.length === 0,
  );
  if (empty !== -1) {
    return invalidArgument(
      `* GenerateContentRequest.contents[${empty}].parts: contents.parts must not be empty.`,
    );
  }
  const config = isObject(body.generationConfig) ? body.generationConfig : {};
  const prompt = [contentsText([body.systemInstruction]), contentsText(body.contents)]
    .filter(Boolean)
    .join('\n');
  const userText = lastUserContentText(body.contents) || prompt;
  const call = forcedFunction(body);
  const json = config.responseMimeType === 'application/json';
  const maxTokens = positiveInt(config.maxOutputTokens);
  const count = positiveInt(config.candidateCount) ?? 1;

  const counter = counterForModel(model);
  let outputTokens = 0;
  const candidates = Array.from({ length: count }, (_, index) => {
    let part: Record<string, unknown>;
    let finishReason = 'STOP';
    if (call) {
      const args = instanceForSchema(call.schema, { rng, words: promptWords(userText) });
      outputTokens += counter.count(JSON.stringify(args));
      part = { functionCall: { name: call.name, args } };
    } else if (json) {
      const schema = config.responseJsonSchema ?? jsonSchemaOf(config.responseSchema) ?? JSON_OBJECT_SCHEMA;
      const text = structuredText(schema, userText, rng);
      outputTokens += counter.count(text);
      part = { text };
    } else {
      const reply = replyText(userText, rng, counter, maxTokens);
      outputTokens += counter.count(reply.text);
      if (reply.truncated) finishReason = 'MAX_TOKENS';
      part = { text: reply.text };
    }
    return { content: { parts: [part], role: 'model' }, finishReason, index };
  });

  const promptTokens = counter.count(prompt);
  return ok({
    candidates,
    usageMetadata: {
      promptTokenCount: promptTokens,
      candidatesTokenCount: outputTokens,
      totalTokenCount: promptTokens + outputTokens,
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: promptTokens }],
    },
    modelVersion: model.replace(/^models\//, ''),
    responseId: ctx.idTail.slice(0, 22),
  });
}

const EMBEDDING_DIMENSIONS: Record<string, number> = {
  'models/gemini-embedding-001': 3072,
  'models/text-embedding-004': 768,
  'models/embedding-001': 768,
};
const MAX_EMBEDDING_DIMENSIONS = 3072;

/**
 * Gemini's `models/{model}:embedContent`: `{ embedding: { values } }`, a unit vector of the model's size
 * (3,072 for `gemini-embedding-001`, 768 otherwise) or `outputDimensionality`, for the text of `content`.
 */
export function respondEmbedContent(ctx: RespondContext, seed: number, model: string): Outcome {
  const { body } = ctx;
  const text = contentsText([body.content]);
  if (!isObject(body.content) || text === '') {
    return invalidArgument('* EmbedContentRequest.content: content is not specified');
  }
  const dimensions = positiveInt(body.outputDimensionality) ?? EMBEDDING_DIMENSIONS[model] ?? 768;
  if (dimensions > MAX_EMBEDDING_DIMENSIONS) {
    return invalidArgument(`outputDimensionality must be at most ${MAX_EMBEDDING_DIMENSIONS}.`);
  }
  return ok({ embedding: { values: unitVector(dimensions, seed, model, text) } });
}

/** A 400 `INVALID_ARGUMENT` answer in Google's error body. */
function invalidArgument(message: string): Outcome {
  return {
    kind: 'response',
    statusCode: 400,
    body: { error: { code: 400, message, status: 'INVALID_ARGUMENT' } },
  };
}

/** The text of the last content with role `user` (or no role), which the responder answers. */
function lastUserContentText(contents: unknown[]): string {
  for (let i = contents.length - 1; i >= 0; i--) {
    const c = contents[i];
    if (typeof c === 'string') return c;
    if (isObject(c) && (c.role === undefined || c.role === 'user')) return contentsText([c]);
  }
  return '';
}

/**
 * The function a request forces with `functionCallingConfig.mode: ANY` (the first of its
 * `allowedFunctionNames`, or the first declared), with the JSON Schema of its parameters.
 */
function forcedFunction(body: Record<string, unknown>): { name: string; schema: unknown } | undefined {
  const config = isObject(body.toolConfig) ? body.toolConfig.functionCallingConfig : undefined;
  if (!isObject(config) || config.mode !== 'ANY') return undefined;
  const declarations = (Array.isArray(body.tools) ? body.tools : [])
    .flatMap((t) => (isObject(t) && Array.isArray(t.functionDeclarations) ? t.functionDeclarations : []))
    .filter((d): d is Record<string, unknown> => isObject(d) && typeof d.name === 'string');
  const allowed = Array.isArray(config.allowedFunctionNames) ? config.allowedFunctionNames : [];
  const chosen = declarations.find((d) => allowed.length === 0 || allowed.includes(d.name)) ?? undefined;
  if (!chosen) return undefined;
  return {
    name: chosen.name as string,
    schema: chosen.parametersJsonSchema ??
      jsonSchemaOf(chosen.parameters) ?? { type: 'object', properties: {} },
  };
}

/**
 * A Gemini `Schema` (OpenAPI 3.0 subset: upper-case `type`, int64 bounds as strings, `nullable`,
 * `propertyOrdering`) as the JSON Schema the instance generator reads.
 */
export function jsonSchemaOf(schema: unknown): unknown {
  if (!isObject(schema)) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'type' && typeof value === 'string') out.type = value.toLowerCase();
    else if (key === 'items') out.items = jsonSchemaOf(value);
    else if (key === 'anyOf' && Array.isArray(value)) out.anyOf = value.map(jsonSchemaOf);
    else if (key === 'properties' && isObject(value)) {
      out.properties = Object.fromEntries(
        Object.entries(value).map(([name, sub]) => [name, jsonSchemaOf(sub)]),
      );
    } else if (/^(min|max)(Items|Length|Properties)$/.test(key)) out[key] = Number(value);
    else if (key !== 'propertyOrdering') out[key] = value;
  }
  return out;
}

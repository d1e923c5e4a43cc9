import { inputList } from '../../cost/prompt-text.js';
import { counterForModel, requestInputTokens } from '../../cost/tokens.js';
import { errorResponse, type Outcome } from '../execution.js';
import { createRng } from '../util/prng.js';
import { positiveInt } from './reply-text.js';
import { missingParameter, ok, type RespondContext } from './respond-context.js';

const MODEL_DIMENSIONS: Record<string, number> = {
  'text-embedding-3-large': 3072,
  'text-embedding-3-small': 1536,
  'text-embedding-ada-002': 1536,
};
const DEFAULT_DIMENSIONS = 1536;
const MAX_DIMENSIONS = 16_384;

/**
 * `/v1/embeddings`: a `list` of unit-length vectors, one per input, of the model's size or `dimensions`.
 * A vector depends only on the seed, model, size and input text, so equal texts embed equally.
 */
export function respondEmbeddings(ctx: RespondContext, seed: number): Outcome {
  const { body } = ctx;
  const inputs = inputList(body.input);
  if (body.input === undefined || inputs.length === 0) {
    return missingParameter('input');
  }
  if (inputs.some((text) => text.length === 0)) {
    return errorResponse(
      400,
      "'$.input' is invalid: an input must not be an empty string.",
      'invalid_request_error',
      null,
      'input',
    );
  }
  const model = String(body.model);
  const dimensions = positiveInt(body.dimensions) ?? MODEL_DIMENSIONS[model] ?? DEFAULT_DIMENSIONS;
  if (dimensions > MAX_DIMENSIONS) {
    return errorResponse(
      400,
      `'dimensions' must be at most ${MAX_DIMENSIONS}.`,
      'invalid_request_error',
      null,
      'dimensions',
    );
  }
  const base64 = body.encoding_format === 'base64';
  const tokens = requestInputTokens('/v1/embeddings', body, counterForModel(model));
  const data = inputs.map((text, index) => {
    const vector = unitVector(dimensions, seed, model, text);
    return {
      object: 'embedding',
      index,
      embedding: base64 ? Buffer.from(Float32Array.from(vector).buffer).toString('base64') : vector,
    };
  });
  return ok({
    object: 'list',
    data,
    model: body.model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
}

/** A unit-length vector that depends only on the seed, model, size and text (equal texts embed equally). */
export function unitVector(dimensions: number, seed: number, model: string, text: string): number[] {
  const rng = createRng(seed, 'embedding', model, dimensions, text);
  const vector = new Array<number>(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    const v = rng.next() * 2 - 1;
    vector[i] = v;
    norm += v * v;
  }
  const scale = 1 / Math.sqrt(norm || 1);
  for (let i = 0; i < dimensions; i++) vector[i] = Math.fround((vector[i] as number) * scale);
  return vector;
}

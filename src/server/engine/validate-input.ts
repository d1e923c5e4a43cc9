import { stat } from 'node:fs/promises';
import { inputList, promptText } from '../../cost/prompt-text.js';
import { counterForModel, requestInputTokens } from '../../cost/tokens.js';
import { ENDPOINTS } from '../../types.js';
import type { BatchError } from '../types.js';
import { isBlank, readLines } from './jsonl-lines.js';
import { parseRequestLine } from './request-line.js';

/** The Batch API's limits on an input file. */
export interface InputLimits {
  maxRequests: number;
  maxBytes: number;
  maxEmbeddingInputs: number;
  /** Stop collecting line errors after this many (the batch has failed anyway). */
  maxErrors: number;
}

export const DEFAULT_INPUT_LIMITS: InputLimits = {
  maxRequests: 50_000,
  maxBytes: 200 * 1024 * 1024,
  maxEmbeddingInputs: 50_000,
  maxErrors: 100,
};

/**
 * Whose model a request runs on: `one` model in every body of the file (OpenAI), `any` model in each
 * body (Anthropic), or the model `fixed` by the batch's URL, bodies naming none (Gemini).
 */
export type ModelRule = 'one' | 'any' | { fixed: string };

/** What a valid input file holds. */
export interface InputSummary {
  total: number;
  model: string;
  /** Estimated prompt tokens of all requests, for the enqueued-token limit. */
  tokens: number;
}

export type InputValidation = { ok: true; summary: InputSummary } | { ok: false; errors: BatchError[] };

/**
 * Validates a batch input file as OpenAI does before a batch starts: every line a JSON request with
 * `custom_id`, `method: POST`, `url` equal to the batch endpoint and a `body` with a `model`; one model
 * for the whole file; unique custom_ids; not empty; within the request, byte and embedding-input limits.
 * `models` relaxes the model rule for the other APIs' batches, whose requests the server writes itself.
 * Streams the file; memory grows only with the set of custom_ids (at most `maxRequests` of them).
 */
export async function validateInputFile(
  filePath: string,
  endpoint: string,
  limits: InputLimits = DEFAULT_INPUT_LIMITS,
  models: ModelRule = 'one',
): Promise<InputValidation> {
  const { size } = await stat(filePath);
  if (size > limits.maxBytes) {
    return fail([
      batchError('file_too_large', `The input file is ${size} bytes; the limit is ${limits.maxBytes} bytes.`),
    ]);
  }
  const errors: BatchError[] = [];
  const seen = new Set<string>();
  let total = 0;
  let tokens = 0;
  let embeddingInputs = 0;
  let model: string | undefined = typeof models === 'object' ? models.fixed : undefined;

  for await (const { lineNo, text } of readLines(filePath)) {
    if (isBlank(text)) continue;
    total++;
    if (total > limits.maxRequests) {
      errors.push(
        batchError(
          'too_many_tasks',
          `The input file has more than the maximum of ${limits.maxRequests} requests per batch.`,
          null,
          lineNo,
        ),
      );
      break;
    }
    const parsed = parseRequestLine(text);
    if (!parsed.ok) {
      errors.push({ ...parsed.issue, line: lineNo });
    } else {
      const { custom_id, url, body } = parsed.request;
      if (url !== endpoint) {
        errors.push(
          batchError(
            'url_mismatch',
            `The URL provided for this request (${JSON.stringify(url)}) does not match the batch endpoint ${endpoint}.`,
            'url',
            lineNo,
          ),
        );
      } else if (typeof models !== 'object' && (typeof body.model !== 'string' || body.model.length === 0)) {
        errors.push(
          batchError(
            'missing_required_parameter',
            "Missing required parameter: 'body.model'.",
            'body.model',
            lineNo,
          ),
        );
      } else if (models === 'one' && model !== undefined && body.model !== model) {
        errors.push(
          batchError(
            'model_mismatch',
            `The model ${JSON.stringify(body.model)} of this request differs from ${JSON.stringify(model)}, ` +
              'the model of the batch. All requests in a batch must use the same model.',
            'body.model',
            lineNo,
          ),
        );
      } else if (seen.has(custom_id)) {
        errors.push(
          batchError(
            'duplicate_custom_id',
            `The custom_id ${JSON.stringify(custom_id)} is a duplicate of another request. ` +
              'The custom_id parameter must be unique for each request in a batch.',
            'custom_id',
            lineNo,
          ),
        );
      } else {
        model ??= body.model as string;
        seen.add(custom_id);
        tokens += inputTokensOf(endpoint, body);
        if (endpoint === '/v1/embeddings') embeddingInputs += inputList(body.input).length;
      }
    }
    if (errors.length >= limits.maxErrors) break;
  }

  if (errors.length === 0 && total === 0) errors.push(batchError('empty_file', 'The input file is empty.'));
  if (errors.length === 0 && embeddingInputs > limits.maxEmbeddingInputs) {
    errors.push(
      batchError(
        'too_many_embedding_inputs',
        `The batch has ${embeddingInputs} embedding inputs; the limit is ${limits.maxEmbeddingInputs} across all requests.`,
      ),
    );
  }
  if (errors.length > 0 || model === undefined) return fail(errors);
  return { ok: true, summary: { total, model, tokens } };
}

function fail(errors: BatchError[]): InputValidation {
  return { ok: false, errors };
}

function batchError(
  code: string,
  message: string,
  param: string | null = null,
  line: number | null = null,
): BatchError {
  return { code, message, param, line };
}

/**
 * A request's input tokens for the enqueued-token limit: as OpenAI bills them on its endpoints; for
 * the Anthropic and Gemini dialects (whose tokenizers are not public), its prompt text counted with
 * the stand-in encoding.
 */
function inputTokensOf(endpoint: string, body: Record<string, unknown>): number {
  const counter = counterForModel(String(body.model ?? ''));
  if ((ENDPOINTS as readonly string[]).includes(endpoint)) return requestInputTokens(endpoint, body, counter);
  return counter.count(promptText(endpoint, body));
}

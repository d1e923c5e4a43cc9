/**
 * How batchpipe's request options become Gemini batch lines: `--prompt` and `--system` placed into a
 * native `GenerateContentRequest` (`contents` + `systemInstruction`), `--body` taken as one (its
 * `generationConfig.responseMimeType: application/json` + `responseSchema` / `responseJsonSchema` for
 * structured output), each line `{ "key": custom_id, "request": … }`. The model is the batch's, never
 * the line's (one model per Gemini batch). Pure: no I/O; the request compiler calls it once per run.
 */
import { IssueCodes } from '../../errors.js';
import { issue, jsonType, type ValidationIssue } from '../../validate/issues.js';

/** The line's field that carries the request's id. */
export const GEMINI_ID_FIELD = 'key';

/** The options of a run that shape its requests (templates: strings may hold `{{field}}`). */
export interface GeminiTemplateOptions {
  prompt?: string | undefined;
  system?: string | undefined;
  /** A native `GenerateContentRequest` template (`contents`, `generationConfig`, `tools`…). */
  body?: Record<string, unknown> | undefined;
}

/**
 * The request template: the `--body` fields, then `--system` as `systemInstruction` and `--prompt` as
 * the last user turn of `contents`. A `model` in the body template is left out of the request (the
 * batch names the model); the caller reads it from there.
 *
 * @example
 * geminiRequestTemplate({ system: 'Classify.', prompt: '{{text}}' })
 * // → { contents: [{ role: 'user', parts: [{ text: '{{text}}' }] }], systemInstruction: { parts: [{ text: 'Classify.' }] } }
 */
export function geminiRequestTemplate(options: GeminiTemplateOptions): Record<string, unknown> {
  const { model: _model, ...request } = options.body ?? {};
  if (options.system !== undefined) request.systemInstruction = { parts: [{ text: options.system }] };
  if (options.prompt !== undefined) {
    const earlier = Array.isArray(request.contents) ? request.contents : [];
    request.contents = [...earlier, { role: 'user', parts: [{ text: options.prompt }] }];
  }
  return request;
}

/** One line of a Gemini batch input file. */
export function geminiLine(
  key: string,
  request: Record<string, unknown>,
): { key: string; request: Record<string, unknown> } {
  return { [GEMINI_ID_FIELD]: key, request } as { key: string; request: Record<string, unknown> };
}

/**
 * What the Batch API would refuse in one request, as issues with paths under `request`: `contents`
 * a non-empty array of turns with `parts`, `systemInstruction` a content, `generationConfig` an object
 * whose `responseSchema` / `responseJsonSchema` come with `responseMimeType: application/json`.
 * Fields it does not know pass (the API adds them often).
 */
export function geminiRequestIssues(request: unknown): ValidationIssue[] {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    return [issue(IssueCodes.INVALID_TYPE, 'request', `expected object, got ${jsonType(request)}`)];
  }
  const body = request as Record<string, unknown>;
  const issues: ValidationIssue[] = [];
  if (body.contents === undefined) {
    issues.push(issue(IssueCodes.MISSING_FIELD, 'request.contents', 'required, expected array of contents'));
  } else if (!Array.isArray(body.contents)) {
    issues.push(
      issue(IssueCodes.INVALID_TYPE, 'request.contents', `expected array, got ${jsonType(body.contents)}`),
    );
  } else if (body.contents.length === 0) {
    issues.push(issue(IssueCodes.INVALID_VALUE, 'request.contents', 'must hold at least one content'));
  } else {
    for (const [i, content] of body.contents.entries()) {
      issues.push(...contentIssues(content, `request.contents[${i}]`));
    }
  }
  if (body.systemInstruction !== undefined) {
    issues.push(...contentIssues(body.systemInstruction, 'request.systemInstruction'));
  }
  const config = body.generationConfig;
  if (config !== undefined) {
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      issues.push(
        issue(
          IssueCodes.INVALID_TYPE,
          'request.generationConfig',
          `expected object, got ${jsonType(config)}`,
        ),
      );
    } else {
      const c = config as Record<string, unknown>;
      const schema =
        c.responseSchema !== undefined
          ? 'responseSchema'
          : c.responseJsonSchema !== undefined
            ? 'responseJsonSchema'
            : undefined;
      if (schema && c.responseMimeType !== 'application/json') {
        issues.push(
          issue(
            IssueCodes.INVALID_VALUE,
            'request.generationConfig.responseMimeType',
            `must be "application/json" when ${schema} is given`,
          ),
        );
      }
    }
  }
  return issues;
}

function contentIssues(content: unknown, path: string): ValidationIssue[] {
  if (typeof content !== 'object' || content === null || Array.isArray(content)) {
    return [issue(IssueCodes.INVALID_TYPE, path, `expected object, got ${jsonType(content)}`)];
  }
  const parts = (content as Record<string, unknown>).parts;
  if (!Array.isArray(parts)) {
    return [
      parts === undefined
        ? issue(IssueCodes.MISSING_FIELD, `${path}.parts`, 'required, expected array of parts')
        : issue(IssueCodes.INVALID_TYPE, `${path}.parts`, `expected array, got ${jsonType(parts)}`),
    ];
  }
  if (parts.length === 0)
    return [issue(IssueCodes.INVALID_VALUE, `${path}.parts`, 'must hold at least one part')];
  return [];
}

import type { BatchError } from '../types.js';
import { isObject } from '../util/is-object.js';

/** A parsed line of a batch input file. */
export interface RequestLine {
  custom_id: string;
  method: 'POST';
  url: string;
  body: Record<string, unknown>;
}

export type LineIssue = Omit<BatchError, 'line'>;

export type ParsedLine = { ok: true; request: RequestLine } | { ok: false; issue: LineIssue };

function missing(param: string): ParsedLine {
  return {
    ok: false,
    issue: { code: 'missing_required_parameter', message: `Missing required parameter: '${param}'.`, param },
  };
}

/**
 * Parses one input line and checks the fields every request needs, in the order OpenAI reports them.
 * Batch-wide rules (endpoint, one model, unique custom_id) are the validator's.
 */
export function parseRequestLine(text: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (!isObject(value)) {
    return {
      ok: false,
      issue: { code: 'invalid_json_line', message: 'This line is not parseable as valid JSON.', param: null },
    };
  }
  const { custom_id, method, url, body } = value;
  if (custom_id === undefined || custom_id === null) return missing('custom_id');
  if (typeof custom_id !== 'string' || custom_id.length === 0) {
    return {
      ok: false,
      issue: {
        code: 'invalid_type',
        message: "Invalid 'custom_id': expected a non-empty string.",
        param: 'custom_id',
      },
    };
  }
  if (method === undefined || method === null) return missing('method');
  if (method !== 'POST') {
    return {
      ok: false,
      issue: {
        code: 'invalid_method',
        message: `Invalid 'method': ${JSON.stringify(method)}. Only POST is supported.`,
        param: 'method',
      },
    };
  }
  if (url === undefined || url === null) return missing('url');
  if (typeof url !== 'string') {
    return {
      ok: false,
      issue: { code: 'invalid_type', message: "Invalid 'url': expected a string.", param: 'url' },
    };
  }
  if (!isObject(body)) return missing('body');
  return { ok: true, request: { custom_id, method, url, body } };
}

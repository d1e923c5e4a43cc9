import type { IncomingMessage } from 'node:http';
import { ApiError, invalidRequest } from './api-error.js';

const MAX_JSON_BYTES = 1024 * 1024;

const OPENAI_INVALID_JSON =
  "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)";

/**
 * Reads a JSON request body (at most `maxBytes`, 1 MiB by default) into an object; bad JSON is a 400
 * with `invalidJsonMessage` (OpenAI's words by default).
 */
export async function readJsonBody(
  req: IncomingMessage,
  { maxBytes = MAX_JSON_BYTES, invalidJsonMessage = OPENAI_INVALID_JSON } = {},
): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new ApiError(413, `The request body exceeds ${maxBytes} bytes.`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidRequest(invalidJsonMessage);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidRequest('The request body must be a JSON object.');
  }
  return value as Record<string, unknown>;
}

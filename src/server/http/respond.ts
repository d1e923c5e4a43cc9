import type { ServerResponse } from 'node:http';
import type { Dialect } from '../types.js';
import type { ApiError } from './api-error.js';
import { errorBody } from './dialect-errors.js';

/** Sends a JSON body with its length. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * Sends an error in the body shape of the API the request went to (OpenAI's by default), unless the
 * client has already gone or a response has started.
 */
export function sendError(res: ServerResponse, err: ApiError, dialect: Dialect = 'openai') {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const requestId = String(res.getHeader('request-id') ?? res.getHeader('x-request-id') ?? '');
  sendJson(res, err.status, errorBody(err, dialect, requestId), err.headers);
}

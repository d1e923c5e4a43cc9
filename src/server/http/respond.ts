import type { ServerResponse } from 'node:http';
import type { ApiError } from './api-error.js';

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

/** Sends an OpenAI-style error, unless the client has already gone or a response has started. */
export function sendError(res: ServerResponse, err: ApiError) {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  sendJson(res, err.status, err.toBody(), err.headers);
}

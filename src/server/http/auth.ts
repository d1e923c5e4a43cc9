import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiError } from './api-error.js';

/**
 * Bearer auth as OpenAI answers it: no key → 401; with `apiKey` configured, any other key → 401
 * `invalid_api_key`; without it, any key is accepted. The key is never echoed or logged.
 * Returns a check that throws the ApiError.
 */
export function bearerAuth(apiKey: string | undefined): (req: IncomingMessage) => void {
  const expected = apiKey === undefined ? undefined : Buffer.from(apiKey);
  return (req) => {
    // Azure OpenAI clients send the key as `api-key` instead.
    const azureKey = req.headers['api-key'];
    const header = req.headers.authorization ?? (typeof azureKey === 'string' ? `Bearer ${azureKey}` : '');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      throw new ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      );
    }
    if (expected === undefined) return;
    const given = Buffer.from(match[1] as string);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new ApiError(401, 'Incorrect API key provided.', { code: 'invalid_api_key' });
    }
  };
}

/**
 * The OpenAI Batch API's request dialect (OpenAI and every compatible API): five endpoints, request
 * lines as the API takes them, any `custom_id`.
 */
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_LINES } from '../validate/file-limits.js';
import type { RequestDialect } from './dialect.js';

export const OPENAI_DIALECT: RequestDialect = {
  name: 'openai',
  endpoints: [
    '/v1/chat/completions',
    '/v1/embeddings',
    '/v1/responses',
    '/v1/completions',
    '/v1/moderations',
  ],
  systemEndpoints: ['/v1/chat/completions', '/v1/responses'],
  limits: { maxLines: DEFAULT_MAX_LINES, maxBytes: DEFAULT_MAX_BYTES },

  placePrompt(endpoint, body, prompt, system) {
    switch (endpoint) {
      case '/v1/chat/completions': {
        const earlier = Array.isArray(body.messages) ? body.messages : [];
        const user = { role: 'user', content: prompt };
        body.messages =
          system === undefined ? [...earlier, user] : [{ role: 'system', content: system }, ...earlier, user];
        return;
      }
      case '/v1/responses':
        body.input = prompt;
        if (system !== undefined) body.instructions = system;
        return;
      case '/v1/completions':
        body.prompt = prompt;
        return;
      default:
        body.input = prompt;
    }
  },
  completeBody() {},
  wireId: () => undefined,
};

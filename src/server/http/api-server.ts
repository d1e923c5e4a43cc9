import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ApiContext, Handler } from '../api/api-context.js';
import { cancelBatch, createBatch, listBatches, retrieveBatch } from '../api/batches-api.js';
import { createFile, deleteFile, fileContent, listFiles, retrieveFile } from '../api/files-api.js';
import {
  cancelMessageBatch,
  createMessageBatch,
  deleteMessageBatch,
  listMessageBatches,
  messageBatchResults,
  retrieveMessageBatch,
} from '../dialects/anthropic/message-batches-api.js';
import {
  cancelGeminiBatch,
  createEmbedContentBatch,
  createGenerateContentBatch,
  deleteGeminiBatch,
  getGeminiBatch,
  listGeminiBatches,
} from '../dialects/gemini/batches-api.js';
import {
  deleteGeminiFile,
  downloadGeminiFile,
  getGeminiFile,
  listGeminiFiles,
  uploadGeminiFile,
} from '../dialects/gemini/files-api.js';
import { anthropicMessages, geminiContent, SYNC_PATHS, syncEndpoint } from '../sync/sync-api.js';
import type { Dialect } from '../types.js';
import { newRequestId } from '../util/ids.js';
import { ApiError, serverError } from './api-error.js';
import type { Authorize } from './auth.js';
import { applyConnectionLimits, type ConnectionLimits, timeoutServerOptions } from './connection-limits.js';
import { dialectOfPath } from './dialect-errors.js';
import { sendError } from './respond.js';
import { createRouter } from './router.js';

const match = createRouter<Handler>([
  // Anthropic's Message Batches API.
  ['POST', '/v1/messages/batches', createMessageBatch],
  ['GET', '/v1/messages/batches', listMessageBatches],
  ['GET', '/v1/messages/batches/:id', retrieveMessageBatch],
  ['DELETE', '/v1/messages/batches/:id', deleteMessageBatch],
  ['POST', '/v1/messages/batches/:id/cancel', cancelMessageBatch],
  ['GET', '/v1/messages/batches/:id/results', messageBatchResults],
  // Anthropic's Messages API, answered at once (the direct path).
  ['POST', '/v1/messages', anthropicMessages],
  // Gemini's Files and Batch APIs (custom methods before the plain resource of the same method).
  ['POST', '/upload/v1beta/files', uploadGeminiFile],
  ['GET', '/v1beta/files', listGeminiFiles],
  ['GET', '/v1beta/files/:id:download', downloadGeminiFile],
  ['GET', '/download/v1beta/files/:id:download', downloadGeminiFile],
  ['GET', '/v1beta/files/:id', getGeminiFile],
  ['DELETE', '/v1beta/files/:id', deleteGeminiFile],
  ['POST', '/v1beta/models/:model:batchGenerateContent', createGenerateContentBatch],
  ['POST', '/v1beta/models/:model:asyncBatchEmbedContent', createEmbedContentBatch],
  // Gemini's synchronous methods (the direct path).
  ['POST', '/v1beta/models/:model:generateContent', geminiContent('generateContent')],
  ['POST', '/v1beta/models/:model:embedContent', geminiContent('embedContent')],
  ['GET', '/v1beta/batches', listGeminiBatches],
  ['POST', '/v1beta/batches/:name:cancel', cancelGeminiBatch],
  ['GET', '/v1beta/batches/:name', getGeminiBatch],
  ['DELETE', '/v1beta/batches/:name', deleteGeminiBatch],
  // OpenAI's Files and Batches API.
  ['POST', '/v1/files', createFile],
  ['GET', '/v1/files', listFiles],
  ['GET', '/v1/files/:id', retrieveFile],
  ['DELETE', '/v1/files/:id', deleteFile],
  ['GET', '/v1/files/:id/content', fileContent],
  ['POST', '/v1/batches', createBatch],
  ['GET', '/v1/batches', listBatches],
  ['GET', '/v1/batches/:id', retrieveBatch],
  ['POST', '/v1/batches/:id/cancel', cancelBatch],
  // OpenAI's synchronous endpoints (the direct path).
  ...SYNC_PATHS.map((path): [string, string, Handler] => ['POST', path, syncEndpoint(path)]),
]);

/** Uploads stream a body the SDKs cannot send again, so an injected fault there would be a failure, not a retry. */
const UNREPLAYABLE = new Set<Handler>([createFile, uploadGeminiFile]);

/**
 * Azure OpenAI's paths for the same API, as the SDK's `AzureOpenAI` client sends them: the resource's
 * `/openai/files…` (with `?api-version=`), or `/openai/v1/files…` for its v1 API. Served as `/v1/…`.
 */
function openAIPath(path: string): string {
  return path.startsWith('/openai/') ? path.replace(/^\/openai(\/v1)?\//, '/v1/') : path;
}

export interface ApiServerOptions {
  /** Throws the API's 401/403 ApiError when the request is not authorised. */
  authorize: Authorize;
  /** The injected fault for this call, if any (`--http-fault-rate`), in the call's API. */
  nextFault: (dialect: Dialect) => ApiError | undefined;
  /** Connections open at once and the header and request timeouts. */
  limits: ConnectionLimits;
}

/**
 * The HTTP front: the API of the path (OpenAI, Anthropic or Gemini), its auth, then routing, then
 * (except for uploads, which the SDKs cannot replay) an injected fault, then the handler. Every failure
 * becomes an error body of the path's API; nothing a request sends can crash the process. A request
 * whose client went away (or that its timeout cut) is logged in one line by connection-limits.ts, not
 * as an error.
 */
export function createApiServer(ctx: ApiContext, options: ApiServerOptions): Server {
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q === -1 ? url : url.slice(0, q);
    const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    const dialect = dialectOfPath(rawPath);
    // Anthropic's SDK reads the request id from `request-id`; the others from `x-request-id`.
    res.setHeader(dialect === 'anthropic' ? 'request-id' : 'x-request-id', newRequestId());
    const request = track(req, res, method, rawPath);
    try {
      options.authorize(req, dialect, query);
      const { handler, params } = match(method, openAIPath(rawPath));
      if (!UNREPLAYABLE.has(handler)) {
        const fault = options.nextFault(dialect);
        if (fault) throw fault;
      }
      await handler(ctx, req, res, params, query);
    } catch (err) {
      if (request.gone()) return; // nobody to answer; its close is logged
      if (!(err instanceof ApiError)) {
        ctx.log(
          `${method} ${rawPath}: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
        );
      }
      sendError(res, err instanceof ApiError ? err : serverError(), dialect);
    }
  };
  const server = createServer(timeoutServerOptions(options.limits), (req, res) => {
    void handle(req, res);
  });
  const track = applyConnectionLimits(server, options.limits, ctx.log);
  return server;
}

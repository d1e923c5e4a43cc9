import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ApiContext, Handler } from '../api/api-context.js';
import { cancelBatch, createBatch, listBatches, retrieveBatch } from '../api/batches-api.js';
import { createFile, deleteFile, fileContent, listFiles, retrieveFile } from '../api/files-api.js';
import { newRequestId } from '../util/ids.js';
import { ApiError, serverError } from './api-error.js';
import { applyConnectionLimits, type ConnectionLimits, timeoutServerOptions } from './connection-limits.js';
import { sendError } from './respond.js';
import { createRouter } from './router.js';

const match = createRouter<Handler>([
  ['POST', '/v1/files', createFile],
  ['GET', '/v1/files', listFiles],
  ['GET', '/v1/files/:id', retrieveFile],
  ['DELETE', '/v1/files/:id', deleteFile],
  ['GET', '/v1/files/:id/content', fileContent],
  ['POST', '/v1/batches', createBatch],
  ['GET', '/v1/batches', listBatches],
  ['GET', '/v1/batches/:id', retrieveBatch],
  ['POST', '/v1/batches/:id/cancel', cancelBatch],
]);

/**
 * Azure OpenAI's paths for the same API, as the SDK's `AzureOpenAI` client sends them: the resource's
 * `/openai/files…` (with `?api-version=`), or `/openai/v1/files…` for its v1 API. Served as `/v1/…`.
 */
function openAIPath(path: string): string {
  return path.startsWith('/openai/') ? path.replace(/^\/openai(\/v1)?\//, '/v1/') : path;
}

export interface ApiServerOptions {
  /** Throws a 401 ApiError when the request is not authorised. */
  authorize: (req: IncomingMessage) => void;
  /** The injected fault for this call, if any (`--http-fault-rate`). */
  nextFault: () => ApiError | undefined;
  /** Connections open at once and the header and request timeouts. */
  limits: ConnectionLimits;
}

/**
 * The HTTP front: auth, then routing, then (except for uploads, which the SDK cannot replay) an injected
 * fault, then the handler. Every failure becomes an OpenAI-style error body; nothing a request sends can
 * crash the process. A request whose client went away (or that its timeout cut) is logged in one
 * line by connection-limits.ts, not as an error.
 */
export function createApiServer(ctx: ApiContext, options: ApiServerOptions): Server {
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('x-request-id', newRequestId());
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q === -1 ? url : url.slice(0, q);
    const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    const request = track(req, res, method, rawPath);
    try {
      options.authorize(req);
      const { handler, params } = match(method, openAIPath(rawPath));
      if (handler !== createFile) {
        const fault = options.nextFault();
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
      sendError(res, err instanceof ApiError ? err : serverError());
    }
  };
  const server = createServer(timeoutServerOptions(options.limits), (req, res) => {
    void handle(req, res);
  });
  const track = applyConnectionLimits(server, options.limits, ctx.log);
  return server;
}

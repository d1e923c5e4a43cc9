/**
 * The server's limits and manners toward its clients: how many connections it keeps open at once,
 * how long a client may take to send a request's headers and its whole body, and one log line for
 * each request that did not end normally (a client that went away, a request cut at its timeout, a
 * malformed request), never a stack trace. Owns the `http.Server`'s connection settings and its
 * `drop` and `clientError` events; the request handler reports each request here with `track`.
 */
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  /** Connections open at once; one more is closed as soon as it is accepted. */
  maxConnections: number;
  /** Milliseconds a client has to send a request's headers. */
  headersTimeoutMs: number;
  /** Milliseconds a client has to send a whole request, body included; then 408 and closed. */
  requestTimeoutMs: number;
}

/** A request as `track` follows it. */
export interface TrackedRequest {
  /** True once the client's connection is gone: nobody is left to answer, and `track` logs why. */
  gone(): boolean;
}

/** Drops are summed over this long before the next log line, so a flood logs a line per period. */
const DROP_LOG_PERIOD_MS = 10_000;

/**
 * Options for `createServer`: the timeouts, and how often Node looks for expired requests (30 s by
 * its default, which would let a 1 s timeout run 30 s).
 */
export function timeoutServerOptions(limits: ConnectionLimits): ServerOptions {
  const shortest = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(shortest / 4))),
  };
}

/**
 * Applies the connection cap to `server`, answers client errors (408 for a request not complete in
 * time, 400 for a malformed one) and logs each request that did not end normally in one line.
 * Returns `track`, which the request handler calls first for every request.
 *
 * @example
 * const server = createServer(timeoutServerOptions(limits), (req, res) => {
 *   const request = track(req, res, 'GET', '/v1/files');
 *   …
 * });
 * const track = applyConnectionLimits(server, limits, log);
 */
export function applyConnectionLimits(
  server: Server,
  limits: ConnectionLimits,
  log: (line: string) => void,
): (req: IncomingMessage, res: ServerResponse, method: string, path: string) => TrackedRequest {
  /** The request each socket is serving, and why it was cut short if the server cut it. */
  const inFlight = new WeakMap<Socket, { cutBy?: string }>();
  const seconds = (ms: number) => `${ms / 1000} s`;

  server.maxConnections = limits.maxConnections;
  // The first refusal is logged at once, then how many more each period: a flood costs a few lines.
  let dropped = 0;
  let period: NodeJS.Timeout | undefined;
  const endPeriod = () => {
    period = undefined;
    if (dropped > 0) {
      log(`refused ${dropped} more connection${dropped === 1 ? '' : 's'} beyond the cap`);
    }
    dropped = 0;
  };
  server.on('drop', () => {
    if (period !== undefined) {
      dropped++;
      return;
    }
    log(
      `refused a connection: ${limits.maxConnections} are open, the maximum (max connections); the client may retry`,
    );
    period = setTimeout(endPeriod, DROP_LOG_PERIOD_MS).unref();
  });
  server.on('close', () => {
    clearTimeout(period);
    endPeriod();
  });

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    // A reset, or the connection ending inside a request (the parser's EOF error), is a client
    // leaving: between requests nothing is cut short, and a request it cuts logs that on its close.
    const reset = err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'HPE_INVALID_EOF_STATE';
    const status = timedOut
      ? '408 Request Timeout'
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : '400 Bad Request';
    const answered = `answered ${status.slice(0, 3)} and closed`;
    const request = inFlight.get(socket);
    if (request) {
      // The request's own close logs it, with its method and path.
      if (timedOut) {
        request.cutBy = `not complete within the request timeout (${seconds(limits.requestTimeoutMs)}): ${answered}`;
      } else if (!reset) {
        request.cutBy = `the request was malformed (${err.code ?? err.message}): ${answered}`;
      }
    } else if (timedOut) {
      log(
        `a client sent no complete request headers within ${seconds(limits.headersTimeoutMs)}: ${answered}`,
      );
    } else if (!reset) {
      log(`a client sent a malformed request (${err.code ?? err.message}): ${answered}`);
    }
    // As Node's own default: answer unless a response has started, and close (a client that keeps
    // sending must not hold the socket).
    const responding = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (socket.writable && !responding?.headersSent) {
      socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
    socket.destroy();
  });

  return (req, res, method, path) => {
    const socket = req.socket;
    const state: { cutBy?: string } = {};
    inFlight.set(socket, state);
    const started = Date.now();
    res.once('close', () => {
      if (inFlight.get(socket) === state) inFlight.delete(socket);
      if (res.writableFinished) return;
      const why =
        state.cutBy ??
        (req.complete
          ? 'the client closed the connection before the response was complete'
          : 'the client closed the connection before the request body was complete');
      log(`${method} ${path}: ${why} (after ${seconds(Date.now() - started)})`);
    });
    return { gone: () => socket.destroyed };
  };
}

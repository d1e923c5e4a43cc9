import { type AddressInfo, BlockList, isIP } from 'node:net';
import type { ApiContext } from './api/api-context.js';
import { createBatchEngine } from './engine/batch-engine.js';
import type { Executor } from './execution.js';
import { createApiFaults } from './faults/api-faults.js';
import { httpFaults } from './faults/http-faults.js';
import { withLatency } from './faults/latency.js';
import { withFailRate } from './faults/request-faults.js';
import { stallHold } from './faults/stall.js';
import { createApiServer } from './http/api-server.js';
import { bearerAuth } from './http/auth.js';
import { type LocalServerOptions, redactUrl, resolveOptions } from './options.js';
import { createBuiltinResponder } from './responder/builtin-responder.js';
import { lockDataDir, openDataDir } from './store/data-dir.js';
import { openServerStore } from './store/server-store.js';
import { createUpstreamExecutor } from './upstream/upstream-executor.js';
import { createClock } from './util/clock.js';

export type { LocalServerOptions } from './options.js';
export { parseDurationSeconds } from './util/duration.js';

/** A running local server. */
export interface LocalServer {
  /** Base URL ending in `/v1`, ready for `new OpenAI({ baseURL: url, apiKey })`. */
  url: string;
  /** Stops accepting calls, stops batch work (keeping every finished line) and releases the data dir. */
  close(): Promise<void>;
}

/**
 * Starts the built-in Batch API server: the Files and Batches endpoints over real HTTP, state in
 * `dataDir` (unfinished batches continue after a restart), answers from the deterministic built-in
 * responder or an `upstream` OpenAI-compatible server, and optional faults.
 * @example
 * const server = await startLocalServer({ dataDir: '.batchpipe/server', port: 0 });
 * const client = new OpenAI({ apiKey: 'local', baseURL: server.url });
 * // … files.create, batches.create, batches.retrieve, files.content …
 * await server.close();
 */
export async function startLocalServer(options: LocalServerOptions): Promise<LocalServer> {
  const opts = resolveOptions(options);
  const dataDir = openDataDir(opts.dataDir);
  const unlock = lockDataDir(dataDir);
  let store: ReturnType<typeof openServerStore> | undefined;
  try {
    store = openServerStore(dataDir.dbPath);
    const clock = createClock(opts.clockSkewSeconds);
    const base: Executor = opts.upstream
      ? createUpstreamExecutor({ baseUrl: opts.upstream, apiKey: opts.upstreamApiKey })
      : createBuiltinResponder(opts.seed, clock);
    const executor = withLatency(withFailRate(base, opts.failRate, opts.seed), opts.latencyMs, opts.seed);
    const engine = createBatchEngine({
      store,
      dataDir,
      executor,
      seed: opts.seed,
      concurrency: opts.concurrency,
      enqueuedTokenLimit: opts.enqueuedTokenLimit,
      failValidationLine: opts.failValidationLine,
      clock,
      log: opts.log,
      holdIn: stallHold(opts.stall),
    });
    const ctx: ApiContext = {
      store,
      dataDir,
      engine,
      completionWindowMs: opts.completionWindowMs,
      maxUploadBytes: opts.maxUploadBytes,
      clock,
      faults: createApiFaults(opts),
      log: opts.log,
    };
    const server = createApiServer(ctx, {
      authorize: bearerAuth(opts.apiKey),
      nextFault: httpFaults(opts.httpFaultRate, opts.seed),
      limits: {
        maxConnections: opts.maxConnections,
        headersTimeoutMs: opts.headersTimeoutMs,
        requestTimeoutMs: opts.requestTimeoutMs,
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    engine.start();
    const { port } = server.address() as AddressInfo;
    const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    const url = `http://${host}:${port}/v1`;
    opts.log(
      `listening on ${url} (data ${dataDir.root}; ${opts.upstream ? `upstream ${redactUrl(opts.upstream)}` : 'built-in responder'}; ` +
        `${opts.apiKey === undefined ? 'any API key accepted' : 'API key required'})`,
    );
    if (opts.apiKey === undefined && !isLoopback(opts.host)) {
      opts.log(
        `warning: listening on ${opts.host}, which is not a loopback address, without an API key: anyone who can reach it ` +
          'can upload files and run batches (and spend an upstream key). Set a key: serve --api-key-file FILE, or BATCHPIPE_SERVE_API_KEY',
      );
    }

    let closed: Promise<void> | undefined;
    const openStore = store;
    return {
      url,
      close() {
        closed ??= (async () => {
          const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
          server.closeAllConnections();
          await engine.close();
          await stopped;
          openStore.close();
          unlock();
        })();
        return closed;
      },
    };
  } catch (err) {
    store?.close();
    unlock();
    throw err;
  }
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** True for an address only this machine can reach: 127.0.0.0/8, ::1, `localhost`. */
function isLoopback(host: string): boolean {
  const address = host.replace(/^\[(.*)\]$/, '$1');
  if (address.toLowerCase() === 'localhost') return true;
  const family = isIP(address);
  return family !== 0 && LOOPBACK.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

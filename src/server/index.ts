import { type AddressInfo, BlockList, isIP } from 'node:net';
import type { ApiContext } from './api/api-context.js';
import { ANTHROPIC_LIFECYCLE } from './dialects/anthropic/lifecycle.js';
import { geminiLifecycle } from './dialects/gemini/lifecycle.js';
import { createBatchEngine } from './engine/batch-engine.js';
import { type Lifecycles, OPENAI_LIFECYCLE } from './engine/dialect-lifecycle.js';
import type { Executor } from './execution.js';
import { createApiFaults } from './faults/api-faults.js';
import { flexUnavailable } from './faults/flex-unavailable.js';
import { httpFaults } from './faults/http-faults.js';
import { withLatency } from './faults/latency.js';
import { withFailRate } from './faults/request-faults.js';
import { stallHold } from './faults/stall.js';
import { createApiServer } from './http/api-server.js';
import { createAuth } from './http/auth.js';
import { dialectOfPath } from './http/dialect-errors.js';
import { type LocalServerOptions, redactUrl, resolveOptions } from './options.js';
import { createBuiltinResponder } from './responder/builtin-responder.js';
import { lockDataDir, openDataDir } from './store/data-dir.js';
import { openServerStore } from './store/server-store.js';
import { createRateLimits } from './sync/rate-limits.js';
import { openSyncLog } from './sync/sync-log.js';
import { createUpstreamExecutor } from './upstream/upstream-executor.js';
import { createClock } from './util/clock.js';

export type { LocalServerOptions } from './options.js';
export { parseDurationSeconds } from './util/duration.js';

/** A running local server. */
export interface LocalServer {
  /** Base URL ending in `/v1`, ready for `new OpenAI({ baseURL: url, apiKey })`. */
  url: string;
  /**
   * The server's origin (`http://127.0.0.1:8787`), the base URL of the other SDKs:
   * `new Anthropic({ baseURL: origin, apiKey })`, `new GoogleGenAI({ apiKey, httpOptions: { baseUrl: origin } })`.
   */
  origin: string;
  /** Stops accepting calls, stops batch work (keeping every finished line) and releases the data dir. */
  close(): Promise<void>;
}

/**
 * Starts the built-in Batch API server: OpenAI's Files and Batches endpoints, Anthropic's Message
 * Batches and Gemini's Files and Batch API over real HTTP, state in `dataDir` (unfinished batches
 * continue after a restart), answers from the deterministic built-in responder or (for OpenAI requests)
 * an `upstream` OpenAI-compatible server, and optional faults.
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
    const builtin = createBuiltinResponder(opts.seed, clock);
    const base: Executor = opts.upstream
      ? openAiToUpstream(
          createUpstreamExecutor({ baseUrl: opts.upstream, apiKey: opts.upstreamApiKey }),
          builtin,
        )
      : builtin;
    const executor = withLatency(withFailRate(base, opts.failRate, opts.seed), opts.latencyMs, opts.seed);
    const openStore = store;
    const gemini = geminiLifecycle({ store: openStore, dataDir, clock });
    const lifecycles: Lifecycles = (dialect) =>
      dialect === 'anthropic' ? ANTHROPIC_LIFECYCLE : dialect === 'gemini' ? gemini : OPENAI_LIFECYCLE;
    const engine = createBatchEngine({
      store,
      dataDir,
      executor,
      seed: opts.seed,
      concurrency: opts.concurrency,
      enqueuedTokenLimit: opts.enqueuedTokenLimit,
      failValidationLine: opts.failValidationLine,
      lifecycles,
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
      sync: {
        executor,
        limits: createRateLimits({ rpm: opts.rpm, tpm: opts.tpm }),
        countsTokens: opts.tpm !== undefined,
        log: openSyncLog(dataDir.root),
        flexRefusal: flexUnavailable(opts.flexUnavailable, opts.seed),
      },
      log: opts.log,
    };
    const server = createApiServer(ctx, {
      authorize: createAuth(opts.apiKey),
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
    const origin = `http://${host}:${port}`;
    const url = `${origin}/v1`;
    opts.log(
      `listening on ${url} (Anthropic and Gemini SDKs: base URL ${origin}; data ${dataDir.root}; ` +
        `${opts.upstream ? `upstream ${redactUrl(opts.upstream)} for OpenAI requests` : 'built-in responder'}; ` +
        `${opts.apiKey === undefined ? 'any API key accepted' : 'API key required'})`,
    );
    if (opts.apiKey === undefined && !isLoopback(opts.host)) {
      opts.log(
        `warning: listening on ${opts.host}, which is not a loopback address, without an API key: anyone who can reach it ` +
          'can upload files and run batches (and spend an upstream key). Set a key: serve --api-key-file FILE, or BATCHPIPE_SERVE_API_KEY',
      );
    }

    let closed: Promise<void> | undefined;
    return {
      url,
      origin,
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

/**
 * Sends OpenAI requests to the upstream and the other APIs' requests to the built-in responder: an
 * upstream is an OpenAI-compatible server, which speaks neither Anthropic's nor Gemini's bodies.
 */
function openAiToUpstream(upstream: Executor, builtin: Executor): Executor {
  return (request, signal) =>
    dialectOfPath(request.url) === 'openai' ? upstream(request, signal) : builtin(request, signal);
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

/**
 * Google's Gemini Batch API behind the provider port, through the official `@google/genai` SDK: request
 * files go up through the Files API (`files.upload`, a resumable upload the SDK streams in chunks from
 * disk), one batch per file (`batches.create` from the uploaded file, or `batches.createEmbeddings` for
 * embeddings), polled as the long-running operation it is (`operations.get`, which keeps the
 * `batchStats` and `error` the SDK's `BatchJob` drops), its results file downloaded (`files.download`);
 * `generateContent` / `embedContent` for the direct path (direct-sender.ts).
 * Owns the SDK client and the Gemini wire objects; touches nothing of the ledger.
 *
 * Request files hold batchpipe's lines with native Gemini bodies; each goes up as a converted copy of
 * `{ key, request }` lines (batch-input.ts), and results come back keyed by `custom_id`.
 *
 * Crash safety as the port asks: an upload carries its intent in its `displayName` (the name the
 * scheduler gives it), a batch in its own `displayName` (`batchpipe <run> <intent> <file>`), and both
 * are found again by listing. Gemini documents no order for its lists, so finding reads every page and
 * keeps what was created at or after the cut-off by the API's clock (the `date` header of its
 * answers): files live 48 hours, so the listing stays short.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError, type GoogleGenAI, type Operation } from '@google/genai';
import { redactUrl } from '../../server/options.js';
import type { RemoteBatch } from '../../types.js';
import type { ServerClock } from '../openai/server-clock.js';
import {
  type BatchIntent,
  type BatchProvider,
  type CreateBatchRequest,
  type FindSince,
  ProviderError,
  type RemoteFile,
  type UploadRequest,
} from '../port.js';
import { writeGeminiInput } from './batch-input.js';
import { geminiDirectSender } from './direct-sender.js';
import { GEMINI_PROVIDER, remoteBatchOfJob, remoteBatchOfOperation, unixSeconds } from './remote-batch.js';

export interface GeminiProviderOptions {
  /** The SDK client, made with {@link geminiHttpOptions} so the provider reads the API's clock. */
  client: GoogleGenAI;
  /** The clock those options feed. */
  clock: ServerClock;
  /** Where the API is (for messages when it cannot be reached). */
  baseUrl: string;
  /** Replaces any secret in a message before it is shown or stored (default: nothing to hide). */
  redact?: ((text: string) => string) | undefined;
  /** The first wait between polls, in ms (default 60 s: Gemini's batches take minutes at least). */
  pollIntervalMs?: number | undefined;
  /** Called by `close()` (the local backend stops its server there). */
  close?: (() => Promise<void>) | undefined;
}

/** The SDK retries nothing unless told to: reads are tried this many times (429, 5xx, the network). */
export const GEMINI_READ_ATTEMPTS = 5;
/** A call that creates something is tried once: the scheduler retries it, asking `find…` first. */
const ONE_ATTEMPT = { httpOptions: { retryOptions: { attempts: 1 } } };
/** The first wait before a read is tried again after a network failure; it doubles each time. */
const READ_RETRY_MS = 500;
/** Batches and files listed per page when looking for an intent's. */
const LIST_PAGE = 100;
/** What the request files are, for the Files API (the SDK cannot infer it from `.jsonl`). */
const JSONL_MIME_TYPE = 'application/jsonl';

/**
 * The SDK's `httpOptions` for a provider: its base URL, its retries for reads, and a `fetch` that
 * reads the API's clock from every answer's `date` header (the SDK's own transport hook: the requests
 * are the SDK's, unchanged).
 */
export function geminiHttpOptions(baseUrl: string | undefined, clock: ServerClock) {
  const observingFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const response = await fetch(input, init);
    clock.observe(response.headers.get('date'));
    return response;
  };
  return {
    ...(baseUrl === undefined ? {} : { baseUrl }),
    fetch: observingFetch,
    retryOptions: { attempts: GEMINI_READ_ATTEMPTS, initialDelay: 1, maxDelay: 30 },
  };
}

/** The intent's tag, the batch's `displayName`; `findBatchByIntent` matches on it. */
export function batchDisplayName(intent: BatchIntent): string {
  return `batchpipe ${intent.runId} ${intent.intentId} ${intent.fileName}`;
}

/** Endpoints whose requests are embeddings (`embedContent` lines): their batches are embedding batches. */
export function isEmbeddingEndpoint(endpoint: string): boolean {
  return /embed/i.test(endpoint);
}

/** The Gemini Batch API as a `BatchProvider`. */
export function geminiProvider(options: GeminiProviderOptions): BatchProvider {
  const { client, clock } = options;
  const redact = options.redact ?? ((text: string) => text);

  /** Runs an SDK call, turning its failure into a ProviderError without secrets. */
  async function call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw providerError(err, redact, options.baseUrl);
    }
  }

  /**
   * Runs a call that creates nothing, tried again when the network failed: the SDK retries HTTP 429 and
   * 5xx answers, but not a connection refused or reset in Node (`fetch failed`).
   */
  async function read<T>(run: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (err) {
        if (!(err instanceof TypeError) || attempt >= GEMINI_READ_ATTEMPTS) {
          throw providerError(err, redact, options.baseUrl);
        }
        await sleep(READ_RETRY_MS * 2 ** (attempt - 1));
      }
    }
  }

  /** The batch as its operation: state, `batchStats`, `error` and output as the wire has them. */
  async function operation(name: string): Promise<RemoteBatch> {
    const raw = await client.operations.get({ operation: rawOperation(name) });
    return remoteBatchOfOperation(raw as unknown as Record<string, unknown>);
  }

  return {
    name: GEMINI_PROVIDER,
    capabilities: { upload: true },
    pollIntervalMs: options.pollIntervalMs ?? 60_000,

    async serverNow() {
      if (clock.lowerBound() === undefined) {
        await read(() => client.batches.list({ config: { pageSize: 1 } }));
      }
      return clock.lowerBound();
    },

    async uploadFile(file: UploadRequest): Promise<RemoteFile> {
      // Gemini takes `{ key, request }` lines: a converted copy goes up, from a private folder.
      const dir = await mkdtemp(join(tmpdir(), 'batchpipe-gemini-'));
      try {
        const converted = join(dir, 'requests.jsonl');
        await writeGeminiInput(file.path, converted);
        // The SDK's own retries stay on here (`httpOptions` on an upload would replace the headers
        // that start it): a resumable upload makes its file only when the last chunk lands, once, so a
        // retried start or chunk cannot make a second file.
        const uploaded = await call(() =>
          client.files.upload({
            file: converted,
            config: { mimeType: JSONL_MIME_TYPE, displayName: file.name },
          }),
        );
        if (!uploaded.name) {
          throw new ProviderError('the Files API returned a file without a name', { retryable: true });
        }
        return {
          id: uploaded.name,
          name: uploaded.displayName ?? file.name,
          bytes: Number(uploaded.sizeBytes ?? 0),
          createdAt: unixSeconds(uploaded.createTime) ?? 0,
        };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },

    async findUpload(name: string, _bytes: number, { createdSince }: FindSince) {
      // Matched by name alone: the name carries the upload's own intent tag, a resumable upload makes
      // its file only once whole, and what went up is the converted copy, whose size is its own.
      return read(async () => {
        const pager = await client.files.list({ config: { pageSize: LIST_PAGE } });
        let found: RemoteFile | undefined;
        for await (const remote of pager) {
          const createdAt = unixSeconds(remote.createTime) ?? 0;
          if (createdSince !== undefined && createdAt < createdSince) continue;
          if (remote.displayName !== name || !remote.name) continue;
          if (!found || createdAt > found.createdAt) {
            found = { id: remote.name, name, bytes: Number(remote.sizeBytes ?? 0), createdAt };
          }
        }
        return found;
      });
    },

    async createBatch(request: CreateBatchRequest): Promise<RemoteBatch> {
      if (!('fileId' in request.input)) {
        throw new Error('internal error: the gemini provider creates batches from uploaded files');
      }
      if (!request.model) {
        throw new ProviderError(
          `${request.intent.fileName} names no model: a Gemini batch runs on one model`,
          {
            retryable: false,
          },
        );
      }
      const fileName = request.input.fileId;
      const config = { displayName: batchDisplayName(request.intent), ...ONE_ATTEMPT };
      const job = await call(() =>
        isEmbeddingEndpoint(request.endpoint)
          ? client.batches.createEmbeddings({ model: request.model!, src: { fileName }, config })
          : client.batches.create({ model: request.model!, src: fileName, config }),
      );
      return remoteBatchOfJob(job);
    },

    async findBatchByIntent(intent: BatchIntent, { createdSince }: FindSince) {
      const tag = batchDisplayName(intent);
      const name = await read(async () => {
        const pager = await client.batches.list({ config: { pageSize: LIST_PAGE } });
        for await (const job of pager) {
          const createdAt = unixSeconds(job.createTime) ?? 0;
          if (createdSince !== undefined && createdAt < createdSince) continue;
          if (job.displayName === tag && job.name) return job.name;
        }
        return undefined;
      });
      return name === undefined ? undefined : read(() => operation(name));
    },

    async retrieveBatch(id: string) {
      return read(() => operation(id));
    },

    async openResultFile(ref: string) {
      // The SDK downloads to a path only: into a private folder, then read back and removed.
      const dir = await mkdtemp(join(tmpdir(), 'batchpipe-gemini-'));
      const path = join(dir, 'results.jsonl');
      try {
        await read(() => client.files.download({ file: ref, downloadPath: path }));
      } catch (err) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
      return removedAfterReading(path, dir);
    },

    async cancelBatch(id: string) {
      try {
        await client.batches.cancel({ name: id });
      } catch (err) {
        // A batch that has ended cannot be cancelled: it stays as it ended.
        if (err instanceof ApiError && (err.status === 400 || err.status === 409)) return;
        throw providerError(err, redact, options.baseUrl);
      }
    },

    direct: geminiDirectSender(client, (err) => providerError(err, redact, options.baseUrl)),
    redact,
    close: options.close ?? (async () => {}),
  };
}

/**
 * An operation to fetch by name through the SDK's generic `operations.get`, handed back as the wire
 * has it (a Gemini batch is a long-running operation).
 */
function rawOperation(name: string): Operation<unknown> {
  return {
    name,
    _fromAPIResponse: ({ apiResponse }) => apiResponse as unknown as Operation<unknown>,
  };
}

/** The file's bytes, streamed; the folder goes once they are read (or reading stops). */
async function* removedAfterReading(path: string, dir: string): AsyncIterable<Buffer> {
  try {
    for await (const chunk of createReadStream(path)) yield chunk as Buffer;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Rate limits, server errors and the network may pass if tried again; anything else will not. */
function providerError(err: unknown, redact: (text: string) => string, baseUrl: string): ProviderError {
  if (err instanceof ProviderError) return err;
  const status = err instanceof ApiError ? err.status : undefined;
  // Without an HTTP status the network failed (fetch failed, a cut connection, an upload left unfinished).
  const unreachable = err instanceof TypeError;
  const retryable = status === undefined || status === 429 || status >= 500;
  const text = err instanceof Error ? err.message : String(err);
  const message = `${text}${unreachable ? ` (could not reach ${redactUrl(baseUrl)})` : ''}`;
  return new ProviderError(redact(message), { retryable, status, cause: err });
}

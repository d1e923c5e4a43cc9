/**
 * The OpenAI Batch API behind the provider port, through the official `openai` SDK: OpenAI itself,
 * any OpenAI-compatible Batch API by base URL, and the built-in local server. Every SDK call of
 * batchpipe's scheduler is here. Reads use the SDK's own retries; the calls that create something
 * (upload, create) make one attempt, which the scheduler retries after asking whether it landed.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import OpenAI, { toStreamingFile } from 'openai';
import type { APIPromise } from 'openai/core/api-promise';
import type { BatchCreateParams } from 'openai/resources/batches';
import type { FileObject } from 'openai/resources/files';
import { redactUrl } from '../../server/options.js';
import type { RemoteBatch } from '../../types.js';
import {
  type BatchIntent,
  type BatchProvider,
  type CreateBatchRequest,
  type DirectAnswer,
  type DirectCall,
  type DirectSender,
  type FindSince,
  ProviderError,
  type RemoteFile,
  type UploadRequest,
} from '../port.js';
import { OPENAI_PROVIDER, remoteBatchOf } from './remote-batch.js';
import { ServerClock } from './server-clock.js';

export interface OpenAIProviderOptions {
  /** The SDK client (its retries, timeouts and base URL); batchpipe gives it `SDK_RETRIES`. */
  client: OpenAI;
  /** Replaces any secret in a message before it is shown or stored (default: nothing to hide). */
  redact?: ((text: string) => string) | undefined;
  /** The first wait between polls, in ms (default 60 s, as OpenAI's batches take minutes at least). */
  pollIntervalMs?: number | undefined;
  /** Called by `close()` (the local backend stops its server there). */
  close?: (() => Promise<void>) | undefined;
}

/** Retries of the SDK for calls that create nothing (429, 5xx and the network). */
export const SDK_RETRIES = 4;
/** Batches listed per page when looking for an intent's batch. */
const LIST_PAGE = 100;

/** An OpenAI-compatible Batch API as a `BatchProvider`. */
export function openAIProvider(options: OpenAIProviderOptions): BatchProvider {
  const { client } = options;
  const redact = options.redact ?? ((text: string) => text);
  const clock = new ServerClock();

  /** Awaits an SDK call, reading the API's clock from its response on the way. */
  async function observed<T>(call: APIPromise<T>): Promise<T> {
    const { data, response } = await call.withResponse();
    clock.observe(response.headers.get('date'));
    return data;
  }

  /** Runs an SDK call, turning its failure into a ProviderError without secrets. */
  async function call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw providerError(err, redact, client.baseURL);
    }
  }

  return {
    name: OPENAI_PROVIDER,
    capabilities: { upload: true },
    pollIntervalMs: options.pollIntervalMs ?? 60_000,

    async serverNow() {
      if (clock.lowerBound() === undefined) await call(() => observed(client.batches.list({ limit: 1 })));
      return clock.lowerBound();
    },

    async uploadFile(file: UploadRequest): Promise<RemoteFile> {
      const uploaded = await call(() =>
        observed(
          client.files.create(
            {
              file: toStreamingFile(file.open(), file.name, { type: 'application/jsonl' }),
              purpose: 'batch',
            },
            { maxRetries: 0 },
          ),
        ),
      );
      return remoteFileOf(uploaded);
    },

    async findUpload(name: string, bytes: number, { createdSince }: FindSince) {
      return call(async () => {
        for await (const remote of client.files.list({ purpose: 'batch', order: 'desc' })) {
          if (createdSince !== undefined && remote.created_at < createdSince) return undefined;
          if (remote.filename === name && remote.bytes === bytes) return remoteFileOf(remote);
        }
        return undefined;
      });
    },

    async createBatch(request: CreateBatchRequest): Promise<RemoteBatch> {
      if (!('fileId' in request.input)) {
        throw new Error('internal error: the openai provider creates batches from uploaded files');
      }
      const inputFileId = request.input.fileId;
      const batch = await call(() =>
        observed(
          client.batches.create(
            {
              input_file_id: inputFileId,
              endpoint: request.endpoint as BatchCreateParams['endpoint'],
              completion_window: '24h',
              metadata: intentMetadata(request.intent),
            },
            { maxRetries: 0 },
          ),
        ),
      );
      return remoteBatchOf(batch);
    },

    async findBatchByIntent(intent: BatchIntent, { createdSince }: FindSince) {
      return call(async () => {
        for await (const batch of client.batches.list({ limit: LIST_PAGE })) {
          if (createdSince !== undefined && batch.created_at < createdSince) return undefined;
          const meta = batch.metadata as Record<string, string> | null | undefined;
          if (meta?.batchpipe_run === intent.runId && meta.batchpipe_intent === intent.intentId) {
            return remoteBatchOf(batch);
          }
        }
        return undefined;
      });
    },

    async retrieveBatch(id: string) {
      return remoteBatchOf(await call(() => observed(client.batches.retrieve(id))));
    },

    async openResultFile(ref: string) {
      const response = await call(() => client.files.content(ref));
      if (!response.body) return Readable.from([]);
      return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
    },

    async cancelBatch(id: string) {
      try {
        await client.batches.cancel(id);
      } catch (err) {
        // A batch that has ended cannot be cancelled: it stays as it ended.
        if (err instanceof OpenAI.APIError && (err.status === 400 || err.status === 409)) return;
        throw providerError(err, redact, client.baseURL);
      }
    },

    direct: directSender(client, redact),
    redact,
    close: options.close ?? (async () => {}),
  };
}

/**
 * Fetch settings of a direct call: an API call is never redirected, and with redirects refused (and no
 * window) fetch sends the request as it is instead of cloning it first (a copy of the request and a
 * tee of its body stream per call, garbage that outlives the call's scavenges).
 */
const DIRECT_FETCH = { redirect: 'error', window: null } as const;

/** The header the direct path names a request's custom_id in (the local server logs it). */
const CUSTOM_ID_HEADER = 'x-batchpipe-custom-id';

/**
 * The synchronous endpoints through the SDK (`client.post`, one attempt): a 2xx body is read as the raw
 * text the API sent, so the result applied is byte for byte the answer; an error answer is the SDK's
 * APIError, its status, headers and error object.
 */
function directSender(client: OpenAI, redact: (text: string) => string): DirectSender {
  return {
    async send(call: DirectCall): Promise<DirectAnswer> {
      const path = call.url.startsWith('/v1/') ? call.url.slice(3) : call.url;
      try {
        const response = await client
          .post(path, {
            // A string with its content-type goes as it is: the request's bytes as prepare encoded them.
            body: call.body,
            headers: { 'content-type': 'application/json', [CUSTOM_ID_HEADER]: call.customId },
            maxRetries: 0,
            timeout: call.timeoutMs,
            fetchOptions: DIRECT_FETCH,
          })
          .asResponse();
        return {
          status: response.status,
          headers: response.headers,
          body: await response.text(),
          requestId: response.headers.get('x-request-id'),
        };
      } catch (err) {
        if (err instanceof OpenAI.APIError && err.status !== undefined && err.headers !== undefined) {
          const error = err.error ?? { message: err.message, type: null, param: null, code: null };
          return {
            status: err.status,
            headers: err.headers,
            body: JSON.stringify({ error }),
            requestId: err.requestID ?? null,
          };
        }
        throw providerError(err, redact, client.baseURL);
      }
    },
  };
}

/** The batch's metadata names the run, file and intent: `findBatchByIntent` matches on it. */
function intentMetadata(intent: BatchIntent): Record<string, string> {
  return {
    batchpipe_run: intent.runId,
    batchpipe_file: intent.fileName,
    batchpipe_intent: intent.intentId,
  };
}

function remoteFileOf(file: FileObject): RemoteFile {
  return { id: file.id, name: file.filename, bytes: file.bytes, createdAt: file.created_at };
}

/** Rate limits, server errors and the network may pass if tried again; anything else will not. */
function providerError(err: unknown, redact: (text: string) => string, baseURL: string): ProviderError {
  const unreachable = err instanceof OpenAI.APIConnectionError;
  const retryable =
    unreachable || (err instanceof OpenAI.APIError && (err.status === 429 || (err.status ?? 0) >= 500));
  const status = err instanceof OpenAI.APIError ? err.status : undefined;
  // "Connection error." alone does not say where: name the API that could not be reached.
  const message = `${err instanceof Error ? err.message : String(err)}${unreachable ? ` (could not reach ${redactUrl(baseURL)})` : ''}`;
  return new ProviderError(redact(message), { retryable, status, cause: err });
}

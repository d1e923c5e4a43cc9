/**
 * Anthropic's Message Batches behind the provider port, through the official `@anthropic-ai/sdk`:
 * no uploads; a batch is created with its request file's lines inline (`{ custom_id, params }`), its
 * results streamed from `results()`; the Messages API for the direct path (direct-sender.ts). Reads use the SDK's own retries; a create makes one attempt,
 * which the scheduler retries after asking whether it landed.
 *
 * Anthropic batches carry no metadata, so an interrupted create is found by what a listing shows:
 * the oldest batch created since the intent (by the API's clock) with as many requests as the file,
 * that the ledger does not know yet (see docs/providers/anthropic.md).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import Anthropic from '@anthropic-ai/sdk';
import type { APIPromise } from '@anthropic-ai/sdk/core/api-promise';
import type { MessageBatch } from '@anthropic-ai/sdk/resources/messages/batches';
import { ANTHROPIC_DIALECT } from '../../dialects/anthropic.js';
import { BatchpipeError, ErrorCodes } from '../../errors.js';
import { redactUrl } from '../../server/options.js';
import type { RemoteBatch } from '../../types.js';
import { ServerClock } from '../openai/server-clock.js';
import {
  type BatchIntent,
  type BatchProvider,
  type CreateBatchRequest,
  type FindSince,
  ProviderError,
} from '../port.js';
import { anthropicDirectSender } from './direct-sender.js';
import { remoteBatchOfMessageBatch, unixSeconds } from './remote-batch.js';

export interface AnthropicProviderOptions {
  /** The SDK client (its retries, timeouts and base URL); batchpipe gives it `SDK_RETRIES`. */
  client: Anthropic;
  /** Replaces any secret in a message before it is shown or stored (default: nothing to hide). */
  redact?: ((text: string) => string) | undefined;
  /** The first wait between polls, in ms (default 60 s). */
  pollIntervalMs?: number | undefined;
  /** Called by `close()` (the local backend stops its server there). */
  close?: (() => Promise<void>) | undefined;
}

/** Batches listed per page when looking for an intent's batch. */
const LIST_PAGE = 100;
/** Result lines gathered into one chunk of the stream handed to the collector. */
const RESULT_LINES_PER_CHUNK = 256;

/** Anthropic's Message Batches API as a `BatchProvider`. */
export function anthropicProvider(options: AnthropicProviderOptions): BatchProvider {
  const { client } = options;
  const redact = options.redact ?? ((text: string) => text);
  const clock = new ServerClock();

  async function observed<T>(call: APIPromise<T>): Promise<T> {
    const { data, response } = await call.withResponse();
    clock.observe(response.headers.get('date'));
    return data;
  }

  async function call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw providerError(err, redact, client.baseURL);
    }
  }

  return {
    name: 'anthropic',
    capabilities: { upload: false },
    pollIntervalMs: options.pollIntervalMs ?? 60_000,

    async serverNow() {
      if (clock.lowerBound() === undefined) {
        await call(() => observed(client.messages.batches.list({ limit: 1 })));
      }
      return clock.lowerBound();
    },

    async createBatch(request: CreateBatchRequest): Promise<RemoteBatch> {
      if (!('path' in request.input)) {
        throw new Error('internal error: the anthropic provider sends request files inline');
      }
      const { path } = request.input;
      await checkBatchLimits(path);
      // The requests are streamed from the file as the body (the SDK sends an async iterable as it
      // comes), so a 256 MB batch is never held in memory; the params argument is then unused.
      const batch = await call(() =>
        observed(
          client.messages.batches.create(
            { requests: [] },
            { body: requestBody(path), headers: { 'content-type': 'application/json' }, maxRetries: 0 },
          ),
        ),
      );
      return remoteBatchOfMessageBatch(batch);
    },

    async findBatchByIntent(intent: BatchIntent, { createdSince }: FindSince) {
      return call(async () => {
        let found: MessageBatch | undefined;
        for await (const batch of client.messages.batches.list({ limit: LIST_PAGE })) {
          if (createdSince !== undefined && unixSeconds(batch.created_at) < createdSince) break;
          if (intent.isKnown?.(batch.id)) continue;
          const c = batch.request_counts;
          const total = c.processing + c.succeeded + c.errored + c.canceled + c.expired;
          // Newest first: the last match is the oldest, the one made right after the intent.
          if (intent.requests === undefined || total === intent.requests) found = batch;
        }
        return found === undefined ? undefined : remoteBatchOfMessageBatch(found);
      });
    },

    async retrieveBatch(id: string) {
      return remoteBatchOfMessageBatch(await call(() => observed(client.messages.batches.retrieve(id))));
    },

    async openResultFile(ref: string) {
      const results = await call(() => client.messages.batches.results(ref));
      return (async function* resultBytes() {
        let lines: string[] = [];
        try {
          for await (const line of results) {
            lines.push(`${JSON.stringify(line)}\n`);
            if (lines.length >= RESULT_LINES_PER_CHUNK) {
              yield Buffer.from(lines.join(''));
              lines = [];
            }
          }
        } catch (err) {
          throw providerError(err, redact, client.baseURL);
        }
        if (lines.length > 0) yield Buffer.from(lines.join(''));
      })();
    },

    async cancelBatch(id: string) {
      try {
        await client.messages.batches.cancel(id);
      } catch (err) {
        // A batch that has ended cannot be canceled: it stays as it ended.
        if (err instanceof Anthropic.APIError && (err.status === 400 || err.status === 409)) return;
        throw providerError(err, redact, client.baseURL);
      }
    },

    direct: anthropicDirectSender(client, (err) => providerError(err, redact, client.baseURL)),
    redact,
    close: options.close ?? (async () => {}),
  };
}

/** The request file's lines as Message Batch requests, `{ custom_id, params }` each. */
async function* inlineRequests(path: string): AsyncGenerator<string> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const text of lines) {
    if (text.trim() === '') continue;
    const line = JSON.parse(text) as { custom_id: unknown; body: unknown };
    yield JSON.stringify({ custom_id: line.custom_id, params: line.body });
  }
}

/** `{"requests":[` and `]}` around the requests: what the body adds to them, with a comma between two. */
const BODY_FRAME = '{"requests":[]}';
/** Bytes of body gathered into one piece of the stream. */
const BODY_PIECE_BYTES = 64 * 1024;

/**
 * Refuses a file that holds more than Anthropic takes in one batch, before anything is sent: prepare
 * keeps files within the limits, so only a file made elsewhere can exceed them.
 */
async function checkBatchLimits(path: string): Promise<void> {
  const { maxLines, maxBytes } = ANTHROPIC_DIALECT.limits;
  let count = 0;
  let bytes = BODY_FRAME.length - 1;
  for await (const request of inlineRequests(path)) {
    count++;
    bytes += Buffer.byteLength(request) + 1;
    if (count > maxLines || bytes > maxBytes) {
      throw new BatchpipeError(
        ErrorCodes.BATCH_TOO_LARGE,
        `${path} holds more than an Anthropic batch takes (${maxLines} requests, ${maxBytes} bytes); prepare it again with a smaller --max-lines or --max-bytes`,
      );
    }
  }
}

/** The creation's JSON body, streamed from the request file in pieces of about 64 KB. */
async function* requestBody(path: string): AsyncGenerator<Buffer> {
  let piece = BODY_FRAME.slice(0, -2);
  let first = true;
  for await (const request of inlineRequests(path)) {
    piece += first ? request : `,${request}`;
    first = false;
    if (piece.length >= BODY_PIECE_BYTES) {
      yield Buffer.from(piece);
      piece = '';
    }
  }
  yield Buffer.from(`${piece}]}`);
}

/** Rate limits (429), overloads (529) and other server errors may pass if tried again. */
function providerError(err: unknown, redact: (text: string) => string, baseURL: string): ProviderError {
  const unreachable = err instanceof Anthropic.APIConnectionError;
  const status = err instanceof Anthropic.APIError ? err.status : undefined;
  const retryable = unreachable || status === 429 || (status ?? 0) >= 500;
  const message = `${err instanceof Error ? err.message : String(err)}${unreachable ? ` (could not reach ${redactUrl(baseURL)})` : ''}`;
  return new ProviderError(redact(message), { retryable, status, cause: err });
}

/**
 * The port between the scheduler and a batch provider: the one interface the scheduler sees. A
 * provider owns its SDK, its wire objects and how its statuses and counts map onto the ledger's
 * `RemoteBatch`; the scheduler owns the ledger, the intents and the retries. Imports nothing above
 * errors and types.
 *
 * Crash safety is shared between the two. The scheduler commits an intent row before every call
 * that creates something remotely, and settles an intent left without an id by asking the provider
 * to find what it created (`findUpload`, `findBatchByIntent`), listing newest first down to a time
 * by the provider's own clock (`serverNow`), never by creating again. So a provider:
 * - makes exactly one attempt in `uploadFile` and `createBatch` (no retries of its own: a retry after
 *   a lost response could create twice); the scheduler retries them, asking `find…` first;
 * - may retry reads (`retrieveBatch`, listings, downloads) as it likes;
 * - tags what it creates so that `find…` can recognise it: the upload's name, the batch's intent;
 * - throws `ProviderError` (retryable or not), with secrets already removed from its message.
 */
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { RemoteBatch } from '../types.js';

/** What a provider can do beyond the calls every provider has. */
export interface ProviderCapabilities {
  /**
   * Request files are uploaded ahead and a batch is created from the uploaded file (OpenAI). Without
   * it the provider sends a file's requests inline with the create call (Anthropic's Message
   * Batches), and has no `uploadFile` / `findUpload`.
   */
  upload: boolean;
}

/** A file uploaded to the provider. */
export interface RemoteFile {
  id: string;
  name: string;
  bytes: number;
  /** Unix seconds by the provider's clock. */
  createdAt: number;
}

/**
 * Buffers an upload's chunks go round (`UploadRequest.open`). The OpenAI SDK's streaming upload
 * holds two at once (one being written to the socket, one queued behind it); the others are margin.
 */
export const UPLOAD_BUFFERS = 4;

/** A request file to upload, under a name that carries the upload's intent. */
export interface UploadRequest {
  name: string;
  bytes: number;
  /** The file on disk (for SDKs that read it themselves, in chunks). */
  path: string;
  /**
   * The file's bytes from its start, opened afresh for each try, in chunks read into
   * `UPLOAD_BUFFERS` buffers that go round: a consumer must be done with a chunk before it asks for
   * the `UPLOAD_BUFFERS`-th chunk after it, and copy any it keeps longer.
   */
  open(): AsyncIterable<Uint8Array>;
}

/** What the scheduler intended when it asked for a batch: the provider tags the batch with it. */
export interface BatchIntent {
  /** The run (the ledger's run id). */
  runId: string;
  /** The ledger's id of this intent, unique within the run. */
  intentId: string;
  /** The request file the batch is for. */
  fileName: string;
  /**
   * The file's requests, and whether the ledger already holds a batch by this id: for providers whose
   * batches carry no tag (Anthropic), which find the intent's batch by its request count among the
   * batches created since the intent that no other intent of the ledger holds.
   */
  requests?: number | undefined;
  isKnown?: ((remoteId: string) => boolean) | undefined;
}

/** A batch to create for one request file. */
export interface CreateBatchRequest {
  intent: BatchIntent;
  endpoint: string;
  model: string | null;
  /** The uploaded file (providers with `upload`), or the local request file whose lines go inline. */
  input: { fileId: string } | { path: string; lines: number; bytes: number };
}

/** Where to look for what an earlier, interrupted call created: made at or after `createdSince`. */
export interface FindSince {
  /** Unix seconds by the provider's clock; undefined: look through everything. */
  createdSince: number | undefined;
}

/** One request sent as a synchronous call (the direct path). */
export interface DirectCall {
  /** The request line's `url`, e.g. `/v1/chat/completions`, `/v1/messages`, `/v1beta/generateContent`. */
  url: string;
  /** The request line's `body`, as its JSON text (sent as it is, but for what the provider's endpoint
   *  takes elsewhere: Gemini's `model` goes in the path). */
  body: string;
  /** The request line's `custom_id` (the id on the wire): named in the answer's line, and to the
   *  provider in a header (the local server logs it). */
  customId: string;
  /** Gives up on the call after this long. */
  timeoutMs: number;
}

/**
 * What a synchronous call got back: an HTTP answer, with the line of the provider's batch result file
 * that says the same (its result dialect reads it as it reads a batch's: same states, extraction,
 * usage and cost). A successful answer's body is in the line byte for byte.
 */
export interface DirectAnswer {
  status: number;
  headers: { get(name: string): string | null };
  /** The answer as one result line of the provider's Batch API, under the call's `customId`. */
  line: string;
  /**
   * The wait the answer asked for before another call, where the provider says it in the body (Gemini's
   * `RetryInfo`); otherwise the headers say it (`retry-after-ms`, `retry-after`).
   */
  retryAfterMs?: number | undefined;
  /**
   * Set when a 429 says the provider has no capacity for the call now rather than that this client
   * is over its rate limit (OpenAI's flex tier: `resource_unavailable`): worth another try, but no
   * reason to slow the other calls.
   */
  capacityRefused?: boolean | undefined;
}

/**
 * The synchronous endpoints of a provider, one call per request: one attempt, no retries (the direct
 * path retries with its own backoff and rate limits). Answers every HTTP status (a 429 or 500 is an
 * answer); throws ProviderError only when no answer came (the network, a timeout).
 */
export interface DirectSender {
  send(call: DirectCall): Promise<DirectAnswer>;
  /**
   * The result line of a call that got no answer (the network, a timeout) after its tries: a failure
   * the provider's result dialect retries, as it would a batch's server error.
   */
  noAnswerLine(customId: string, message: string): string;
}

/** A Batch API behind the port: OpenAI (and every compatible API), next Anthropic and Gemini. */
export interface BatchProvider {
  /** Recorded with each batch in the ledger, e.g. `openai`. */
  readonly name: string;
  readonly capabilities: ProviderCapabilities;
  /** The first wait between polls that suits this provider, in ms (a local server answers in seconds). */
  readonly pollIntervalMs: number;
  /**
   * The provider's time now, unix seconds, never later than its true time (a lower bound); asks the
   * provider when it has not answered yet. Undefined when it cannot tell (then finding lists everything).
   */
  serverNow(): Promise<number | undefined>;
  /** Uploads a request file, one attempt (providers with `upload`). */
  uploadFile?: ((file: UploadRequest) => Promise<RemoteFile>) | undefined;
  /** The file uploaded under `name` with `bytes` bytes, if there is one (providers with `upload`). */
  findUpload?:
    | ((name: string, bytes: number, since: FindSince) => Promise<RemoteFile | undefined>)
    | undefined;
  /** Creates a batch, one attempt, tagged with its intent. */
  createBatch(request: CreateBatchRequest): Promise<RemoteBatch>;
  /** The batch created for this intent, if there is one. */
  findBatchByIntent(intent: BatchIntent, since: FindSince): Promise<RemoteBatch | undefined>;
  /** The batch as the provider shows it now. */
  retrieveBatch(id: string): Promise<RemoteBatch>;
  /** The bytes of a result file a `RemoteBatch` names (`outputFile`, `errorFile`), streamed. */
  openResultFile(ref: string): Promise<AsyncIterable<Buffer>>;
  /** Asks the provider to cancel a batch; one that has ended already is left as it is. */
  cancelBatch(id: string): Promise<void>;
  /** The provider's synchronous endpoints, where it has them (the direct path and hedging use them). */
  readonly direct?: DirectSender | undefined;
  /** Replaces any secret (the API key) in a text before it is shown or stored. */
  redact(text: string): string;
  /** Frees what the provider holds (the in-process server of the local backend). */
  close(): Promise<void>;
}

/** A failed provider call: `BP_API`, its message free of secrets; `retryable` when another try may work. */
export class ProviderError extends BatchpipeError {
  readonly retryable: boolean;
  /** The HTTP status of the answer, if there was one. */
  readonly status: number | undefined;

  constructor(
    message: string,
    options: { retryable: boolean; status?: number | undefined; cause?: unknown },
  ) {
    super(ErrorCodes.API, message, { cause: options.cause });
    this.name = 'ProviderError';
    this.retryable = options.retryable;
    this.status = options.status;
  }
}

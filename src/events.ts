/**
 * The typed events prepare, the scheduler and the collector emit as they work: the channel the CLI
 * renders as log lines, and progress bars and cost accounting subscribe to. Plain data, each with a
 * `type`; a listener is called synchronously, in order, and must not throw. Imports nothing.
 */

/** Prepare has handed another chunk of its input to the encoders. */
export interface PrepareProgressEvent {
  type: 'prepare.progress';
  /** Input bytes read so far (as UTF-8, after any BOM). */
  bytesRead: number;
  /** The input's size when known in those terms (a UTF-8 file); undefined for stdin and other encodings. */
  totalBytes: number | undefined;
  /** Records written to request files and the ledger so far: `staged + rejected`. */
  records: number;
  staged: number;
  rejected: number;
}

/** A request file is complete on disk and in the ledger (prepare, or a retry file of restaging). */
export interface FileWrittenEvent {
  type: 'file.written';
  file: string;
  path: string;
  /** 1 for prepare's files; retry files are numbered from 2. */
  attempt: number;
  requests: number;
  bytes: number;
  /** Estimated input tokens of its requests. */
  tokens: number;
  model: string | null;
}

/** A request file is on the provider (uploaded now, or found where an interrupted run uploaded it). */
export interface FileUploadedEvent {
  type: 'file.uploaded';
  file: string;
  remoteFileId: string;
  requests: number;
  bytes: number;
}

/** A batch exists for a request file. */
export interface BatchCreatedEvent {
  type: 'batch.created';
  batchId: string;
  provider: string;
  file: string;
  requests: number;
  /** Estimated input tokens the batch puts in the provider's queue. */
  tokens: number;
  model: string | null;
  /** Estimated tokens queued for the model with this batch; undefined when `recovered`. */
  queuedTokens: number | undefined;
  /** Found by its intent after an interrupted run, rather than created now. */
  recovered: boolean;
}

/** A batch as the provider reported it at a poll. */
export interface BatchPolledEvent {
  type: 'batch.polled';
  batchId: string;
  file: string;
  /** The ledger's status vocabulary; `rawStatus` is the provider's own word. */
  status: string;
  rawStatus: string;
  counts: { total: number; completed: number; failed: number } | null;
}

/** An ended batch's result files held fewer lines than it reports (or could not be read): read again. */
export interface BatchRedownloadEvent {
  type: 'batch.redownload';
  batchId: string;
  /** Lines read, when the files could be read. */
  linesRead: number | undefined;
  linesExpected: number;
  /** Why reading failed, when it did. */
  error: string | undefined;
}

/** One result file of a batch (or one given to `ingest`) applied to the ledger. */
export interface ResultsAppliedEvent {
  type: 'results.applied';
  batchId: string;
  /** The provider's reference of the file (an id, or a URL). */
  resultFile: string;
  lines: number;
  succeeded: number;
  failed: number;
  retried: number;
  skipped: number;
  /** Lines naming no request of this run, and a few of their custom_ids. */
  unknown: number;
  unknownIds: string[];
  /** Tokens newly recorded from this file (a file applied again adds nothing). */
  tokens: { input: number; output: number };
  /**
   * What those tokens cost at batch prices, in USD, when the scheduler was given prices: exact, not
   * rounded to the micro-dollar, so that the files of a run add up to its spent total.
   */
  costUsd?: number | undefined;
}

/** A batch has ended and its requests are settled. */
export interface BatchEndedEvent {
  type: 'batch.ended';
  batchId: string;
  file: string;
  status: string;
  counts: { total: number; completed: number; failed: number } | null;
  /** What became of the requests of a batch that failed whole, when it did. */
  failure:
    | { kind: 'token_limit'; othersQueued: boolean }
    | { kind: 'validation'; failed: number; restaged: number }
    | undefined;
  /** Tokens its requests used, as recorded. */
  tokens: { input: number; output: number };
}

/** Requests put back for another try were written into new request files. */
export interface RequestRetriedEvent {
  type: 'request.retried';
  requests: number;
  files: number;
}

/** The run waits for its batches (said again when the number of batches or held files changes). */
export interface RunWaitingEvent {
  type: 'run.waiting';
  /** Open batches per status. */
  byStatus: Record<string, number>;
  open: number;
  /** Files ready for a batch but held back by `maxBatches` / `maxEnqueuedTokens`. */
  heldFiles: number;
}

/** `cancel` asked the provider to cancel the run's open batches and now waits for them to end. */
export interface BatchesCancellingEvent {
  type: 'batches.cancelling';
  batches: number;
}

/** The direct path starts sending a request file's staged requests as synchronous calls. */
export interface DirectStartedEvent {
  type: 'direct.started';
  /** `direct` (the synchronous price) or `flex` (OpenAI's flex tier). */
  path: string;
  file: string;
  requests: number;
}

/** A direct run found requests a run that died had in flight: they are sent again (at-least-once). */
export interface DirectResumedEvent {
  type: 'direct.resumed';
  requests: number;
  /** Of those, how many had been sent (and may have been answered and billed) before. */
  resent: number;
}

/** Answers of the direct path were recorded (at most a few times a second). */
export interface DirectProgressEvent {
  type: 'direct.progress';
  path: string;
  file: string;
  /** Calls answered in this pass over the file, and of them recorded as succeeded. */
  answered: number;
  succeeded: number;
  /** Answers 429 for a rate limit (tried again after the wait the API asked for, every call held). */
  rateLimited: number;
  /** Answers 429 `resource_unavailable`: flex had no capacity (backed off; not a rate limit). */
  capacityRefused: number;
  /** Answers 5xx, and calls the network or a timeout left unanswered (backed off). */
  serverErrors: number;
}

/** The direct path is done with a request file (every staged request of it was answered). */
export interface DirectEndedEvent {
  type: 'direct.ended';
  path: string;
  file: string;
  answered: number;
  succeeded: number;
  rateLimited: number;
  capacityRefused: number;
  serverErrors: number;
  /** Wall time of the pass, in ms. */
  ms: number;
}

/**
 * The direct path has sent everything it had (its files and their retries): the whole drive's
 * answers, and the refusals it tried again, by why (`rateLimited`: 429 rate limits; `capacityRefused`:
 * flex's 429 `resource_unavailable`; `serverErrors`: 5xx and the network). Each refused answer counts
 * once, a request's last try included (that one is recorded as a retryable failure).
 */
export interface DirectFinishedEvent {
  type: 'direct.finished';
  path: string;
  /** Every request of the run is final. */
  final: boolean;
  answered: number;
  succeeded: number;
  rateLimited: number;
  capacityRefused: number;
  serverErrors: number;
}

/** A deadline-hedging decision, with its reason (`run --deadline … --hedge …`). */
export interface HedgeDecidedEvent {
  type: 'hedge.decided';
  /**
   * `cancel`: the batch is cancelled, its unanswered requests go on `path` once it ends; `take_over`:
   * it did not end in time after the cancel, its unanswered requests go on `path` now; `hold`: a reason
   * to hedge, but `--max-usd` does not cover the hedge path: the batches are left to finish.
   */
  action: 'cancel' | 'take_over' | 'hold';
  batchId: string;
  path: string;
  reason: string;
}

export type BatchpipeEvent =
  | DirectStartedEvent
  | DirectFinishedEvent
  | DirectResumedEvent
  | DirectProgressEvent
  | DirectEndedEvent
  | HedgeDecidedEvent
  | PrepareProgressEvent
  | FileWrittenEvent
  | FileUploadedEvent
  | BatchCreatedEvent
  | BatchPolledEvent
  | BatchRedownloadEvent
  | ResultsAppliedEvent
  | BatchEndedEvent
  | RequestRetriedEvent
  | RunWaitingEvent
  | BatchesCancellingEvent;

/** Receives events; called synchronously, in order. */
export type EventListener = (event: BatchpipeEvent) => void;

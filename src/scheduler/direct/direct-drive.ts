/**
 * The direct path: a run's staged requests sent as synchronous calls through the provider's
 * `DirectSender`, instead of in batches; each answer comes back as a line of the provider's batch result
 * file and is recorded as a batch's lines are (answer-lines.ts).
 * Reads each complete request file line by line and sends the lines whose requests are staged, at most
 * `concurrency` at once, paced under the rate limits (rate-pacer.ts), retrying 429 / 5xx / network
 * failures with backoff; what still fails is applied as a batch line is (a retryable failure goes back
 * to staged with attempt + 1, into a retry file, and is sent in the next pass). Memory: a page of a
 * file's staged ids, the calls in flight and one group of answers, never the whole input or file.
 *
 * Crash safety: each request's send is counted in the ledger, committed, before its call
 * (`markDirectSend`, in a batch row of the path); a run that dies leaves its calls in flight as
 * `submitted` there, and the next run sends them again (at-least-once) and counts them. A request
 * whose answer was applied is final or staged for another attempt, and never sent again as it was.
 * Touches the ledger through request-states / batches / apply, the provider through `direct` only.
 */
import { createReadStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { counterForModel, outputTokenBound, requestInputTokens } from '../../cost/tokens.js';
import { dialectOf } from '../../dialects/index.js';
import { BatchpipeError, ErrorCodes } from '../../errors.js';
import { LineCursor, lineChunks } from '../../internal/lines.js';
import { isRetryableStatus, MAX_RETRY_AFTER_MS, retryDelayMs } from '../../internal/retry-delay.js';
import { createSemaphore } from '../../internal/semaphore.js';
import { storedRunIdentity } from '../../ledger/identity.js';
import type { FileRow } from '../../ledger/ledger.js';
import { type DirectAnswer, type DirectSender, ProviderError } from '../../providers/port.js';
import { restageRetries } from '../restage.js';
import type { ScheduledRun } from '../scheduled-run.js';
import { AnswerGroups } from './answer-lines.js';
import { type PaceLimits, RatePacer } from './rate-pacer.js';

/** The synchronous paths: `direct` at the synchronous price, `flex` at OpenAI's flex tier (batch prices). */
export type DirectPath = 'direct' | 'flex';
export const DIRECT_PATHS: readonly DirectPath[] = ['direct', 'flex'];

export interface DirectOptions extends PaceLimits {
  path: DirectPath;
  /** Calls in flight at once. */
  concurrency: number;
  /** Attempts a request may have in all (a retryable failure recorded below it goes again). */
  maxAttempts: number;
  /** Gives up on a call after this long (flex answers slowly: give it longer). */
  timeoutMs?: number | undefined;
}

/**
 * The calls of the direct path that were answered and then tried again, by why: a limit (429 rate
 * limit), a refusal for capacity (flex's 429 `resource_unavailable`) or a fault (5xx, or no answer from
 * the network). Each refused answer counts once, the last try of a request included.
 */
export interface DirectRetryCounts {
  /** Answers 429 for a rate limit: the pacer holds every call for the wait they ask. */
  rateLimited: number;
  /** Answers 429 `resource_unavailable` (flex has no capacity now): backed off, not a rate limit. */
  capacityRefused: number;
  /** Answers 5xx, and calls that got no answer (network, timeout): backed off. */
  serverErrors: number;
}

/** What a direct drive did. */
export interface DirectResult extends DirectRetryCounts {
  /** Every request of the ledger is final. */
  final: boolean;
  answered: number;
  succeeded: number;
}

/** Default call timeouts: OpenAI suggests up to 15 minutes for flex, whose requests queue for capacity. */
export const DEFAULT_TIMEOUT_MS: Record<DirectPath, number> = { direct: 10 * 60_000, flex: 15 * 60_000 };
/**
 * Tries of one call before its failure is recorded (then it goes again in the next pass, attempt + 1):
 * a rate limit is waited out more often than a fault, and flex capacity comes back in its own time.
 */
const TRIES_AFTER_429 = 12;
const TRIES_AFTER_CAPACITY = 8;
const TRIES_AFTER_FAILURE = 5;

/**
 * Sends every staged request of the run on the direct path until none is left: files in order, retry
 * files after them, then the retries of those, up to `maxAttempts`. Returns when nothing staged is
 * left in a complete file (`final` says whether every request is final).
 */
export async function driveDirect(run: ScheduledRun, options: DirectOptions): Promise<DirectResult> {
  const sender = run.provider.direct;
  if (!sender) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `the ${run.provider.name} provider has no synchronous endpoints here: run it without --mode direct`,
    );
  }
  if (options.path === 'flex' && run.provider.name !== 'openai') {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `flex is OpenAI's flex processing: the ${run.provider.name} provider has no flex tier; send direct instead`,
    );
  }
  const total: DirectResult = {
    final: false,
    answered: 0,
    succeeded: 0,
    rateLimited: 0,
    capacityRefused: 0,
    serverErrors: 0,
  };
  const resumed = run.ledger.transaction(() => {
    run.tables.endInterruptedDirectRows();
    return run.states.resumeDirectInFlight(DIRECT_PATHS);
  });
  if (resumed.requests > 0) run.emit({ type: 'direct.resumed', ...resumed });
  const pacer = new RatePacer(options);
  for (;;) {
    const restaged = restageRetries(run.ledger, run.onEvent);
    if (restaged.requests > 0) run.emit({ type: 'request.retried', ...restaged });
    const files = run.tables.filesReadyForBatch(false);
    if (files.length === 0) break;
    for (const file of files) {
      const pass = await sendFile(run, sender, pacer, file, options);
      total.answered += pass.answered;
      total.succeeded += pass.succeeded;
      total.rateLimited += pass.rateLimited;
      total.capacityRefused += pass.capacityRefused;
      total.serverErrors += pass.serverErrors;
    }
  }
  total.final = run.states.unfinishedCount() === 0;
  const { final, ...counts } = total;
  run.emit({ type: 'direct.finished', path: options.path, final, ...counts });
  return total;
}

interface PassCounts extends DirectRetryCounts {
  answered: number;
  succeeded: number;
}

/** One pass over a request file: its staged requests sent, their answers applied. */
async function sendFile(
  run: ScheduledRun,
  sender: DirectSender,
  pacer: RatePacer,
  file: FileRow,
  options: DirectOptions,
): Promise<PassCounts> {
  const stagedCount = run.states.stagedCountInFile(file.id);
  const counts: PassCounts = {
    answered: 0,
    succeeded: 0,
    rateLimited: 0,
    capacityRefused: 0,
    serverErrors: 0,
  };
  if (stagedCount === 0) return counts;
  const started = Date.now();
  const row = run.tables.openDirectRow(file.id, options.path);
  run.emit({ type: 'direct.started', path: options.path, file: file.name, requests: stagedCount });
  let lastProgress = 0;
  const groups = new AnswerGroups(run, row.id, options.maxAttempts, () => {
    counts.answered = groups.totals.lines;
    counts.succeeded = groups.totals.succeeded;
    if (run.listening && Date.now() - lastProgress >= 1000) {
      lastProgress = Date.now();
      run.emit({ type: 'direct.progress', path: options.path, file: file.name, ...counts });
    }
  });
  const gate = createSemaphore(options.concurrency);
  const never = new AbortController().signal;
  const inFlight = new Set<Promise<void>>();
  let broken: { error: unknown } | undefined;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS[options.path];
  // Keyed by the id the file's lines carry: the provider's wire id where it cannot take the user's id as
  // it is (Anthropic's `custom_id` rule), which its answers' lines carry back too.
  const { wireId } = dialectOf(storedRunIdentity(run.ledger)?.provider);
  const staged = new StagedWalk((after) =>
    run.states
      .stagedInFile(file.id, after, STAGED_PAGE)
      .map(({ seq, custom_id }) => ({ seq, custom_id: wireId(custom_id) ?? custom_id })),
  );
  /** Sends the file's lines whose requests `pick` names (by seq), at most `concurrency` at once. */
  const sendLines = async (pick: (customId: string) => number | undefined) => {
    for await (const chunk of lineChunks(createReadStream(file.path))) {
      const lines = new LineCursor(chunk.bytes, chunk.firstLine);
      while (lines.advance()) {
        const request = requestOf(lines.text(), options.path);
        const seq = request && pick(request.customId);
        if (!request || seq === undefined) continue;
        const release = await gate.acquire(never);
        if (broken) {
          release();
          break;
        }
        const tokens = pacer.countsTokens ? request.countTokens() : 0;
        const task = sendOne(
          run,
          sender,
          pacer,
          { ...request, seq, rowId: row.id, tokens, timeoutMs },
          counts,
        )
          .then((line) => {
            if (line !== undefined) groups.add(line);
          })
          .catch((error: unknown) => {
            broken ??= { error };
          })
          .finally(() => {
            release();
            inFlight.delete(task);
          });
        inFlight.add(task);
      }
      if (broken) break;
    }
  };
  try {
    await sendLines((customId) => staged.match(customId));
    // A file whose lines are not in seq order (none that batchpipe writes) has staged requests the walk
    // passed: they are looked up by custom_id in a second pass, so none is left behind.
    const passed = broken ? undefined : staged.rest();
    if (passed && passed.size > 0) await sendLines((customId) => passed.get(customId));
  } finally {
    await Promise.allSettled(inFlight);
    await groups.close();
  }
  if (broken) throw broken.error;
  counts.answered = groups.totals.lines;
  counts.succeeded = groups.totals.succeeded;
  run.tables.endDirectRow(row.id, {
    total: stagedCount,
    completed: groups.totals.succeeded,
    failed: groups.totals.lines - groups.totals.succeeded,
  });
  run.emit({
    type: 'direct.ended',
    path: options.path,
    file: file.name,
    ...counts,
    ms: Date.now() - started,
  });
  return counts;
}

/** Staged requests read from the ledger at once: a file's ids are never all held (50,000 in a file). */
const STAGED_PAGE = 1024;

/**
 * The staged requests of a request file, met in the order of its lines: a file holds its requests in
 * seq order, so a line's request is staged exactly when it is the next staged one by seq. Reads the
 * ledger a page at a time, so memory does not grow with the file.
 */
class StagedWalk {
  #page: { seq: number; custom_id: string }[] = [];
  #at = 0;
  #after = -1;
  #ended = false;
  readonly #read: (afterSeq: number) => { seq: number; custom_id: string }[];

  constructor(read: (afterSeq: number) => { seq: number; custom_id: string }[]) {
    this.#read = read;
  }

  /** The seq of the line's request when it is the next staged one (then the walk moves on). */
  match(customId: string): number | undefined {
    const head = this.#head();
    if (head === undefined || head.custom_id !== customId) return undefined;
    this.#at++;
    return head.seq;
  }

  /** The staged requests the walk has not met, by custom_id. */
  rest(): Map<string, number> {
    const rest = new Map<string, number>();
    for (let head = this.#head(); head !== undefined; head = this.#head()) {
      rest.set(head.custom_id, head.seq);
      this.#at++;
    }
    return rest;
  }

  #head(): { seq: number; custom_id: string } | undefined {
    if (this.#at === this.#page.length && !this.#ended) {
      this.#page = this.#read(this.#after);
      this.#at = 0;
      this.#ended = this.#page.length === 0;
      if (!this.#ended) this.#after = this.#page[this.#page.length - 1]!.seq;
    }
    return this.#page[this.#at];
  }
}

interface LineRequest {
  customId: string;
  url: string;
  /** The body's JSON text as the file holds it (with `service_tier` added for flex). */
  body: string;
  /** Input tokens plus the most output it may bill, counted only when tokens are paced. */
  countTokens: () => number;
}

/**
 * A request line's custom_id, url and body text. The body is cut out of the line as written (prepare
 * writes it last), so the bytes sent are the bytes validated; a line written another way is encoded
 * again from its parsed body.
 */
function requestOf(text: string, path: DirectPath): LineRequest | undefined {
  if (text.trim() === '') return undefined;
  const line = JSON.parse(text) as { custom_id: string; url: string; body: Record<string, unknown> };
  let body = bodyText(text, line);
  if (path === 'flex' && line.body.service_tier === undefined) {
    body = body === '{}' ? '{"service_tier":"flex"}' : `${body.slice(0, -1)},"service_tier":"flex"}`;
  }
  const model = typeof line.body.model === 'string' ? line.body.model : '';
  return {
    customId: line.custom_id,
    url: line.url,
    body,
    countTokens: () =>
      requestInputTokens(line.url, line.body, counterForModel(model)) +
      (outputTokenBound(line.url, line.body).tokens ?? 0),
  };
}

/**
 * The body's text cut out of its line when the line ends with it and every member before it is a plain
 * value: then the first `,"body":` is the body's key (a string cannot hold `,"` unescaped), and what
 * follows, if it parses, is the body as written. Otherwise the parsed body encoded again.
 */
function bodyText(text: string, line: Record<string, unknown>): string {
  const at = text.indexOf(',"body":');
  const keys = Object.keys(line);
  const plainBefore =
    keys[keys.length - 1] === 'body' &&
    keys.every((k) => k === 'body' || line[k] === null || typeof line[k] !== 'object');
  if (at !== -1 && plainBefore && text.endsWith('}')) {
    const cut = text.slice(at + 8, -1);
    try {
      JSON.parse(cut);
      return cut;
    } catch {
      // A repeated key or an unusual layout: encode the parsed body.
    }
  }
  return JSON.stringify(line.body);
}

/**
 * Sends one request until it has an answer worth recording: its send counted first (the intent), then
 * tries paced by the pacer; a rate-limit 429 holds every call for the wait it asks (`retry-after-ms`,
 * `retry-after`); a flex capacity refusal, a 5xx or a network failure backs off exponentially with
 * jitter (or as `retry-after` asks) for this request alone. Returns its output line, or undefined when
 * the request was no longer staged (nothing sent).
 */
async function sendOne(
  run: ScheduledRun,
  sender: DirectSender,
  pacer: RatePacer,
  request: LineRequest & { seq: number; rowId: number; tokens: number; timeoutMs: number },
  counts: PassCounts,
): Promise<string | undefined> {
  for (let tries = 1; ; tries++) {
    await pacer.take(request.tokens);
    if (tries === 1 && !run.states.markDirectSend(request.rowId, request.seq)) return undefined;
    let answer: DirectAnswer | undefined;
    let failure: ProviderError | undefined;
    try {
      answer = await sender.send({
        url: request.url,
        body: request.body,
        customId: request.customId,
        timeoutMs: request.timeoutMs,
      });
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      failure = err;
    }
    if (answer) {
      pacer.learn(answer.headers);
      // A refusal for capacity says nothing of this client's pace.
      if (!answer.capacityRefused) pacer.noteStatus(answer.status);
    }
    const retryable = answer ? isRetryableStatus(answer.status) : failure!.retryable;
    if (!retryable) {
      return answer
        ? answer.line
        : sender.noAnswerLine(request.customId, run.provider.redact(failure!.message));
    }
    const kind = answer ? refusalOf(answer) : 'serverErrors';
    counts[kind]++;
    if (tries >= TRIES_OF[kind]) {
      return answer
        ? answer.line
        : sender.noAnswerLine(request.customId, run.provider.redact(failure!.message));
    }
    const asked = answer?.retryAfterMs;
    const wait =
      asked === undefined ? retryDelayMs(tries, answer?.headers) : Math.min(asked, MAX_RETRY_AFTER_MS);
    if (kind === 'rateLimited') pacer.hold(wait);
    await sleep(wait);
  }
}

const TRIES_OF: Record<keyof DirectRetryCounts, number> = {
  rateLimited: TRIES_AFTER_429,
  capacityRefused: TRIES_AFTER_CAPACITY,
  serverErrors: TRIES_AFTER_FAILURE,
};

/**
 * Why a retryable answer refused: a 429 is a rate limit unless the provider says it has no capacity
 * now (OpenAI's flex tier: not a limit on this client, so it does not slow the other calls); anything
 * else retryable is a server error.
 */
function refusalOf(answer: DirectAnswer): keyof DirectRetryCounts {
  if (answer.status !== 429) return 'serverErrors';
  return answer.capacityRefused ? 'capacityRefused' : 'rateLimited';
}

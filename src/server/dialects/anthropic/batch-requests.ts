/**
 * The body of an Anthropic batch creation, `{ requests: [{ custom_id, params }] }`, checked as
 * Anthropic checks it and written as the engine's input (one `{ custom_id, method, url: '/v1/messages',
 * body: params }` line a request). The body is streamed (it may be 256 MB): the requests array is cut
 * into elements by the JSON array scanner of src/sources, so memory holds one element and the set of
 * custom_ids. Owns the temporary input file until it is complete; removes it on any refusal.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { BatchpipeError } from '../../../errors.js';
import { LineSplitter } from '../../../internal/lines.js';
import { jsonArrayLines } from '../../../sources/json-array.js';
import { ApiError, invalidRequest } from '../../http/api-error.js';
import { isObject } from '../../util/is-object.js';

/** Anthropic's limits on one batch. */
export const MAX_BATCH_REQUESTS = 100_000;
export const MAX_BATCH_BYTES = 256 * 1024 * 1024;
/** `custom_id`: 1 to 64 letters, digits, `_` or `-`. */
const CUSTOM_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Streams the request body into the engine-form input file at `tmpPath` and returns the number of
 * requests. Throws a 400 ApiError naming the first request at fault (`requests.3.custom_id: …`), or a
 * 413 past 256 MB; the file is removed then.
 */
export async function writeBatchRequests(req: IncomingMessage, tmpPath: string): Promise<number> {
  const declared = Number(req.headers['content-length']);
  if (declared > MAX_BATCH_BYTES) throw tooLarge();
  const out = createWriteStream(tmpPath);
  // A client that goes away mid-body leaves writes queued on a stream destroyed below: their error
  // must not go unhandled (it would stop the server); one before the end fails the request.
  let writeError: Error | undefined;
  out.on('error', (err) => {
    writeError ??= err;
  });
  try {
    const count = await convert(req, out);
    out.end();
    await once(out, 'close');
    if (writeError) throw writeError;
    return count;
  } catch (err) {
    out.destroy();
    req.resume(); // Drain the rest so the client can read the answer.
    await rm(tmpPath, { force: true });
    if (err instanceof ApiError) throw err;
    if (err instanceof BatchpipeError) throw invalidRequest(bodyProblem(err.message));
    throw err;
  }
}

async function convert(req: IncomingMessage, out: NodeJS.WritableStream): Promise<number> {
  let bytes = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > MAX_BATCH_BYTES) throw tooLarge();
      yield chunk;
    }
  }
  const { lines, log } = jsonArrayLines(counted(), {
    name: 'the request body',
    path: ['requests'],
    encoding: 'utf-8',
    startOffset: 0,
  });
  const seen = new Set<string>();
  let pending: Buffer[] = [];
  const splitter = new LineSplitter((line) => pending.push(Buffer.from(line.bytes)));
  for await (const piece of lines) {
    splitter.push(piece);
    for (const element of pending) {
      const index = seen.size;
      const problem = log.problemOf(index);
      if (problem) throw invalidRequest(`requests.${index}: ${problem.message}`);
      if (index >= MAX_BATCH_REQUESTS) {
        throw invalidRequest(`requests: List should have at most ${MAX_BATCH_REQUESTS} items`);
      }
      const line = engineLine(JSON.parse(element.toString('utf8')) as unknown, index, seen);
      log.forget(index + 1);
      if (!out.write(`${line}\n`)) await once(out, 'drain');
    }
    pending = [];
  }
  splitter.end();
  if (pending.length > 0) throw new Error('internal error: an unterminated element line');
  if (seen.size === 0) throw invalidRequest('requests: List should have at least 1 item');
  return seen.size;
}

/** One request checked (its `custom_id` added to `seen`) and written in the engine's form. */
function engineLine(request: unknown, index: number, seen: Set<string>): string {
  const at = `requests.${index}`;
  if (!isObject(request)) throw invalidRequest(`${at}: Input should be a valid dictionary`);
  const { custom_id: customId, params } = request;
  if (customId === undefined) throw invalidRequest(`${at}.custom_id: Field required`);
  if (typeof customId !== 'string' || !CUSTOM_ID.test(customId)) {
    throw invalidRequest(`${at}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`);
  }
  if (seen.has(customId)) {
    throw invalidRequest(
      `${at}.custom_id: Duplicate custom_id ${JSON.stringify(customId)}: each request in a batch needs its own custom_id`,
    );
  }
  if (!isObject(params)) throw invalidRequest(`${at}.params: Field required`);
  if (typeof params.model !== 'string' || params.model === '') {
    throw invalidRequest(`${at}.params.model: Field required`);
  }
  if (!Number.isInteger(params.max_tokens) || (params.max_tokens as number) < 1) {
    throw invalidRequest(`${at}.params.max_tokens: Field required (an integer of at least 1)`);
  }
  if (!Array.isArray(params.messages)) throw invalidRequest(`${at}.params.messages: Field required`);
  if (params.stream === true)
    throw invalidRequest(`${at}.params.stream: streaming is not supported in a batch`);
  seen.add(customId);
  return JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/messages', body: params });
}

/** The JSON scanner's words (written for the CLI's `--json-path`) as an API's. */
function bodyProblem(message: string): string {
  if (/^no --json-path requests /.test(message)) return 'requests: Field required';
  return `The request body could not be parsed: ${message.replace(/--json-path requests/g, "'requests'")}`;
}

function tooLarge(): ApiError {
  return new ApiError(413, `Request exceeds the maximum size of a batch (${MAX_BATCH_BYTES} bytes).`, {
    type: 'request_too_large',
  });
}

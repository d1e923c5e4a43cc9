/**
 * The real token count of Batch API request lines: a request file streamed from disk, or lines
 * handed over one by one. Owns the `FileTokens` shape the ledger keeps per file (files.token_count,
 * JSON) and that `estimate`, `--max-usd` and `status` price; touches only the bytes it reads.
 */
import { createReadStream } from 'node:fs';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { LineCursor, lineChunks } from '../internal/lines.js';
import { counterForModel, outputTokenBound, requestInputTokens } from './tokens.js';

/** What a set of requests holds in tokens, as billed. */
export interface FileTokens {
  requests: number;
  /** Input tokens of every request (requestInputTokens). */
  inputTokens: number;
  /** The sum of the output bounds of the requests that have one (outputTokenBound). */
  outputBoundTokens: number;
  /** Requests without an output bound: their output needs an assumption (`--expect-output-tokens`). */
  unbounded: number;
  /** The fields the output bounds came from (`max_tokens`, …), sorted. */
  boundFrom: string[];
  /** The largest input of one request: decides a model's long-context price tier. */
  maxInputTokens: number;
  /** Parts of the bodies no published rule counts (tools, JSON schemas, images…), sorted. */
  uncounted: string[];
}

/** An empty count, to add requests to. */
export function noTokens(): FileTokens {
  return {
    requests: 0,
    inputTokens: 0,
    outputBoundTokens: 0,
    unbounded: 0,
    boundFrom: [],
    maxInputTokens: 0,
    uncounted: [],
  };
}

/** Adds counts together (for a run's files). */
export function addTokens(a: FileTokens, b: FileTokens): FileTokens {
  return {
    requests: a.requests + b.requests,
    inputTokens: a.inputTokens + b.inputTokens,
    outputBoundTokens: a.outputBoundTokens + b.outputBoundTokens,
    unbounded: a.unbounded + b.unbounded,
    boundFrom: [...new Set([...a.boundFrom, ...b.boundFrom])].sort(),
    maxInputTokens: Math.max(a.maxInputTokens, b.maxInputTokens),
    uncounted: [...new Set([...a.uncounted, ...b.uncounted])].sort(),
  };
}

/**
 * Counts request lines one at a time (`{ custom_id, method, url, body }` as JSON text), each in the
 * encoding of its body's model. `where` names a line in errors.
 */
export class RequestTokenCounter {
  #tokens = noTokens();
  #boundFrom = new Set<string>();
  #uncounted = new Set<string>();

  add(line: string, where: () => string): void {
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch (err) {
      throw new BatchpipeError(
        ErrorCodes.LEDGER_MISMATCH,
        `${where()}: not a request line (${(err as Error).message}); was the request file changed after prepare wrote it?`,
      );
    }
    const { url, body } = isObject(request) ? request : {};
    if (typeof url !== 'string' || !isObject(body)) {
      throw new BatchpipeError(
        ErrorCodes.LEDGER_MISMATCH,
        `${where()}: a request line needs a url and a body object; was the request file changed after prepare wrote it?`,
      );
    }
    const model = typeof body.model === 'string' ? body.model : '';
    const input = requestInputTokens(url, body, counterForModel(model), this.#uncounted);
    const bound = outputTokenBound(url, body);
    const t = this.#tokens;
    t.requests++;
    t.inputTokens += input;
    if (input > t.maxInputTokens) t.maxInputTokens = input;
    if (bound.tokens === undefined) t.unbounded++;
    else {
      t.outputBoundTokens += bound.tokens;
      this.#boundFrom.add(bound.from);
    }
  }

  /** The count so far. */
  get tokens(): FileTokens {
    return {
      ...this.#tokens,
      boundFrom: [...this.#boundFrom].sort(),
      uncounted: [...this.#uncounted].sort(),
    };
  }
}

/**
 * Counts every request of a request file, streamed (memory: one read and one line).
 *
 * @example
 * ```ts
 * const { requests, inputTokens } = await countRequestFile('runs/fb/run-a1-00001.jsonl');
 * ```
 */
export async function countRequestFile(path: string): Promise<FileTokens> {
  const counter = new RequestTokenCounter();
  for await (const chunk of lineChunks(createReadStream(path), { minBytes: 1 << 20 })) {
    const lines = new LineCursor(chunk.bytes, chunk.firstLine);
    while (lines.advance()) {
      if (lines.end === lines.start) continue;
      counter.add(lines.text(), () => `${path}:${lines.line}`);
    }
  }
  return counter.tokens;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

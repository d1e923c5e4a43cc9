/**
 * The rules that span the lines of one Batch API input file: unique `custom_id`, one `url`, one model, and
 * the API's per-file limits. A small stateful checker fed line by line, so a file is never held in memory.
 */

import { type IssueCode, IssueCodes } from '../errors.js';
import type { Endpoint } from '../types.js';
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_LINES } from './file-limits.js';
import { issue, type ValidationIssue } from './issues.js';
import { embeddingInputCount, modelOf } from './request-schema.js';

/** The API's defaults: 50,000 requests and 200 MB per file (file-limits.ts), 50,000 embedding inputs per batch. */
export { DEFAULT_MAX_BYTES, DEFAULT_MAX_LINES };
export const DEFAULT_MAX_EMBEDDING_INPUTS = 50_000;

export interface FileRulesOptions {
  /** Most requests (non-blank lines) in one file. Default 50,000. */
  maxLines?: number | undefined;
  /** Most bytes in one file, line terminators and any BOM included. Default 209,715,200. */
  maxBytes?: number | undefined;
  /** Most embedding inputs across all the requests of an embeddings file. Default 50,000. */
  maxEmbeddingInputs?: number | undefined;
}

const EMBEDDINGS_URL: Endpoint = '/v1/embeddings';

/** A field that must hold the same value on every line of a file: remembers the first and its line. */
class OneValue {
  #first: { value: string; line: number } | undefined;

  constructor(
    readonly code: IssueCode,
    readonly name: string,
    readonly why: string,
  ) {}

  /** Appends an issue when `value` differs from the first one; undefined values are not compared. */
  check(line: number, value: string | undefined, issues: ValidationIssue[]): void {
    if (value === undefined) return;
    if (this.#first === undefined) {
      this.#first = { value, line };
      return;
    }
    if (value === this.#first.value) return;
    const { value: first, line: firstLine } = this.#first;
    issues.push(
      issue(
        this.code,
        '',
        `${this.name} ${JSON.stringify(value)} differs from ${JSON.stringify(first)} (first on line ${firstLine}); ${this.why}`,
      ),
    );
  }
}

/**
 * Cross-line rules for one request file. Feed it every line in order: `addBytes` for each line (blank ones
 * too), `addRequest` for each non-blank one. Each call returns the issues found on that line; a limit is
 * reported once, on the first line that goes over it.
 *
 * @example
 * const rules = new FileRules({ maxLines: 1000 });
 * rules.addBytes(1, text.length + 1);
 * const issues = rules.addRequest(1, JSON.parse(text));
 */
export class FileRules {
  readonly maxLines: number;
  readonly maxBytes: number;
  readonly maxEmbeddingInputs: number;

  /** Requests (non-blank lines) seen so far. */
  requests = 0;
  /** Bytes seen so far. */
  bytes = 0;
  /** Embedding inputs seen so far (embeddings requests only). */
  embeddingInputs = 0;

  /** custom_id → the line it first appeared on. Bounded: tracking stops once the file is over its line limit. */
  readonly #firstLineOfId = new Map<string, number>();
  readonly #url = new OneValue(IssueCodes.URL_MISMATCH, 'url', 'a file holds one endpoint');
  readonly #model = new OneValue(IssueCodes.MODEL_MISMATCH, 'model', 'a file holds one model');
  #reportedLines = false;
  #reportedBytes = false;
  #reportedEmbeddings = false;

  constructor(options: FileRulesOptions = {}) {
    this.maxLines = options.maxLines ?? DEFAULT_MAX_LINES;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.maxEmbeddingInputs = options.maxEmbeddingInputs ?? DEFAULT_MAX_EMBEDDING_INPUTS;
  }

  /** How many custom_ids are remembered for the duplicate check: never more than `maxLines`. */
  get trackedIds(): number {
    return this.#firstLineOfId.size;
  }

  /** Counts one line's bytes (terminator included) against the byte limit. */
  addBytes(line: number, byteLength: number): ValidationIssue[] {
    this.bytes += byteLength;
    if (this.bytes <= this.maxBytes || this.#reportedBytes) return [];
    this.#reportedBytes = true;
    return [
      issue(
        IssueCodes.TOO_MANY_BYTES,
        '',
        `the file is over the limit of ${this.maxBytes} bytes by line ${line} (${this.bytes} bytes so far)`,
      ),
    ];
  }

  /**
   * Applies the per-request rules to one non-blank line. `value` is the parsed line, or undefined when it
   * did not parse: it still counts as a request. Fields that are missing or of the wrong type are skipped
   * here (`checkRequestLine` reports them).
   */
  addRequest(line: number, value: unknown): ValidationIssue[] {
    this.requests += 1;
    const issues: ValidationIssue[] = [];
    if (this.requests > this.maxLines && !this.#reportedLines) {
      this.#reportedLines = true;
      issues.push(
        issue(
          IssueCodes.TOO_MANY_LINES,
          '',
          `request ${this.requests} (line ${line}) is over the limit of ${this.maxLines} requests per file`,
        ),
      );
    }
    if (typeof value !== 'object' || value === null) return issues;
    const fields = value as { custom_id?: unknown; url?: unknown; body?: unknown };
    this.#checkUniqueId(line, fields.custom_id, issues);
    this.#url.check(line, typeof fields.url === 'string' ? fields.url : undefined, issues);
    // A moderations body may leave the model out (the API's default); there is nothing to compare then.
    this.#model.check(line, modelOf(fields), issues);
    this.#countEmbeddingInputs(line, fields, issues);
    return issues;
  }

  #checkUniqueId(line: number, id: unknown, issues: ValidationIssue[]): void {
    if (typeof id !== 'string' || id === '') return;
    const first = this.#firstLineOfId.get(id);
    if (first !== undefined) {
      issues.push(
        issue(
          IssueCodes.DUPLICATE_CUSTOM_ID,
          '',
          `duplicate custom_id ${JSON.stringify(id)} (first on line ${first})`,
        ),
      );
    } else if (this.requests <= this.maxLines) {
      // Past the line limit the file fails anyway; stop growing the map so memory stays bounded.
      this.#firstLineOfId.set(id, line);
    }
  }

  #countEmbeddingInputs(
    line: number,
    fields: { url?: unknown; body?: unknown },
    issues: ValidationIssue[],
  ): void {
    if (fields.url !== EMBEDDINGS_URL) return;
    this.embeddingInputs += embeddingInputCount(fields);
    if (this.embeddingInputs <= this.maxEmbeddingInputs || this.#reportedEmbeddings) return;
    this.#reportedEmbeddings = true;
    issues.push(
      issue(
        IssueCodes.TOO_MANY_EMBEDDING_INPUTS,
        '',
        `the file is over the limit of ${this.maxEmbeddingInputs} embedding inputs by line ${line} (${this.embeddingInputs} so far)`,
      ),
    );
  }
}

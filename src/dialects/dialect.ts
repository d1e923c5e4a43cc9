/**
 * A provider's dialect: what differs between Batch APIs on this side of the wire, in two small
 * objects per provider, one for each side of the flow. The request dialect (`dialectOf`, here) says
 * which endpoints the provider has, where `--prompt` and `--system` go in its native body, its limits
 * per batch and which `custom_id`s it takes; the request compiler (src/transforms) and prepare use it.
 * The result dialect (`resultDialectOf`, src/results/result-dialects.ts) reads what the body asked
 * for and one line of the provider's result file into the ledger's outcome. Imports nothing above
 * errors and types.
 */
import type { Endpoint, LineOutcome, ProviderName } from '../types.js';

export { PROVIDERS, type ProviderName } from '../types.js';

/** The provider of a ledger that records none: every ledger made before providers were recorded. */
export const DEFAULT_PROVIDER: ProviderName = 'openai';

/**
 * What the run's requests asked for, decided once from the body template (never guessed per line):
 * - `kind`: `text`, `json` (a JSON-schema or JSON-object format: the result is the parsed object) or
 *   `tool_call` (a forced tool call: the result is its parsed arguments / input);
 * - `list`: the template's `input` is an array (embeddings, moderations: one result per input).
 */
export interface ExpectedOutput {
  kind: 'text' | 'json' | 'tool_call';
  list: boolean;
}

/** The run options that decide the result's shape (a subset of the ledger's `identity`). */
export interface OutputTemplate {
  endpoint: string;
  body?: unknown;
}

/** Why a line is not a result line (the caller names the file and line). */
export class ResultLineProblem {
  constructor(readonly message: string) {}
}

/**
 * What a result dialect is given with each line: the run's endpoint, what it asked for, and the
 * output schema parsed results must match (a zod schema, checked through its own `safeParse`).
 */
export interface ResultContext {
  endpoint: string;
  expect: ExpectedOutput;
  outputSchema?: import('zod').ZodType | undefined;
  /** The user's id of a wire id sent as a digest (see `ResultDialect.ids`), from the ledger's ids. */
  hashedIds?: ((wireId: string) => string | undefined) | undefined;
}

/** Requests and bytes one batch (one request file) may hold at most. */
export interface BatchLimits {
  maxLines: number;
  maxBytes: number;
}

/** How a provider's requests are written. */
export interface RequestDialect {
  readonly name: ProviderName;
  /** The endpoints the provider batches; the first is the default. */
  readonly endpoints: readonly Endpoint[];
  /** The endpoints whose body has a place for `--system`. */
  readonly systemEndpoints: readonly Endpoint[];
  /** The API's own limits per batch: prepare's defaults, and the most a flag may ask for. */
  readonly limits: BatchLimits;
  /**
   * Places `--prompt` and `--system` (templates themselves) in the body template of `endpoint`
   * (`system` only for the `systemEndpoints`).
   */
  placePrompt(endpoint: Endpoint, body: Record<string, unknown>, prompt: string, system?: string): void;
  /** Fills what the provider requires of every body that the template left out (e.g. `max_tokens`). */
  completeBody(endpoint: Endpoint, body: Record<string, unknown>): void;
  /**
   * The `custom_id` sent for a user's id, when the provider cannot take the id as it is (the ledger
   * keeps it and maps results back); undefined when the id goes as it is.
   */
  wireId(customId: string): string | undefined;
}

/** How a provider's results are read. */
export interface ResultDialect {
  /** What the body template asks the model for (see {@link ExpectedOutput}). */
  expectedOutput(template: OutputTemplate): ExpectedOutput;
  /** The JSON Schema the body template itself asks the model to follow, if any. */
  requestedSchema(template: OutputTemplate): unknown;
  /** One parsed line of the provider's result file, in the ledger's terms. */
  lineOutcome(line: unknown, ctx: ResultContext): LineOutcome | ResultLineProblem;
  /**
   * For providers that are sent some ids as a digest: ids of at least `hashedMinBytes` UTF-8 bytes
   * may be, as `wireId` makes them; reading their results needs `ResultContext.hashedIds`.
   */
  readonly ids?: { hashedMinBytes: number; wireId(customId: string): string | undefined } | undefined;
}

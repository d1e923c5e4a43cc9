/**
 * Records the lines of a Batch API output or error file in the ledger, per custom_id: results,
 * failures, retries. `collect` calls it for the batches it ran, `batchpipe ingest` for files
 * downloaded elsewhere.
 */
import { DEFAULT_PROVIDER, type ProviderName, type ResultDialect } from '../dialects/dialect.js';
import { storedRunIdentity } from '../ledger/identity.js';
import type { Ledger } from '../ledger/ledger.js';
import { OutcomeStage } from '../ledger/outcome-stage.js';
import { storedOutputJsonSchema } from '../ledger/output-schema.js';
import { inlineParser, threadedParser } from './chunk-parsers.js';
import type { ExpectedOutput } from './extract.js';
import { lineChunks, type StagedTotals } from './line-chunks.js';
import type { OutcomeContext } from './line-outcome.js';
import type { OutputSchema } from './output-validation.js';
import { resultDialectOf } from './result-dialects.js';

export interface ApplyOptions {
  /**
   * collect: the ledger id (`batches.id`) of the batch the file belongs to. Only requests
   * `submitted` in that batch change; lines naming others are `skipped`. Without it (ingest), a
   * success applies to any request not yet `succeeded`, a failure only to one with no outcome yet.
   */
  batchId?: number | undefined;
  /** Attempts a request may have in all; a retryable failure below it goes back to `staged`. */
  maxAttempts: number;
  /** Validates parsed results; default: the run's stored output schema (meta `output_schema`), if any. */
  outputSchema?: OutputSchema | undefined;
  /** The run's endpoint, e.g. `/v1/chat/completions`. */
  endpoint: string;
  /** The provider whose result lines these are; default: the run's (meta `identity`), else openai. */
  provider?: ProviderName | undefined;
  /** What the requests asked for; default: read from the run's body template (meta `identity`). */
  expect?: ExpectedOutput | undefined;
  /** The file's name in error messages (`file:line: …`). */
  source?: string | undefined;
  /**
   * Parse and join on this thread only, whatever the file's size (default false: a parse worker and
   * a join worker for files over 8 MB). The two threads shorten a big file's wall time, but cost CPU
   * of their own (their start-up, a copy of every chunk, a second scratch database and join): a
   * 50,000-line output file took 0.2–0.25 s more CPU with them. `collect` sets it, as a batch's files
   * hold one batch's requests (at most 50,000 at OpenAI), and the CPU of a run is what its user pays for.
   */
  inline?: boolean | undefined;
}

/** What applying a file did, line by line. */
export interface ApplyCounts {
  /** Non-blank lines read. */
  lines: number;
  /** Requests that now have their result. */
  succeeded: number;
  /** Requests that failed for good (`failed`, `expired`, `cancelled`). */
  failed: number;
  /** Requests put back to `staged` for another attempt. */
  retried: number;
  /** Lines whose custom_id is not in the ledger (never an error: warn). */
  unknown: number;
  /** Lines that changed nothing: another batch's request, already final, or a repeated line. */
  skipped: number;
  /** The first few unknown custom_ids, for the warning. */
  unknownIds: string[];
}

/**
 * Input bytes parsed on this thread before a parse worker is started: small files (a collect of a
 * few thousand lines, the tests) are not worth a thread's start-up.
 */
const THREAD_AFTER_BYTES = 8 << 20;
/**
 * Requests updated per write transaction: short enough that other writers of the ledger get their
 * turn, long enough that commits stay cheap (16,384: 15 s → 13 s on 1,000,000 lines against 4,096).
 */
const APPLY_BATCH = 16_384;
const UNKNOWN_EXAMPLES = 5;

/**
 * Streams an output or error file (its raw bytes, any chunking) into the ledger and returns what it
 * did. Memory stays bounded: lines are staged on disk and applied in `seq` order, a few thousand
 * requests per transaction. An unparsable line fails with `BP_RESULT_LINE` naming the file line;
 * nothing of the file is applied then.
 *
 * @example
 * const counts = await applyResultLines(ledger, fs.createReadStream('batch_output.jsonl'), {
 *   maxAttempts: 3, endpoint: '/v1/chat/completions', source: 'batch_output.jsonl',
 * });
 */
export async function applyResultLines(
  ledger: Ledger,
  lines: AsyncIterable<Buffer | string | Uint8Array> | Iterable<Buffer | string | Uint8Array>,
  options: ApplyOptions,
): Promise<ApplyCounts> {
  const outputJsonSchema = options.outputSchema === undefined ? storedOutputJsonSchema(ledger) : undefined;
  const provider = options.provider ?? storedRunIdentity(ledger)?.provider ?? DEFAULT_PROVIDER;
  const hashedIds = hashedIdLookup(ledger, resultDialectOf(provider).ids);
  const ctx: OutcomeContext = {
    provider,
    hashedIds,
    endpoint: options.endpoint,
    expect: options.expect ?? expectedOutputOf(ledger, provider, options.endpoint),
    outputSchema:
      options.outputSchema ??
      (outputJsonSchema === undefined
        ? undefined
        : (await import('./output-schema.js')).outputSchemaFromJsonSchema(outputJsonSchema)),
  };
  const counts: ApplyCounts = {
    lines: 0,
    succeeded: 0,
    failed: 0,
    retried: 0,
    unknown: 0,
    skipped: 0,
    unknownIds: [],
  };
  const source = options.source ?? 'output file';
  const stage = new OutcomeStage(ledger);
  const totals: StagedTotals = { lines: 0, lastLine: 0, failures: 0 };
  // A zod schema from code, or the ledger's ids to map wire ids back, cannot cross threads; a batch
  // file applied while collecting (`inline`) costs the threads more than they save: then
  // everything is parsed here.
  const threadable = options.outputSchema === undefined && hashedIds === undefined && options.inline !== true;
  let parser = inlineParser(ctx, source, stage, totals);
  let read = 0;
  try {
    for await (const chunk of lineChunks(lines)) {
      read += chunk.bytes.length;
      if (threadable && read > THREAD_AFTER_BYTES && parser.kind === 'inline') {
        const data = { provider, endpoint: ctx.endpoint, expect: ctx.expect, outputJsonSchema, source };
        parser = threadedParser(ctx, data, stage, totals);
      }
      await parser.submit(chunk);
    }
    await parser.finish();
    stage.releaseFiles();
    counts.lines = totals.lines;
    const sorted = stage.settleJoins(UNKNOWN_EXAMPLES);
    counts.unknown = sorted.unknown;
    counts.unknownIds = sorted.unknownIds;
    counts.skipped = sorted.repeated;
    stage.withCheckpointsElsewhere(parser.checkpointing, () =>
      applyRanges(ledger, stage, options, counts, totals),
    );
  } catch (err) {
    await parser.abort();
    throw err;
  } finally {
    await parser.close();
    stage.close();
  }
  return counts;
}

/** Applies the staged outcomes in seq order, a range of requests per short write transaction. */
function applyRanges(
  ledger: Ledger,
  stage: OutcomeStage,
  options: ApplyOptions,
  counts: ApplyCounts,
  totals: StagedTotals,
): void {
  const known = counts.lines - counts.unknown - counts.skipped;
  let changed = 0;
  // result_seq = base + line: outcomes ordered as the file lists them (the order they finished in).
  let resultSeqBase: number | undefined;
  for (let after = -1; ; ) {
    const last = stage.rangeEnd(after, APPLY_BATCH);
    if (last === undefined) break;
    const range = ledger.transaction(() => {
      resultSeqBase ??= ledger.nextResultSeq(totals.lastLine) - 1;
      return stage.applyRange(after, last, {
        batchId: options.batchId,
        maxAttempts: options.maxAttempts,
        resultSeqBase,
        failures: totals.failures > 0,
      });
    });
    counts.succeeded += range.succeeded;
    counts.failed += range.failed;
    counts.retried += range.retried;
    changed += range.succeeded + range.failed + range.retried;
    after = last;
  }
  counts.skipped += known - changed;
}

/**
 * The user's id of each wire id the provider was sent as a digest, built from the ledger's long ids
 * when the first such line is read; undefined when the ledger holds no id that could have been.
 */
function hashedIdLookup(
  ledger: Ledger,
  ids: ResultDialect['ids'],
): ((wireId: string) => string | undefined) | undefined {
  if (ids === undefined) return undefined;
  const probe = ledger.customIdsOfAtLeast(ids.hashedMinBytes);
  const none = probe.next().done === true;
  probe.return?.();
  if (none) return undefined;
  let byWireId: Map<string, string> | undefined;
  return (wireId) => {
    if (byWireId === undefined) {
      byWireId = new Map();
      for (const id of ledger.customIdsOfAtLeast(ids.hashedMinBytes)) {
        const wire = ids.wireId(id);
        if (wire !== undefined) byWireId.set(wire, id);
      }
    }
    return byWireId.get(wireId);
  };
}

/** The run's expected output, from its body template (meta `identity`). */
function expectedOutputOf(ledger: Ledger, provider: ProviderName, endpoint: string): ExpectedOutput {
  return resultDialectOf(provider).expectedOutput({ endpoint, body: storedRunIdentity(ledger)?.body });
}

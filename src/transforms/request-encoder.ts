import { ErrorCodes } from '../errors.js';
import type { SourceRecord } from '../types.js';
import { checkRequestLine, formatIssue } from '../validate/request-schema.js';
import {
  type BuiltRequest,
  compileProbeBuilder,
  compileRequestBuilder,
  compileTailEncoder,
  derivedCustomId,
  type EncodedTail,
  type RequestTemplateOptions,
} from './request-builder.js';
import { type FieldResolver, MissingFieldError, objectFieldResolver } from './template.js';

/**
 * The per-record core of `prepare`, free of streams so it runs the same in the main thread and in
 * worker threads: template → validate → encode. The encoded line is split into the `custom_id`
 * (which may only be known once the record's global `seq` is) and the rest of the JSON text.
 */
export type EncodeOutcome =
  | {
      ok: true;
      customId: string | undefined;
      model: string | undefined;
      tail: string;
      tailBytes: number;
      tokens: number;
    }
  | { ok: false; code: string; message: string; field?: string | undefined };

/** Id placeholder used only to validate a request whose id will be derived from its seq. */
const PENDING_ID = derivedCustomId(0);

/**
 * Builds the per-record encoder. Validation is exhaustive but not repeated needlessly: placeholders
 * only ever insert strings, so if the template validates with every placeholder set to each probe
 * (empty, short, very long, and JSON- and regex-hostile text), each record can only differ from a
 * valid request in strings the schemas accept whatever they hold, and per-record validation is
 * skipped. If any probe fails (an enum, a pattern, a length limit sits under a placeholder), every
 * record is validated in full.
 */
export function createRequestEncoder(
  options: RequestTemplateOptions,
  resolve: FieldResolver = objectFieldResolver,
): (record: SourceRecord | readonly string[]) => EncodeOutcome {
  const encodeTail = compileTailEncoder(options, resolve);
  const build = compileRequestBuilder(options, resolve);
  const validateEach = !probesPass(compileProbeBuilder(options));
  return function encodeRecord(record) {
    let encoded: EncodedTail;
    try {
      encoded = encodeTail(record);
      if (validateEach) {
        const issue = checkRequestLine({
          custom_id: encoded.customId ?? PENDING_ID,
          method: 'POST',
          ...build(record),
        })[0];
        if (issue)
          return {
            ok: false,
            code: ErrorCodes.INVALID_REQUEST,
            message: formatIssue(issue),
            field: issue.path,
          };
      }
    } catch (err) {
      if (err instanceof MissingFieldError) {
        return { ok: false, code: ErrorCodes.TEMPLATE_MISSING_FIELD, message: err.message, field: err.field };
      }
      throw err;
    }
    if (encoded.customId === '') {
      return { ok: false, code: ErrorCodes.ID_MISSING, message: 'custom_id is empty', field: 'custom_id' };
    }
    const { tail } = encoded;
    return {
      ok: true,
      customId: encoded.customId,
      model: encoded.model,
      tail,
      tailBytes: Buffer.byteLength(tail),
      tokens: estimateTokens(tail),
    };
  };
}

const PROBES = ['', 'x', 'x'.repeat(100_000), '"\\\n\t{}[]<>@#%&*?/:;,.é€👍\u0000 '];

function probesPass(probeBuild: (probe: string) => BuiltRequest): boolean {
  return PROBES.every((probe) => {
    const request = probeBuild(probe);
    return (
      checkRequestLine({ custom_id: PENDING_ID, method: 'POST', url: request.url, body: request.body })
        .length === 0
    );
  });
}

/** Joins an id and an encoded tail into the full request line (no trailing newline). */
export function joinRequestLine(customId: string, tail: string): string {
  return `{"custom_id":${JSON.stringify(customId)},${tail}`;
}

/**
 * A cheap, deliberately generous token estimate (≈ 4 characters a token over the whole body), used
 * for queue limits where over-estimating is safe and a real tokenizer per row would cost more than
 * the rest of the pipeline.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

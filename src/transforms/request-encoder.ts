import { ErrorCodes } from '../errors.js';
import type { RecordProblem, SourceRecord } from '../types.js';
import {
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
      tokens: number;
    }
  | ({ ok: false } & RecordProblem);

/** Id placeholder used only to validate a request whose id will be derived from its seq. */
export const PENDING_ID = derivedCustomId(0);

/** Checks one request line; the first problem, or undefined. Kept injectable so worker threads that
 * never need it do not load the schemas (zod costs each thread ~13 MB). */
export type LineValidator = (line: unknown) => { path: string; message: string } | undefined;

/**
 * Builds the per-record encoder. With `validate`, every record's request is checked against the
 * Batch API schemas; without it, the caller has established that the template cannot produce an
 * invalid request (see `templateNeedsPerRecordValidation`).
 */
export function createRequestEncoder(
  options: RequestTemplateOptions,
  resolve: FieldResolver = objectFieldResolver,
  validate?: LineValidator,
): (record: SourceRecord | readonly string[]) => EncodeOutcome {
  const encodeTail = compileTailEncoder(options, resolve);
  return function encodeRecord(record) {
    let encoded: EncodedTail;
    try {
      encoded = encodeTail(record);
      // The request checked is the line as it will be written, read back: rendered once.
      const issue = validate?.(JSON.parse(joinRequestLine(encoded.customId ?? PENDING_ID, encoded.tail)));
      if (issue) {
        return {
          ok: false,
          code: ErrorCodes.INVALID_REQUEST,
          message: `${issue.path ? `${issue.path}: ` : ''}${issue.message}`,
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
      tokens: estimateTokens(tail),
    };
  };
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

import { isParseReject, parseCsvChunk, parseJsonlChunk } from '../sources/parse-chunk.js';
import {
  compileProbeBuilder,
  compileRequestBuilder,
  type RequestTemplateOptions,
} from '../transforms/request-builder.js';
import { createRequestEncoder } from '../transforms/request-encoder.js';
import { columnFieldResolver, objectFieldResolver } from '../transforms/template.js';

/** Everything a thread needs to turn chunks of input into encoded requests. */
export interface EncodeContext {
  format: 'csv' | 'jsonl';
  /** CSV header, parsed once by the reader. */
  columns: string[];
  template: RequestTemplateOptions;
  /** Input name for error messages. */
  source: string;
}

/** One record's outcome, without its global seq (the chunk's owner assigns seqs in order). */
export type EncodedItem =
  | {
      kind: 'staged';
      line: number;
      customId: string | undefined;
      model: string | undefined;
      tail: string;
      tailBytes: number;
      tokens: number;
      recordJson: string;
    }
  | {
      kind: 'rejected';
      line: number;
      code: string;
      message: string;
      field?: string | undefined;
      record: string;
    };

/** Builds the per-chunk function: parse → template → validate → encode, all in this thread. */
export function createChunkEncoder(ctx: EncodeContext): (bytes: Buffer, firstLine: number) => EncodedItem[] {
  const resolve = ctx.format === 'csv' ? columnFieldResolver(ctx.columns) : objectFieldResolver;
  const encode = createRequestEncoder(
    compileRequestBuilder(ctx.template, resolve),
    compileProbeBuilder(ctx.template),
  );
  return function encodeChunk(bytes, firstLine) {
    const parsed =
      ctx.format === 'csv'
        ? parseCsvChunk(bytes, firstLine, ctx.columns, ctx.source)
        : parseJsonlChunk(bytes, firstLine);
    const out: EncodedItem[] = new Array(parsed.length);
    for (let i = 0; i < parsed.length; i++) {
      const item = parsed[i]!;
      if (isParseReject(item)) {
        out[i] = {
          kind: 'rejected',
          line: item.line,
          code: item.code,
          message: item.message,
          record: JSON.stringify(item.raw),
        };
        continue;
      }
      const outcome = encode(item.record);
      out[i] = outcome.ok
        ? {
            kind: 'staged',
            line: item.line,
            customId: outcome.customId,
            model: outcome.model,
            tail: outcome.tail,
            tailBytes: outcome.tailBytes,
            tokens: outcome.tokens,
            recordJson: item.recordJson,
          }
        : {
            kind: 'rejected',
            line: item.line,
            code: outcome.code,
            message: outcome.message,
            field: outcome.field,
            record: item.recordJson,
          };
    }
    return out;
  };
}

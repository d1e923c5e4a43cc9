/**
 * The result dialect of each provider, by name: what its body template asks for and how a line of its
 * result file reads (the request half of each dialect: src/dialects).
 */
import {
  ANTHROPIC_HASHED_MIN_BYTES,
  anthropicExpectedOutput,
  anthropicRequestedSchema,
  anthropicWireId,
} from '../dialects/anthropic.js';
import { DEFAULT_PROVIDER, type ProviderName, type ResultDialect } from '../dialects/dialect.js';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { anthropicLineOutcome } from './anthropic-line-outcome.js';
import { expectedOutput, requestedSchema } from './extract.js';
import { lineOutcome } from './line-outcome.js';

const RESULT_DIALECTS: Partial<Record<ProviderName, ResultDialect>> = {
  openai: { expectedOutput, requestedSchema, lineOutcome },
  anthropic: {
    expectedOutput: anthropicExpectedOutput,
    requestedSchema: anthropicRequestedSchema,
    lineOutcome: anthropicLineOutcome,
    ids: { hashedMinBytes: ANTHROPIC_HASHED_MIN_BYTES, wireId: anthropicWireId },
  },
};

/** The result dialect of `provider` (default openai). */
export function resultDialectOf(provider: ProviderName | undefined): ResultDialect {
  const dialect = RESULT_DIALECTS[provider ?? DEFAULT_PROVIDER];
  if (dialect === undefined) {
    throw new BatchpipeError(ErrorCodes.USAGE, `--provider ${provider} is not available yet`);
  }
  return dialect;
}

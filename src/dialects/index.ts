/** The request dialect of each provider, by name (its result dialect: src/results/result-dialects.ts). */
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { ANTHROPIC_DIALECT } from './anthropic.js';
import { DEFAULT_PROVIDER, PROVIDERS, type ProviderName, type RequestDialect } from './dialect.js';
import { OPENAI_DIALECT } from './openai.js';

export * from './dialect.js';

const DIALECTS: Partial<Record<ProviderName, RequestDialect>> = {
  openai: OPENAI_DIALECT,
  anthropic: ANTHROPIC_DIALECT,
};

/** The request dialect of `provider` (default openai); `BP_USAGE` for a provider batchpipe cannot speak yet. */
export function dialectOf(provider: ProviderName | undefined): RequestDialect {
  const name = provider ?? DEFAULT_PROVIDER;
  const dialect = DIALECTS[name];
  if (dialect === undefined) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `--provider ${name} is not available yet; choose one of ${PROVIDERS.filter((p) => DIALECTS[p]).join(', ')}`,
    );
  }
  return dialect;
}

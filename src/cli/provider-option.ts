/**
 * `--provider`: which Batch API a run speaks to. prepare records it with the run (its requests are
 * written in that provider's dialect); every later command reads it from the ledger, and a flag that
 * names another provider is refused.
 */
import { type Command, Option } from 'commander';
import { DEFAULT_PROVIDER, PROVIDERS, type ProviderName } from '../dialects/dialect.js';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { storedRunIdentity } from '../ledger/identity.js';
import type { Ledger } from '../ledger/ledger.js';

/** Adds `--provider` (once: `run` takes both the prepare and the backend options). */
export function addProviderOption(cmd: Command): Command {
  if (cmd.options.some((o) => o.long === '--provider')) return cmd;
  return cmd.addOption(
    new Option(
      '--provider <name>',
      "the Batch API: openai (and compatible APIs), anthropic (ANTHROPIC_API_KEY) (default: the ledger's, else openai)",
    ).choices(PROVIDERS),
  );
}

/** The provider the ledger's run was prepared for; openai for a ledger that records none. */
export function providerOfLedger(ledger: Ledger): ProviderName {
  return storedRunIdentity(ledger)?.provider ?? DEFAULT_PROVIDER;
}

/**
 * The provider of a command on a prepared ledger: the run's; `--provider` naming another is refused
 * with `BP_LEDGER_MISMATCH` (its requests are written in the run's provider's dialect).
 */
export function runProvider(ledger: Ledger, flag: ProviderName | undefined): ProviderName {
  const recorded = providerOfLedger(ledger);
  if (flag !== undefined && flag !== recorded) {
    throw new BatchpipeError(
      ErrorCodes.LEDGER_MISMATCH,
      `ledger ${ledger.path} holds a run for --provider ${recorded}, not ${flag}: its requests are written for ${recorded}; drop --provider, or use a new --ledger to run on ${flag}`,
    );
  }
  return recorded;
}

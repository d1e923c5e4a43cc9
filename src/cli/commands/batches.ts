import type { Command } from 'commander';
import { BatchpipeError, ErrorCodes } from '../../errors.js';
import { hasRunIdentity } from '../../ledger/identity.js';
import { Ledger } from '../../ledger/ledger.js';
import { requireCompletePrepare } from '../../prepare/run-identity.js';
import { cancel, collect, type SchedulerOptions, status, submit } from '../../scheduler/api.js';
import { formatStatus } from '../../scheduler/status.js';
import {
  addBackendOptions,
  type BackendFlags,
  openProviderFromFlags,
  schedulerOptionsFromFlags,
} from '../backend-options.js';

/**
 * Opens an existing ledger; these commands never create one. `holder` (the command) takes the
 * ledger's write lock; without it (status) the ledger is only read and may be open elsewhere.
 */
function openExistingLedger(path: string, holder?: string): Ledger {
  const ledger = Ledger.open(path, { mustExist: true, ...(holder ? { holder } : { lock: false }) });
  if (!hasRunIdentity(ledger)) {
    ledger.close();
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `${path} holds no prepared run; run \`batchpipe prepare\` or \`batchpipe run\` first`,
    );
  }
  return ledger;
}

/**
 * Opens ledger and provider, runs `fn` with the scheduler's options, and closes both whatever
 * happens. `command` is named when the ledger's prepare did not finish: nothing may be sent or
 * waited for until it has (checked before the provider is opened).
 */
async function withRun<T>(
  command: 'submit' | 'collect' | 'cancel',
  flags: BackendFlags,
  fn: (options: SchedulerOptions) => Promise<T>,
): Promise<T> {
  const ledger = openExistingLedger(flags.ledger, `batchpipe ${command}`);
  try {
    if (command !== 'cancel') requireCompletePrepare(ledger, flags.ledger, command);
    const provider = await openProviderFromFlags(flags);
    try {
      return await fn(schedulerOptionsFromFlags(flags, ledger, provider));
    } finally {
      await provider.close();
    }
  } finally {
    ledger.close();
  }
}

export function registerSubmit(program: Command): void {
  addBackendOptions(
    program
      .command('submit')
      .description('upload staged request files and create batches, within the limits')
      .requiredOption('--ledger <path>', "the run's ledger"),
  ).action(async (flags: BackendFlags) => {
    await withRun('submit', flags, async (options) => {
      await submit(options);
      process.stderr.write(formatStatus(status(options)));
    });
  });
}

export function registerCollect(program: Command): void {
  addBackendOptions(
    program
      .command('collect')
      .description(
        'poll batches until every request is final, recording results and retrying what may succeed',
      )
      .requiredOption('--ledger <path>', "the run's ledger")
      .option('--once', 'poll one round and return'),
  ).action(async (flags: BackendFlags & { once?: boolean }) => {
    await withRun('collect', flags, async (options) => {
      const { staged, submitted } = options.ledger.counts();
      if (staged + submitted === 0) {
        process.stderr.write('batchpipe: nothing to collect: every request is final\n');
      } else {
        await collect({ ...options, once: flags.once });
      }
      process.stderr.write(formatStatus(status(options)));
    });
  });
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('counts per request state, batches with progress, tokens so far')
    .requiredOption('--ledger <path>', "the run's ledger")
    .option('--json', 'the stable JSON form on stdout')
    .action((flags: { ledger: string; json?: boolean }) => {
      const ledger = openExistingLedger(flags.ledger);
      try {
        const now = status({ ledger });
        process.stdout.write(flags.json ? `${JSON.stringify(now)}\n` : formatStatus(now));
      } finally {
        ledger.close();
      }
    });
}

export function registerCancel(program: Command): void {
  addBackendOptions(
    program
      .command('cancel')
      .description("cancel the run's unfinished batches, keeping what they finished")
      .requiredOption('--ledger <path>', "the run's ledger"),
  ).action(async (flags: BackendFlags) => {
    await withRun('cancel', flags, async (options) => {
      await cancel(options);
      process.stderr.write(formatStatus(status(options)));
    });
  });
}

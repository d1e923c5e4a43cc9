import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import OpenAI from 'openai';
import type { Backend } from '../../backends/backend.js';
import { BatchpipeError, ErrorCodes } from '../../errors.js';
import { hasRunIdentity } from '../../ledger/identity.js';
import { Ledger } from '../../ledger/ledger.js';
import { requireCompletePrepare } from '../../prepare/run-identity.js';
import { BatchStore } from '../../scheduler/batch-store.js';
import { collectRound } from '../../scheduler/collect.js';
import { driveBatches } from '../../scheduler/drive.js';
import { apiError } from '../../scheduler/remote-calls.js';
import { formatStatus, runStatus } from '../../scheduler/status.js';
import {
  addBackendOptions,
  type BackendFlags,
  driveOptionsFromFlags,
  openBackendFromFlags,
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
 * Opens ledger and backend, runs `fn`, and closes both whatever happens. `command` is named when the
 * ledger's prepare did not finish: nothing may be sent or waited for until it has.
 */
async function withRun<T>(
  command: 'submit' | 'collect' | 'cancel',
  flags: BackendFlags,
  fn: (store: BatchStore, backend: Backend) => Promise<T>,
): Promise<T> {
  const ledger = openExistingLedger(flags.ledger, `batchpipe ${command}`);
  try {
    if (command !== 'cancel') requireCompletePrepare(ledger, flags.ledger, command);
    const backend = await openBackendFromFlags(flags);
    try {
      return await fn(new BatchStore(ledger), backend);
    } finally {
      await backend.close();
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
    await withRun('submit', flags, async (store, backend) => {
      await driveBatches(store, backend, driveOptionsFromFlags(flags, backend, false));
      process.stderr.write(formatStatus(runStatus(store.ledger)));
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
    await withRun('collect', flags, async (store, backend) => {
      const { staged, submitted } = store.ledger.counts();
      if (staged + submitted === 0) {
        process.stderr.write('batchpipe: nothing to collect: every request is final\n');
        process.stderr.write(formatStatus(runStatus(store.ledger)));
        return;
      }
      const options = driveOptionsFromFlags(flags, backend, true);
      await driveBatches(store, backend, { ...options, once: flags.once });
      process.stderr.write(formatStatus(runStatus(store.ledger)));
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
        const status = runStatus(ledger);
        process.stdout.write(flags.json ? `${JSON.stringify(status)}\n` : formatStatus(status));
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
    await withRun('cancel', flags, async (store, backend) => {
      const open = store.tables.openBatches();
      for (const row of open) {
        try {
          await backend.client.batches.cancel(row.remote_id!);
        } catch (err) {
          // A batch that ended meanwhile cannot be cancelled; collecting it below records it anyway.
          if (!(err instanceof OpenAI.APIError && (err.status === 400 || err.status === 409))) {
            throw apiError(backend, `cancelling ${row.remote_id}`, err);
          }
        }
      }
      process.stderr.write(`batchpipe: cancelling ${open.length} batches\n`);
      // Wait for them to end so their finished requests are recorded.
      const options = driveOptionsFromFlags(flags, backend, true);
      for (
        let round = await collectRound(store, backend, options.collect);
        round.open > 0;
        round = await collectRound(store, backend, options.collect)
      ) {
        await sleep(options.pollIntervalMs);
      }
      process.stderr.write(formatStatus(runStatus(store.ledger)));
    });
  });
}

import { type Command, Option } from 'commander';
import type { CostSettings } from '../../cost/run-cost.js';
import { BatchpipeError, ErrorCodes } from '../../errors.js';
import { hasRunIdentity } from '../../ledger/identity.js';
import { Ledger, type RequestCounts } from '../../ledger/ledger.js';
import { type LeftoverState, RequestStates } from '../../ledger/request-states.js';
import { requireCompletePrepare } from '../../prepare/run-identity.js';
import { cancel, collect, type SchedulerOptions, status, submit } from '../../scheduler/api.js';
import type { RunStatus } from '../../scheduler/status.js';
import { userArgs } from '../argv.js';
import {
  addBackendOptions,
  type BackendFlags,
  batchHome,
  checkBackendFlags,
  openProviderFromFlags,
  schedulerOptionsFromFlags,
} from '../backend-options.js';
import { formatCommand, repeatCommand } from '../command-line.js';
import {
  addBudgetOptions,
  addPriceOptions,
  type BudgetFlags,
  costSettingsFromFlags,
  type PriceFlags,
  runBudget,
} from '../cost-options.js';
import { finishedRun } from '../exit-codes.js';
import { afterSubmit } from '../follow-ups.js';
import { examples } from '../help.js';
import { plural } from '../human.js';
import { onInterrupt } from '../interrupt.js';
import { intOption, numberOption, storeOutputSchema } from '../options.js';
import { describeInFlight } from '../progress/in-flight.js';
import { addReportOptions, Reporter, type ReportFlags } from '../reporter.js';
import { formatStatusTable, statusJson } from '../status-table.js';
import { watchStatus } from '../status-watch.js';
import { DEFAULT_STUCK_AFTER, describeThresholds, parseStuckAfter, type StuckThresholds } from '../stuck.js';

type WorkFlags = BackendFlags & ReportFlags;
type SubmitFlags = WorkFlags & BudgetFlags;

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
 * waited for until it has (checked before the provider is opened). A signal meanwhile says what
 * was in flight and repeats the command to go on.
 */
async function withRun<T>(
  command: 'submit' | 'collect' | 'cancel',
  flags: WorkFlags,
  cmd: Command,
  fn: (options: SchedulerOptions, reporter: Reporter) => Promise<T>,
): Promise<T> {
  checkBackendFlags(flags);
  const reporter = Reporter.open(flags);
  const ledger = openExistingLedger(flags.ledger, `batchpipe ${command}`);
  onInterrupt(() => ({
    doing: describeInFlight(reporter.progress, batchHome(flags)),
    resume: repeatCommand(cmd, userArgs(cmd)),
  }));
  try {
    if (command !== 'cancel') requireCompletePrepare(ledger, flags.ledger, command);
    const provider = await openProviderFromFlags(flags, reporter, ledger);
    try {
      return await fn(schedulerOptionsFromFlags(flags, ledger, provider, reporter), reporter);
    } finally {
      await provider.close();
    }
  } finally {
    ledger.close();
  }
}

/**
 * The run's status after a command, on stderr: the table, or a `status` record in json mode.
 * Returned, so what the command reports next reads the same figures instead of scanning again.
 */
export function reportStatus(reporter: Reporter, ledger: Ledger, prices?: CostSettings): RunStatus {
  const now = status({ ledger, prices: prices ?? costSettingsFromFlags({}) });
  reporter.close();
  if (reporter.mode === 'json') reporter.record('status', statusJson(now, Date.now(), DEFAULT_STUCK_AFTER));
  else reporter.write(formatStatusTable(now, Date.now(), DEFAULT_STUCK_AFTER));
  return now;
}

/**
 * A finished run's exit code: 3, with the counts, when not every record succeeded. `counts`: the
 * ledger's request counts (a reported status's), taken after the last request became final.
 */
export function reportFinished(reporter: Reporter, counts: RequestCounts, ledgerName: string): number {
  const { code, line } = finishedRun(counts, ledgerName);
  if (line !== undefined) reporter.log(line);
  return code;
}

export function registerSubmit(program: Command): void {
  addBudgetOptions(
    addReportOptions(
      addBackendOptions(
        program
          .command('submit')
          .description('upload staged request files and create batches, within the limits')
          .requiredOption('--ledger <path>', "the run's ledger"),
      ),
    ),
  )
    .addHelpText(
      'after',
      examples([
        'batchpipe submit --ledger runs/fb.db --max-batches 10',
        'batchpipe submit --ledger runs/fb.db --base-url http://127.0.0.1:8787/v1',
        'batchpipe submit --ledger runs/fb.db --max-usd 20   # no batch past $20 at batch prices',
      ]),
    )
    .action(async (flags: SubmitFlags, cmd: Command) => {
      const prices = costSettingsFromFlags(flags);
      await withRun('submit', flags, cmd, async (options, reporter) => {
        await submit({ ...options, budget: runBudget(flags, options.ledger) });
        reportStatus(reporter, options.ledger, prices);
        reporter.log(afterSubmit(cmd, userArgs(cmd), flags.ledger));
      });
    });
}

export function registerCollect(program: Command): void {
  addBudgetOptions(
    addReportOptions(
      addBackendOptions(
        program
          .command('collect')
          .description(
            'poll batches until every request is final, recording results and retrying what may succeed',
          )
          .requiredOption('--ledger <path>', "the run's ledger")
          .option('--once', 'poll one round and return')
          .option(
            '--output-schema <file.json>',
            'JSON Schema parsed results must match; a mismatch is retried (kept in the ledger)',
          ),
      ),
    ),
  )
    .addHelpText(
      'after',
      examples([
        'batchpipe collect --ledger runs/fb.db            # OpenAI (OPENAI_API_KEY)',
        'batchpipe collect --ledger runs/fb.db --backend local --once',
      ]),
    )
    .action(async (flags: SubmitFlags & { once?: boolean; outputSchema?: string }, cmd: Command) => {
      const prices = costSettingsFromFlags(flags);
      await withRun('collect', flags, cmd, async (options, reporter) => {
        if (flags.outputSchema !== undefined) await storeOutputSchema(options.ledger, flags.outputSchema);
        const { staged, submitted } = options.ledger.counts();
        let final = staged + submitted === 0;
        if (final) reporter.log('nothing to collect: every request is final');
        else
          ({ final } = await collect({
            ...options,
            once: flags.once,
            budget: runBudget(flags, options.ledger),
          }));
        const now = reportStatus(reporter, options.ledger, prices);
        if (final) process.exitCode = reportFinished(reporter, now.requests, flags.ledger);
      });
    });
}

interface StatusFlags extends PriceFlags {
  ledger: string;
  json?: boolean;
  watch?: boolean;
  interval: number;
  stuckAfter: StuckThresholds;
}

export function registerStatus(program: Command): void {
  const cmd = program
    .command('status')
    .description(
      'counts per request state, batches with progress and stuck flags, tokens and cost so far, cost projected',
    )
    .requiredOption('--ledger <path>', "the run's ledger")
    .option('--json', 'the stable JSON form on stdout')
    .option('-w, --watch', 'refresh in place until every request is final')
    .option(
      '--interval <seconds>',
      'with --watch: seconds between refreshes',
      numberOption('--interval', { min: 0, aboveMin: true, max: 3600 }),
      2,
    )
    .addOption(
      new Option('--stuck-after <status=duration>', 'flag a batch in this status for longer (repeatable)')
        .argParser(parseStuckAfter)
        .default(DEFAULT_STUCK_AFTER, describeThresholds(DEFAULT_STUCK_AFTER)),
    );
  addPriceOptions(cmd, { output: true })
    .addHelpText(
      'after',
      examples([
        'batchpipe status --ledger runs/fb.db',
        'batchpipe status --ledger runs/fb.db --watch --stuck-after finalizing=10m',
        'batchpipe status --ledger runs/fb.db --json | jq .requests',
      ]),
    )
    .action(async (flags: StatusFlags) => {
      const prices = costSettingsFromFlags(flags);
      const ledger = openExistingLedger(flags.ledger);
      try {
        if (flags.watch) {
          await watchStatus(ledger, { ...flags, intervalMs: flags.interval * 1000, prices });
          return;
        }
        const now = status({ ledger, prices });
        process.stdout.write(
          flags.json
            ? `${JSON.stringify(statusJson(now, Date.now(), flags.stuckAfter))}\n`
            : formatStatusTable(now, Date.now(), flags.stuckAfter),
        );
      } finally {
        ledger.close();
      }
    });
}

export function registerCancel(program: Command): void {
  addReportOptions(
    addBackendOptions(
      program
        .command('cancel')
        .description("cancel the run's unfinished batches, keeping what they finished")
        .requiredOption('--ledger <path>', "the run's ledger"),
    ),
  )
    .addHelpText('after', examples(['batchpipe cancel --ledger runs/fb.db']))
    .action(async (flags: WorkFlags, cmd: Command) => {
      await withRun('cancel', flags, cmd, async (options, reporter) => {
        await cancel(options);
        reportStatus(reporter, options.ledger);
      });
    });
}

const RETRY_STATES: readonly LeftoverState[] = ['failed', 'expired', 'cancelled'];

function parseRetryStates(value: string): LeftoverState[] {
  const states = value.split(',').map((s) => s.trim());
  const bad = states.filter((s) => !(RETRY_STATES as readonly string[]).includes(s));
  if (bad.length > 0 || states.length === 0) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `--status takes a comma-separated list of ${RETRY_STATES.join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  return states as LeftoverState[];
}

export function registerRetry(program: Command): void {
  program
    .command('retry')
    .description(
      'stage failed, expired or cancelled requests again (attempt + 1): the next run or submit sends them',
    )
    .requiredOption('--ledger <path>', "the run's ledger")
    .option(
      '--status <list>',
      'which final states to stage again: failed,expired,cancelled (default: all three)',
      parseRetryStates,
    )
    .option(
      '--max-attempts <n>',
      'only requests that have had fewer attempts than this (default: every one)',
      intOption('--max-attempts'),
    )
    .addHelpText(
      'after',
      examples([
        'batchpipe retry --ledger runs/fb.db && batchpipe run --ledger runs/fb.db --backend local > fb.csv',
        'batchpipe retry --ledger runs/fb.db --status expired --max-attempts 5',
      ]),
    )
    .action((flags: { ledger: string; status?: LeftoverState[]; maxAttempts?: number }) => {
      const ledger = openExistingLedger(flags.ledger, 'batchpipe retry');
      try {
        requireCompletePrepare(ledger, flags.ledger, 'retry');
        const states = flags.status ?? RETRY_STATES;
        const staged = ledger.transaction(() =>
          RequestStates.of(ledger).restageFinal(states, flags.maxAttempts ?? Number.MAX_SAFE_INTEGER, false),
        );
        const next = formatCommand(['run', '--ledger', flags.ledger]);
        process.stderr.write(
          staged === 0
            ? `batchpipe: no ${states.join(', ')} requests to stage again${flags.maxAttempts ? ` with fewer than ${flags.maxAttempts} attempts` : ''}\n`
            : `batchpipe: staged ${plural(staged, 'request')} again (${states.join(', ')}; attempt + 1): \`${next}\` with the run's backend flags sends them\n`,
        );
      } finally {
        ledger.close();
      }
    });
}

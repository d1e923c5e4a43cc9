import { type Command, Option } from 'commander';
import { BatchpipeError, ErrorCodes } from '../../errors.js';
import { hasRunIdentity } from '../../ledger/identity.js';
import { Ledger } from '../../ledger/ledger.js';
import { RequestStates } from '../../ledger/request-states.js';
import { requireCompletePrepare } from '../../prepare/run-identity.js';
import { writeResults } from '../../results/write-results.js';
import { DEFAULT_CONCURRENCY, drive } from '../../scheduler/api.js';
import { lowerMaxLines } from '../../scheduler/restage.js';
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
import { optionNames, repeatCommand } from '../command-line.js';
import { addBudgetOptions, type BudgetFlags, costSettingsFromFlags, runBudget } from '../cost-options.js';
import { afterSubmit } from '../follow-ups.js';
import { examples } from '../help.js';
import { plural } from '../human.js';
import { onInterrupt } from '../interrupt.js';
import { durationOption, intOption, storeOutputSchema } from '../options.js';
import { checkOutputPath, writeOutput } from '../output.js';
import { describeInFlight } from '../progress/in-flight.js';
import { runProvider } from '../provider-option.js';
import { addReportOptions, Reporter, type ReportFlags } from '../reporter.js';
import { reportFinished, reportStatus } from './batches.js';
import { addPrepareOptions, type PrepareFlags, prepareFromCli } from './prepare.js';
import { addResultsOptions, type ResultsFlags, resultsOptionsFromFlags } from './results.js';

interface RunFlags extends PrepareFlags, BackendFlags, ResultsFlags, ReportFlags, BudgetFlags {
  wait: boolean;
  mode: 'batch' | 'direct';
  concurrency: number;
  rpm?: number;
  tpm?: number;
  serviceTier?: 'flex';
  deadline?: number;
  hedge?: 'direct' | 'flex';
  results?: string;
  outputSchema?: string;
}

/** What a prepared ledger keeps: going on, the input and these options are not given again. */
const KEPT_BY_THE_LEDGER = [
  ...optionNames((c) => addPrepareOptions(c)).filter((n) => n !== 'ledger'),
  'outputSchema',
];

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description('prepare, submit, collect and retry until every request is final, then write the results')
    .argument('[file]', "input file, or - for stdin (omit to resume the ledger's run)");
  addPrepareOptions(cmd);
  addBudgetOptions(addReportOptions(addResultsOptions(addBackendOptions(cmd))))
    .option('--no-wait', 'submit and return; `batchpipe collect` picks up later')
    .addOption(
      new Option(
        '--mode <mode>',
        'batch (cheapest, within 24h) or direct (every request as a synchronous call now, at synchronous prices)',
      )
        .choices(['batch', 'direct'])
        .default('batch'),
    )
    .option(
      '--concurrency <n>',
      'with --mode direct: calls in flight at once',
      intOption('--concurrency'),
      DEFAULT_CONCURRENCY,
    )
    .option(
      '--rpm <n>',
      "with --mode direct: requests per minute at most (the API's limit lowers it)",
      intOption('--rpm'),
    )
    .option(
      '--tpm <n>',
      'with --mode direct: tokens per minute at most (input + max output)',
      intOption('--tpm'),
    )
    .addOption(
      new Option(
        '--service-tier <tier>',
        "with --mode direct: flex (OpenAI's flex processing: batch prices, slower, may be refused for capacity)",
      ).choices(['flex']),
    )
    .addOption(
      new Option(
        '--deadline <duration>',
        'batches that stall or would miss this (2h, 30m, 60s from now) are cancelled, their finished rows kept, the rest sent by --hedge',
      ).argParser(durationOption('--deadline')),
    )
    .addOption(
      new Option(
        '--hedge <path>',
        'with --deadline: where unanswered rows go: direct (synchronous price) or flex (batch price, slower)',
      ).choices(['direct', 'flex']),
    )
    .option('--results <file>', 'write the results here instead of stdout')
    .option(
      '--output-schema <file.json>',
      'JSON Schema parsed results must match; a mismatch is retried (kept in the ledger)',
    )
    .addHelpText(
      'after',
      examples([
        'batchpipe run examples/feedback.csv --backend local --ledger runs/fb.db --model gpt-4o-mini --id-column id --body examples/sentiment-body.json --expand > fb.csv',
        "batchpipe run feedback.csv --ledger runs/fb.db --model gpt-4o-mini --prompt 'Classify: {{text}}' --no-wait   # OpenAI",
        'batchpipe run --ledger runs/fb.db --max-attempts 5 > fb.csv   # resume; a higher --max-attempts retries what may succeed',
        'batchpipe run feedback.csv --ledger runs/fb.db --model gpt-4o-mini --prompt "{{text}}" --max-usd 5 --expect-output-tokens 20',
      ]),
    )
    .action(async (file: string | undefined, flags: RunFlags, command: Command) => {
      checkBackendFlags(flags);
      checkModeFlags(flags, command);
      // Price files are read (and a bad one refused) before any work.
      const prices = costSettingsFromFlags(flags);
      // Outputs that cannot be written fail now, not after the batches ran.
      if (flags.results !== undefined) checkOutputPath('--results', flags.results);
      if (flags.rejects !== undefined) checkOutputPath('--rejects', flags.rejects);
      const reporter = Reporter.open(flags);
      const ledger = Ledger.open(flags.ledger, { holder: 'batchpipe run' });
      try {
        const args = userArgs(command);
        // A new ledger needs input (stdin when no file is named); an existing one resumes, and a
        // named file is checked against what the ledger already holds.
        const resumed = hasRunIdentity(ledger);
        // The key of a resumed run's provider, before any work (a new run's was checked above).
        if (resumed) checkBackendFlags(flags, runProvider(ledger, flags.provider));
        if (file === undefined) requireCompletePrepare(ledger, flags.ledger, 'run');
        if (file !== undefined || !resumed) await prepareFromCli(file, flags, ledger, reporter, command);
        else if (flags.maxLines !== undefined) {
          // Resuming with a smaller --max-lines: files not yet sent are written again that small.
          const moved = lowerMaxLines(ledger, flags.maxLines);
          reporter.log(
            `files from now on hold at most ${flags.maxLines} requests (${moved} staged requests to rewrite)`,
          );
        }
        if (resumed && command.getOptionValueSource('maxAttempts') === 'cli') {
          // A higher --max-attempts on a run that gave up on some requests: try those again that may succeed.
          const again = ledger.transaction(() =>
            RequestStates.of(ledger).restageFinal(['failed', 'expired'], flags.maxAttempts, true),
          );
          if (again > 0) {
            reporter.log(
              `--max-attempts ${flags.maxAttempts}: ${plural(again, 'failed request')} that may succeed go again`,
            );
          }
        }
        if (flags.outputSchema !== undefined) await storeOutputSchema(ledger, flags.outputSchema);
        onInterrupt(() => ({
          doing: describeInFlight(reporter.progress, batchHome(flags)),
          resume: repeatCommand(command, args, { options: KEPT_BY_THE_LEDGER, positionals: true }),
        }));
        const provider = await openProviderFromFlags(flags, reporter, ledger);
        let final: boolean;
        try {
          ({ final } = await drive({
            ...schedulerOptionsFromFlags(flags, ledger, provider, reporter),
            wait: flags.wait,
            mode: flags.mode,
            direct: {
              concurrency: flags.concurrency,
              rpm: flags.rpm,
              tpm: flags.tpm,
              serviceTier: flags.serviceTier,
            },
            hedge:
              flags.deadline === undefined
                ? undefined
                : { deadlineMs: flags.deadline * 1000, path: flags.hedge ?? 'direct' },
            budget: runBudget(flags, ledger),
          }));
        } finally {
          await provider.close();
        }
        const now = reportStatus(reporter, ledger, prices);
        reportPaths(reporter, now);
        if (!final) {
          reporter.log(afterSubmit(command, args, flags.ledger, flags.results));
          return;
        }
        onInterrupt(() => ({
          doing: 'while writing the results (every request is final: nothing else was under way)',
          resume: repeatCommand(command, args, { options: KEPT_BY_THE_LEDGER, positionals: true }),
        }));
        const options = resultsOptionsFromFlags(flags, ledger);
        const { rows } = await writeOutput(flags.results, (out) => writeResults(ledger, out, options));
        reporter.log(`wrote ${rows} results${flags.results ? ` to ${flags.results}` : ''}`);
        process.exitCode = reportFinished(reporter, now.requests, flags.ledger);
      } finally {
        ledger.close();
      }
    });
}

/** Flags of the direct path given without it, or with a flag it cannot honour: a usage error. */
function checkModeFlags(flags: RunFlags, command: Command): void {
  const usage = (message: string) => new BatchpipeError(ErrorCodes.USAGE, message);
  if (flags.hedge !== undefined && flags.deadline === undefined) {
    throw usage(
      '--hedge needs --deadline: the run hedges when a batch stalls or the deadline would be missed',
    );
  }
  const provider = flags.provider ?? 'openai';
  if (provider !== 'openai') {
    // Flex processing is OpenAI's service tier; Anthropic and Gemini go direct at their standard price.
    if (flags.serviceTier === 'flex') {
      throw usage(
        `--service-tier flex is OpenAI's flex processing: --provider ${provider} has no flex tier; drop it`,
      );
    }
    if (flags.hedge === 'flex') {
      throw usage(
        `--hedge flex is OpenAI's flex processing: --provider ${provider} has no flex tier; use --hedge direct`,
      );
    }
  }
  if (flags.mode === 'direct') {
    if (!flags.wait) {
      throw usage('--no-wait is for batches: --mode direct sends every request now and waits for its answer');
    }
    if (flags.deadline !== undefined)
      throw usage('--deadline hedges batches: --mode direct has none to hedge');
    return;
  }
  if (flags.deadline !== undefined) {
    // The hedge path takes --concurrency, --rpm and --tpm (its tier is --hedge's).
    if (!flags.wait) throw usage('--deadline needs the run to watch its batches: drop --no-wait');
    return;
  }
  const given = ['concurrency', 'rpm', 'tpm', 'serviceTier'].filter(
    (n) => command.getOptionValueSource(n) === 'cli',
  );
  if (given.length > 0) {
    const names = given.map((n) => `--${n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    throw usage(
      `${names.join(', ')} ${given.length === 1 ? 'is' : 'are'} for --mode direct (the synchronous path): add --mode direct, or drop ${given.length === 1 ? 'it' : 'them'}`,
    );
  }
}

/** Which path answered how many rows, at what price (once any went direct or flex), and the resends. */
function reportPaths(reporter: Reporter, { paths, direct_resent: resent = 0 }: RunStatus): void {
  if (!paths) return;
  const parts = paths.map(
    (p) =>
      `${p.path} ${p.requests} (${p.input_tokens} in, ${p.output_tokens} out${p.usd === null ? ', unpriced' : `, $${p.usd.toFixed(6)}`})`,
  );
  reporter.log(`answered by path: ${parts.join('; ')}`);
  if (resent > 0) {
    reporter.log(
      `${resent} requests were sent again after a run stopped with them in flight (at-least-once: they may be billed twice)`,
    );
  }
}

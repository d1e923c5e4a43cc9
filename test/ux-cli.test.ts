import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { runCli, spawnServe, tempDir } from './support.js';
import { FEEDBACK_CSV, runInTerminal, startEchoModel } from './ux-support.js';

const COMMANDS = [
  'run',
  'prepare',
  'validate',
  'submit',
  'collect',
  'status',
  'results',
  'ingest',
  'cancel',
  'retry',
  'serve',
];

test("every command's --help shows examples and marks its required options; `help nosuch` is an unknown command", async () => {
  const top = await runCli(['--help']);
  for (const command of COMMANDS) assert.match(top.stdout, new RegExp(`^ {2}${command}\\b`, 'm'), command);
  for (const command of COMMANDS) {
    const help = await runCli([command, '--help']);
    assert.equal(help.code, 0, command);
    const examples = help.stdout.split('\nExamples:\n')[1] ?? '';
    const lines = examples.split('\n').filter((l) => l.startsWith('  $ batchpipe '));
    assert.ok(lines.length >= 1, `${command}: ${help.stdout}`);
    assert.ok(
      lines.every((l) => l.startsWith(`  $ batchpipe ${command} `)),
      `${command}: examples of ${command}`,
    );
    if (!['validate', 'serve'].includes(command)) {
      assert.match(help.stdout, /--ledger <path>\s+.*\(required\)/s, command);
    }
  }
  const unknown = await runCli(['help', 'nosuch']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'nosuch'/);
});

test('conflicting and misplaced backend flags are usage errors before any work', async () => {
  const dir = tempDir();
  const base = [
    'run',
    FEEDBACK_CSV,
    '--ledger',
    path.join(dir, 'x.db'),
    '--model',
    'm',
    '--prompt',
    '{{text}}',
  ];
  const both = await runCli([...base, '--backend', 'local', '--base-url', 'http://127.0.0.1:9/v1']);
  assert.equal(both.code, 2, both.stderr);
  assert.match(both.stderr, /BP_USAGE --backend local starts the built-in server itself: drop --base-url/);
  const upstream = await runCli([...base, '--upstream', 'http://127.0.0.1:9/v1'], {
    env: { OPENAI_API_KEY: 'k' },
  });
  assert.equal(upstream.code, 2, upstream.stderr);
  assert.match(upstream.stderr, /--upstream is for --backend local/);
  const noKey = await runCli(base, { env: { OPENAI_API_KEY: '' } });
  assert.equal(noKey.code, 1);
  assert.match(noKey.stderr, /BP_NO_API_KEY/);
  assert.equal(existsSync(path.join(dir, 'x.db')), false, 'nothing prepared before the usage errors');
});

test('a Batch API that cannot be reached is named in the BP_API error', async () => {
  const dir = tempDir();
  const url = 'http://127.0.0.1:9/v1';
  const run = await runCli(
    [
      'run',
      FEEDBACK_CSV,
      '--ledger',
      path.join(dir, 'x.db'),
      '--model',
      'm',
      '--prompt',
      '{{text}}',
      '--base-url',
      url,
    ],
    { env: { OPENAI_API_KEY: 'sk-unreachable-test' } },
  );
  assert.equal(run.code, 1);
  assert.match(
    run.stderr,
    /BP_API .* failed: Connection error\. \(could not reach http:\/\/127\.0\.0\.1:9\/v1\)/,
  );
});

test('run --backend local --upstream URL: the built-in server answers from that OpenAI-compatible model', async () => {
  const model = await startEchoModel();
  try {
    const dir = tempDir();
    const run = await runCli([
      'run',
      FEEDBACK_CSV,
      '--backend',
      'local',
      '--upstream',
      model.base,
      '--ledger',
      path.join(dir, 'fb.db'),
      '--model',
      'llama3.2',
      '--id-column',
      'id',
      '--prompt',
      'Sentiment of: {{text}}',
      '--poll-interval',
      '0.2',
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`answers from ${model.base.replace(/[/.]/g, '\\$&')}`));
    const rows = parse(run.stdout, { columns: true }) as Record<string, string>[];
    const input = parse(readFileSync(FEEDBACK_CSV), { columns: true }) as Record<string, string>[];
    assert.deepEqual(
      rows.map((r) => r.result),
      input.map((r) => `echo: Sentiment of: ${r.text}`),
    );
    assert.equal(model.prompts.length, input.length);
  } finally {
    await model.close();
  }
});

test('serve --latency runs many requests per batch without a MaxListenersExceededWarning', async () => {
  const serve = await spawnServe([
    '--data',
    path.join(tempDir(), 'srv'),
    '--latency',
    '50',
    '--concurrency',
    '32',
  ]);
  try {
    const dir = tempDir();
    const run = await runCli(
      [
        'run',
        FEEDBACK_CSV,
        '--ledger',
        path.join(dir, 'x.db'),
        '--base-url',
        serve.url,
        '--model',
        'm',
        '--prompt',
        '{{text}}',
        '--poll-interval',
        '0.2',
      ],
      { env: { OPENAI_API_KEY: 'k-test' } },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(serve.stderr(), /completed, 12 completed/);
  } finally {
    await serve.stop();
  }
  assert.doesNotMatch(serve.stderr(), /MaxListenersExceededWarning|Warning/);
});

test('prepare without input on a terminal says it reads stdin; without --out its files go beside the ledger', async () => {
  const dir = tempDir();
  const ledger = path.join(dir, 'runs', 'x.db');
  const tty = await runInTerminal([
    'prepare',
    '--ledger',
    ledger,
    '--model',
    'm',
    '--prompt',
    '{{a}}',
    '--input-format',
    'jsonl',
  ]);
  assert.match(tty.stdout, /batchpipe: reading records from stdin \(Ctrl-D to end\)/);
  const piped = await runCli(['prepare', '--ledger', ledger, '--model', 'm', '--prompt', '{{a}}'], {
    stdin: '{"a":"x"}\n{"a":"y"}\n',
  });
  assert.equal(piped.code, 0, piped.stderr);
  assert.doesNotMatch(piped.stderr, /Ctrl-D/, 'piped stdin needs no hint');
  assert.ok(existsSync(path.join(dir, 'runs', 'x.requests')), 'runs/x.db → runs/x.requests/');
  assert.match(piped.stderr, /2 = staged 2 \+ rejected 0; 1 files in \S+x\.requests/);
});

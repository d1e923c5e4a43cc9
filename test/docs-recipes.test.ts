/**
 * The shell blocks of README.md and docs/recipes.md marked `<!-- test: NAME [remote] [replace=URL]
 * [upstream=URL] -->`, run as typed by bash (`set -eu`) in a folder of their own, with `batchpipe`
 * (and `npx batchpipe`) being this clone's CLI. `remote`: a `batchpipe serve` stands for the API
 * (OPENAI_BASE_URL); `replace=URL`: that URL in the block is the test server's; `upstream=URL`: a
 * stand-in model server answers there. `npm …` lines are left out (the suite is what `npm test` runs).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { BIN, type CliResult, REPO_ROOT, type ServeProcess, spawnServe, tempDir } from './support.js';
import { startEchoModel } from './ux-support.js';

interface Block {
  doc: string;
  name: string;
  flags: Map<string, string>;
  script: string;
}

function blocksOf(doc: string): Block[] {
  const text = readFileSync(path.join(REPO_ROOT, doc), 'utf8');
  const blocks: Block[] = [];
  for (const m of text.matchAll(/<!-- test: ([^>]*?) -->\n```sh\n([\s\S]*?)```/g)) {
    const [name = '', ...rest] = m[1]!.split(/\s+/);
    const flags = new Map(rest.map((f) => [f.split('=')[0]!, f.split('=').slice(1).join('=')]));
    const script = m[2]!
      .replace(/\\\n/g, '\\\n')
      .split('\n')
      .filter((l) => !/^npm /.test(l))
      .join('\n');
    blocks.push({ doc, name, flags, script });
  }
  return blocks;
}

/** A folder with `examples/` (the clone's) and `feedback.csv`, and a PATH whose batchpipe and npx are this clone's. */
function workspace(): { cwd: string; bin: string } {
  const cwd = tempDir('bp-docs-');
  symlinkSync(path.join(REPO_ROOT, 'examples'), path.join(cwd, 'examples'));
  writeFileSync(
    path.join(cwd, 'feedback.csv'),
    readFileSync(path.join(REPO_ROOT, 'examples', 'feedback.csv')),
  );
  const bin = path.join(cwd, '.bin');
  mkdirSync(bin);
  const shim = (name: string, body: string) => {
    writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(path.join(bin, name), 0o755);
  };
  shim('batchpipe', `exec "${process.execPath}" "${BIN}" "$@"`);
  shim(
    'npx',
    `[ "$1" = batchpipe ] || { echo "npx $1: not in this test" >&2; exit 1; }\nshift\nexec "${process.execPath}" "${BIN}" "$@"`,
  );
  return { cwd, bin };
}

function bash(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `set -eu\n${script}`], { cwd, env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
  });
}

/** What each block must leave behind, beyond exiting 0. */
const CHECKS: Record<string, (cwd: string, run: CliResult) => void> = {
  quickstart: (cwd, run) => {
    const rows = csvRows(cwd, 'categorized.csv');
    assert.equal(rows.length, 12);
    assert.ok(rows.every((r) => r.result_status === 'succeeded' && r['result.sentiment'] !== undefined));
    assert.match(run.stdout, /requests: 12 total: 12 succeeded/);
  },
  openai: (cwd) => assert.equal(csvRows(cwd, 'categorized.csv').length, 12),
  anthropic: (cwd) => {
    const rows = csvRows(cwd, 'categorized.csv');
    assert.equal(rows.length, 12);
    assert.ok(rows.every((r) => r.result_status === 'succeeded' && r['result.sentiment'] !== undefined));
  },
  gemini: (cwd) => {
    const rows = csvRows(cwd, 'categorized.csv');
    assert.equal(rows.length, 12);
    assert.ok(rows.every((r) => r.result_status === 'succeeded' && r['result.sentiment'] !== undefined));
  },
  azure: (cwd) => assert.ok(csvRows(cwd, 'azure.csv').every((r) => r.result_status === 'succeeded')),
  groq: (cwd) => assert.ok(csvRows(cwd, 'groq.csv').every((r) => r.result_status === 'succeeded')),
  'local-model': (cwd) =>
    assert.ok(csvRows(cwd, 'local.csv').every((r) => r.result === `echo: Sentiment of: ${r.text}`)),
  encodings: (_cwd, run) => assert.match(run.stdout, /^1,café crème,/m),
  duplicates: (cwd, run) => {
    assert.match(run.stdout, /^exit 3$/m);
    assert.match(run.stdout, /"line":4.*"code":"BP_DUPLICATE_ID"/);
    assert.deepEqual(
      csvRows(cwd, 'dup.csv.out').map((r) => r.result_status),
      ['succeeded', 'succeeded', 'rejected'],
    );
  },
  resume: (cwd, run) => {
    assert.match(run.stdout, /^exit 130$/m);
    assert.match(
      run.stdout,
      /interrupted by SIGINT while collecting: .*; to go on: batchpipe run --backend local --ledger runs\/resume\.db$/m,
    );
    assert.equal(csvRows(cwd, 'resumed.csv').length, 12);
  },
  retry: (cwd, run) => {
    assert.match(run.stdout, /^exit 3$/m, 'the first run left failures');
    assert.match(run.stderr, /staged \d+ requests? again/);
    assert.ok(csvRows(cwd, 'retried.csv').every((r) => r.result_status === 'succeeded'));
  },
  'exit-codes': (_cwd, run) => assert.match(run.stdout, /^every record succeeded$/m),
  watch: (_cwd, run) => assert.match(run.stdout, /requests: 12 total: 12 succeeded/),
  cost: (cwd, run) => {
    assert.match(run.stdout, /saving with batch: \$[\d.]+ \(50%\)/);
    const spent = /cost: spent \$([\d.]+) as sent/.exec(run.stdout);
    assert.ok(spent, run.stdout);
    const rows = csvRows(cwd, 'costs.csv');
    assert.equal(rows.length, 12);
    // Exact decimals summed as integers of pico-dollars, then rounded once, halves up, as status rounds.
    const pico = rows.reduce((sum, r) => {
      const [whole, fraction] = r.result_cost_usd!.split('.');
      return sum + BigInt(whole!) * 10n ** 12n + BigInt(fraction!.padEnd(12, '0'));
    }, 0n);
    assert.equal(
      Number((pico + 500_000n) / 1_000_000n),
      Math.round(Number(spent[1]) * 1e6),
      'the rows add up to the spent total',
    );
  },
};

function csvRows(cwd: string, file: string): Record<string, string>[] {
  return parse(readFileSync(path.join(cwd, file)), { columns: true }) as Record<string, string>[];
}

const blocks = [...blocksOf('README.md'), ...blocksOf('docs/recipes.md')];

test('the docs mark the blocks this test runs, and each has its check', () => {
  assert.deepEqual(blocks.map((b) => b.name).sort(), Object.keys(CHECKS).sort());
});

for (const block of blocks) {
  test(`${block.doc}: the "${block.name}" commands work as typed`, { timeout: 60_000 }, async () => {
    const { cwd, bin } = workspace();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      OPENAI_API_KEY: 'sk-docs-test',
      GROQ_API_KEY: 'gsk-docs-test',
      AZURE_OPENAI_API_KEY: 'az-docs-test',
    };
    delete env.OPENAI_BASE_URL;
    let script = block.script;
    let serve: ServeProcess | undefined;
    let model: Awaited<ReturnType<typeof startEchoModel>> | undefined;
    try {
      if (block.flags.has('remote') || block.flags.has('replace')) {
        serve = await spawnServe([
          '--data',
          path.join(cwd, '.server'),
          ...(block.name === 'retry' ? ['--fail-rate', '0.5'] : []),
        ]);
        if (block.flags.has('remote')) env.OPENAI_BASE_URL = serve.url;
        const replace = block.flags.get('replace');
        if (replace) {
          assert.ok(script.includes(replace), `${replace} in the block`);
          const url = replace.endsWith('/v1') ? serve.url : serve.url.replace(/\/v1$/, '');
          script = script.split(replace).join(url);
        }
      }
      const upstream = block.flags.get('upstream');
      if (upstream) {
        model = await startEchoModel();
        assert.ok(script.includes(upstream));
        script = script.split(upstream).join(model.base);
      }
      let run: CliResult;
      if (block.name === 'retry' && serve) {
        // The retry recipe's failures are transient: its first command meets a server that fails some
        // requests; by the time the user retries, the cause has passed (the same server, no fault).
        const [first, ...rest] = script.split(/\n(?=batchpipe )/);
        const before = await bash(first!, cwd, env);
        assert.equal(before.code, 0, `${first}\n---\n${before.stdout}\n${before.stderr}`);
        await serve.stop();
        serve = await spawnServe(['--data', path.join(cwd, '.server')]);
        env.OPENAI_BASE_URL = serve.url;
        const after = await bash(rest.join('\n'), cwd, env);
        run = { ...after, stdout: before.stdout + after.stdout, stderr: before.stderr + after.stderr };
        script = rest.join('\n');
      } else run = await bash(script, cwd, env);
      assert.equal(run.code, 0, `${script}\n---\n${run.stdout}\n${run.stderr}`);
      CHECKS[block.name]!(cwd, run);
      assert.ok(existsSync(cwd));
    } finally {
      await serve?.stop();
      await model?.close();
    }
  });
}

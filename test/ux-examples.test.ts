import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { type CliResult, REPO_ROOT, runCli, tempDir } from './support.js';
import { FEEDBACK_CSV } from './ux-support.js';

/** Runs `sh examples/NAME.sh OUT` from a folder of its own, as a user would. */
function runExample(name: string, out: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', [path.join(REPO_ROOT, 'examples', `${name}.sh`), out], { cwd: tempDir() });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => stdout.push(d));
    child.stderr.on('data', (d: Buffer) => stderr.push(d));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString(),
        stderr: Buffer.concat(stderr).toString(),
      }),
    );
  });
}

const feedback = parse(readFileSync(FEEDBACK_CSV), { columns: true }) as Record<string, string>[];

test('examples/sentiment.sh: every feedback row with its sentiment and topics, checked against the JSON Schema', async () => {
  const out = tempDir();
  const ran = await runExample('sentiment', out);
  assert.equal(ran.code, 0, ran.stderr);
  const rows = parse(readFileSync(path.join(out, 'sentiment.csv')), { columns: true }) as Record<
    string,
    string
  >[];
  assert.deepEqual(
    rows.map((r) => r.id),
    feedback.map((r) => r.id),
  );
  const schema = JSON.parse(readFileSync(path.join(REPO_ROOT, 'examples', 'sentiment-schema.json'), 'utf8'));
  for (const row of rows) {
    assert.equal(row.result_status, 'succeeded');
    assert.ok(schema.properties.sentiment.enum.includes(row['result.sentiment']), row['result.sentiment']);
    assert.ok(Array.isArray(JSON.parse(row['result.topics']!)));
  }
});

test('examples/embeddings.sh: every product of the JSONL with a unit vector of 1,536 numbers', async () => {
  const out = tempDir();
  const ran = await runExample('embeddings', out);
  assert.equal(ran.code, 0, ran.stderr);
  const input = readFileSync(path.join(REPO_ROOT, 'examples', 'products.jsonl'), 'utf8')
    .trim()
    .split('\n');
  const lines = readFileSync(path.join(out, 'products.embedded.jsonl'), 'utf8').trim().split('\n');
  assert.equal(lines.length, input.length);
  lines.forEach((line, i) => {
    const row = JSON.parse(line) as { status: string; record: unknown; result: number[] };
    assert.equal(row.status, 'succeeded');
    assert.deepEqual(row.record, JSON.parse(input[i]!));
    assert.equal(row.result.length, 1536);
    const norm = Math.sqrt(row.result.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-6, `unit length (${norm})`);
  });
});

test('examples/pipeline.sh: cat | batchpipe run - | head ends quietly with the first lines of the results', async () => {
  const out = tempDir();
  const ran = await runExample('pipeline', out);
  assert.equal(ran.code, 0, ran.stderr);
  assert.doesNotMatch(ran.stderr, /BP_|error|Error/);
  const results = await runCli(['results', '--ledger', path.join(out, 'pipe.db')]);
  assert.equal(ran.stdout, `${results.stdout.split('\n').slice(0, 6).join('\n')}\n`);
  // Again: the ledger holds the run, so the same line only writes the results again.
  const again = await runExample('pipeline', out);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, ran.stdout);
  assert.doesNotMatch(again.stderr, /uploaded|created batch/);
});

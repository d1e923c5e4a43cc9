import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import OpenAI from 'openai';
import { REPO_ROOT, removeDir, tempDir } from './server-support.js';

const BIN = path.join(REPO_ROOT, 'bin/batchpipe.js');

test('serve: prints its URL on stderr, enforces --api-key without ever printing it, stops on SIGINT with exit 0', async () => {
  const dataDir = tempDir();
  const secret = 'sk-very-secret-key-42';
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--port', '0', '--data', dataDir, '--api-key', secret, '--completion-window', '90s'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL on stderr: ${stderr}`)), 10_000);
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(stderr);
        if (match) {
          clearTimeout(timer);
          resolve(match[1] as string);
        }
      });
    });
    const good = new OpenAI({ apiKey: secret, baseURL: url, maxRetries: 0 });
    assert.deepEqual((await good.files.list()).data, []);
    const bad = new OpenAI({ apiKey: 'sk-other', baseURL: url, maxRetries: 0 });
    await assert.rejects(bad.files.list(), OpenAI.AuthenticationError);
  } finally {
    child.kill('SIGINT');
  }
  assert.equal(await exit, 0);
  assert.match(stderr, /API key required/);
  assert.ok(!stderr.includes(secret) && !stdout.includes(secret), 'the key is never printed');
  assert.equal(stdout, '', 'serve writes nothing to stdout');
  await removeDir(dataDir);
});

test('serve: bad flag values are usage errors (exit 2) naming the flag', () => {
  for (const [args, flag] of [
    [['--fail-rate', '2'], '--fail-rate'],
    [['--completion-window', 'soon'], '--completion-window'],
    [['--port', '70000'], '--port'],
    [['--concurrency', '0'], '--concurrency'],
  ] as const) {
    const run = spawnSync(process.execPath, [BIN, 'serve', ...args], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.ok(run.stderr.includes(flag), run.stderr);
  }
});

/**
 * Shared test helpers: where the repo and shared data are, temp dirs, and running the real CLI.
 * (Not a test file itself.)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/test/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SHARED_DIR = process.env.BATCHPIPE_SHARED ?? path.resolve(REPO_ROOT, '../shared');
export const BA_REVIEWS = path.join(SHARED_DIR, 'data', 'ba-airline-reviews.csv');
export const BIN = path.join(REPO_ROOT, 'bin', 'batchpipe.js');

/** Directories made by {@link tempDir} in this test file's process, removed when it exits. */
const madeDirs: string[] = [];
process.on('exit', () => {
  for (const dir of madeDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * A fresh directory under the OS temp dir, removed with everything in it when the test file's
 * process exits (each test file runs in a process of its own): the suite leaves nothing behind.
 */
export function tempDir(prefix = 'bp-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `bin/batchpipe.js` with real stdin (a string, or nothing: closed at once). */
export function runCli(
  args: string[],
  options: { stdin?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
    child.stdin.on('error', () => {}); // the CLI may exit before reading all of stdin
    child.stdin.end(options.stdin ?? '');
  });
}

/** Request lines of every `.jsonl` in a directory, in file-name order. */
export function readRequestFiles(dir: string): { files: string[]; lines: string[] } {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort();
  const lines = files.flatMap((f) =>
    readFileSync(path.join(dir, f), 'utf8')
      .split('\n')
      .filter((l) => l !== ''),
  );
  return { files, lines };
}

/** A `batchpipe serve` child process and the base URL it printed. */
export interface ServeProcess {
  child: import('node:child_process').ChildProcess;
  url: string;
  stderr: () => string;
  stop: () => Promise<void>;
}

/** Spawns `batchpipe serve --port 0 …` (with `env` on top of this process's) and waits for the URL it prints on stderr. */
export async function spawnServe(
  args: string[],
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 10_000);
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
      const match = /listening on (http:\/\/\S+\/v1)/.exec(err);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  return { child, url, stderr: () => err, stop };
}

/** `batchpipe run` on the BA reviews against a Batch API at `baseUrl`, with the test's own flags. */
export function baReviewsRunArgs(ledger: string, baseUrl: string, ...extra: string[]): string[] {
  return [
    'run',
    BA_REVIEWS,
    '--ledger',
    ledger,
    '--base-url',
    baseUrl,
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'ReviewID',
    '--prompt',
    'Classify: {{ReviewBody}}',
    '--format',
    'jsonl',
    ...extra,
  ];
}

/** `batchpipe prepare -` with `stdin`, its ledger and files in `dir` (`l.db`, `out/`). */
export function prepareFromStdin(dir: string, stdin: string, ...flags: string[]): Promise<CliResult> {
  return runCli(
    ['prepare', '-', '--ledger', path.join(dir, 'l.db'), '--out', path.join(dir, 'out'), ...flags],
    { stdin },
  );
}

/** Runs the CLI and SIGKILLs it after `ms` unless it ends first; resolves with how it ended. */
export function runKilledAfter(
  args: string[],
  ms: number,
): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** A CLI process left running while the test does other things. */
export interface BackgroundCli {
  child: import('node:child_process').ChildProcess;
  /** Its stderr so far. */
  stderr: () => string;
  /** Resolves when it ends, with all it wrote. */
  exited: Promise<CliResult>;
}

/** Starts `bin/batchpipe.js` without waiting for it (stdin closed at once). */
export function spawnCli(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): BackgroundCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  const exited = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
  });
  return { child, stderr: () => Buffer.concat(err).toString(), exited };
}

/** Polls `ready` every few milliseconds until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  ready: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

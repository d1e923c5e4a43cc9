/**
 * Helpers of the user-experience tests: the environment a person's terminal has (no CI, no
 * NO_COLOR), running the CLI under a pseudo-terminal with util-linux `script`, and a feedback run's
 * arguments. (Not a test file itself.)
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { BIN, type CliResult, REPO_ROOT } from './support.js';

export const FEEDBACK_CSV = path.join(REPO_ROOT, 'examples', 'feedback.csv');

/** This process's environment without what makes the CLI plain (CI, NO_COLOR), plus `extra`. */
export function terminalEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.CI;
  delete env.NO_COLOR;
  env.TERM = 'xterm-256color';
  return env;
}

/** A shell word, quoted. */
export function sh(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs `batchpipe ARGS` under a pseudo-terminal of 100×30 (`script` from util-linux): stdin, stdout
 * and stderr are the terminal, unless `redirect` sends stdout elsewhere (e.g. `> out.csv`). Resolves
 * with what the terminal showed.
 */
export function runInTerminal(
  args: readonly string[],
  options: { redirect?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CliResult> {
  const command = `stty rows 30 cols 100; ${sh(process.execPath)} ${sh(BIN)} ${args.map(sh).join(' ')} ${options.redirect ?? ''}`;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      cwd: options.cwd ?? REPO_ROOT,
      env: terminalEnv(options.env),
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
    child.stdin.end();
  });
}

/** Control characters other than newline (and tab): what a log file must never hold. */
export const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;

/**
 * A stand-in for a local model server (llama.cpp, Ollama, vLLM all speak this): an OpenAI-compatible
 * `POST /v1/chat/completions` on 127.0.0.1 that answers `echo: <last user message>`. `close()` it.
 */
export async function startEchoModel(): Promise<{
  base: string;
  prompts: string[];
  close: () => Promise<void>;
}> {
  const { createServer } = await import('node:http');
  const prompts: string[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      model: string;
      messages: { role: string; content: string }[];
    };
    const prompt = body.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
    prompts.push(prompt);
    res.writeHead(req.url === '/v1/chat/completions' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        id: `chatcmpl-echo-${prompts.length}`,
        object: 'chat.completion',
        created: 1_700_000_000,
        model: body.model,
        choices: [
          { index: 0, message: { role: 'assistant', content: `echo: ${prompt}` }, finish_reason: 'stop' },
        ],
        usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as import('node:net').AddressInfo;
  return {
    base: `http://127.0.0.1:${port}/v1`,
    prompts,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * Measures the local Batch API server on one big batch: a `batchpipe prepare`-shaped chat-completions
 * file of N requests (default 50,000) is uploaded, run on the built-in responder and downloaded, all
 * through the openai SDK. The server runs as its own process (`batchpipe serve`), so its peak RSS
 * (VmHWM in /proc) is the server's alone.
 *
 *   npx tsc -p . && node dist/bench/server-bench.js [--requests 50000] [--runs 1] [--prompt-chars 90]
 *
 * The peak RSS is sampled while the batch runs as well as read from VmHWM at the end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import OpenAI from 'openai';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '50000' },
    runs: { type: 'string', default: '1' },
    'prompt-chars': { type: 'string', default: '90' },
  },
});
const requests = Number(values.requests);
const runs = Number(values.runs);
const promptChars = Number(values['prompt-chars']);
const FILLER = 'the flight was delayed two hours, but the crew were kind and the seat was fine. ';

/** Writes N request lines in the shape `prepare` writes. */
async function writeInput(file: string, n: number): Promise<void> {
  const out = createWriteStream(file);
  for (let i = 0; i < n; i++) {
    const line = {
      custom_id: `row-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: {
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'Categorize the sentiment: positive, negative or mixed.' },
          {
            role: 'user',
            content: `Review ${i}: ${FILLER.repeat(Math.ceil(promptChars / FILLER.length)).slice(0, promptChars)}`,
          },
        ],
      },
    };
    if (!out.write(`${JSON.stringify(line)}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
}

async function startServe(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [path.join(REPO_ROOT, 'bin/batchpipe.js'), 'serve', '--port', '0', '--data', dataDir],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr?.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /listening on (\S+\/v1)/.exec(err);
      if (m) resolve(m[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  return { child, url };
}

/** Peak and current resident set of a process, in MB, from /proc. */
function memoryMb(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { peak: kb('VmHWM') / 1024, now: kb('VmRSS') / 1024 };
}

async function once(n: number): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'bp-server-bench-'));
  const input = path.join(work, 'requests.jsonl');
  await writeInput(input, n);
  const { child, url } = await startServe(path.join(work, 'data'));
  const pid = child.pid as number;
  try {
    const client = new OpenAI({ apiKey: 'bench', baseURL: url });
    const idle = memoryMb(pid);
    let t = performance.now();
    const file = await client.files.create({ file: createReadStream(input), purpose: 'batch' });
    const uploadMs = performance.now() - t;

    t = performance.now();
    let batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    let samples = 0;
    const rssDuring: number[] = [];
    while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
      await new Promise((r) => setTimeout(r, 50));
      batch = await client.batches.retrieve(batch.id);
      rssDuring.push(memoryMb(pid).now);
      samples++;
    }
    const batchMs = performance.now() - t;
    if (batch.status !== 'completed')
      throw new Error(`batch ended ${batch.status}: ${JSON.stringify(batch.errors)}`);

    t = performance.now();
    const response = await client.files.content(batch.output_file_id as string);
    let bytes = 0;
    let lines = 0;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.length;
      for (const b of chunk) if (b === 10) lines++;
    }
    const downloadMs = performance.now() - t;
    const mem = memoryMb(pid);
    const mb = (x: number) => (x / 1024 / 1024).toFixed(1);
    console.log(
      [
        `requests ${n}: input ${mb(statSync(input).size)} MB, output ${mb(bytes)} MB (${lines} lines, ${batch.request_counts?.completed} completed)`,
        `  upload ${uploadMs.toFixed(0)} ms | create → completed ${batchMs.toFixed(0)} ms (${samples} polls) | download ${downloadMs.toFixed(0)} ms`,
        `  server RSS: idle ${idle.now.toFixed(0)} MB, peak ${mem.peak.toFixed(0)} MB, after ${mem.now.toFixed(0)} MB; ` +
          `while running (every 50 ms): ${rssDuring.map((x) => x.toFixed(0)).join(' ')}`,
      ].join('\n'),
    );
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(work, { recursive: true, force: true });
  }
}

for (let i = 0; i < runs; i++) await once(requests);

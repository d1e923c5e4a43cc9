/**
 * The direct path (`run --mode direct`) against a real `batchpipe serve` over HTTP with the real SDK:
 * the server's synchronous endpoints and rate limits, the same results as the batch path, pacing
 * under `--rpm`, retries, and a SIGKILL in the middle of a run (checked from the server's own log).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { ApiError, GoogleGenAI } from '@google/genai';
import Database from 'better-sqlite3';
import { parse } from 'csv-parse/sync';
import OpenAI from 'openai';
import { parseResetMs, RatePacer } from '../src/scheduler/direct/rate-pacer.js';
import { createRateLimits } from '../src/server/sync/rate-limits.js';
import { SYNC_LOG_NAME, type SyncLogLine } from '../src/server/sync/sync-log.js';
import { baReviewsRunArgs, runCli, spawnCli, spawnServe, tempDir, waitFor } from './support.js';

const KEY = 'sk-direct-test-key';
const env = { OPENAI_API_KEY: KEY };

/** Each provider's `run` flags (its model) and key, against the same `batchpipe serve`. */
const PROVIDER_RUNS = {
  openai: { flags: ['--model', 'gpt-4o-mini'], env },
  anthropic: {
    flags: ['--provider', 'anthropic', '--model', 'claude-haiku-4-5'],
    env: { ANTHROPIC_API_KEY: KEY },
  },
  gemini: {
    flags: ['--provider', 'gemini', '--model', 'gemini-2.5-flash'],
    env: { GEMINI_API_KEY: KEY, GOOGLE_API_KEY: '' },
  },
} as const;
const PROVIDER_NAMES = ['openai', 'anthropic', 'gemini'] as const;

function syncLog(data: string): SyncLogLine[] {
  const file = path.join(data, SYNC_LOG_NAME);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as SyncLogLine);
}

/**
 * A CSV of `n` rows whose ids include ones Anthropic refuses as `custom_id`: a space and a dot (sent
 * base64url-encoded), and one too long even for that (sent as its SHA-256).
 */
function oddIdsCsv(dir: string, n: number): string {
  const file = path.join(dir, 'odd.csv');
  const id = (i: number) => (i === 1 ? `r${'x'.repeat(60)}` : i % 5 === 0 ? `r ${i}.x` : `r${i}`);
  const lines = [
    'id,text',
    ...Array.from({ length: n }, (_, i) => `${id(i)},row ${i} asks about seat ${i % 37}`),
  ];
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** The server's origin (the Anthropic and Gemini SDKs' base URL) from the `/v1` URL serve prints. */
function originOf(url: string): string {
  return url.replace(/\/v1$/, '');
}

/** A CSV of `n` rows with an id and a text. */
function rowsCsv(dir: string, n: number): string {
  const file = path.join(dir, 'in.csv');
  const lines = [
    'id,text',
    ...Array.from({ length: n }, (_, i) => `r${i},row ${i} asks about seat ${i % 37}`),
  ];
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

describe('serve: synchronous endpoints', () => {
  it('answers chat completions, embeddings and responses through the SDK, each logged', async () => {
    const data = tempDir();
    const serve = await spawnServe(['--data', data]);
    try {
      const client = new OpenAI({ apiKey: KEY, baseURL: serve.url, maxRetries: 0 });
      const chat = await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Say hello' }],
      });
      assert.equal(chat.object, 'chat.completion');
      assert.equal(typeof chat.choices[0]?.message.content, 'string');
      const embedding = await client.embeddings.create({
        model: 'text-embedding-3-small',
        input: ['a', 'b'],
      });
      assert.equal(embedding.data.length, 2);
      const response = await client.responses.create({ model: 'gpt-4o-mini', input: 'Say hello' });
      assert.equal(response.object, 'response');
      const logged = syncLog(data);
      assert.deepEqual(
        logged.map((l) => [l.path, l.status]),
        [
          ['/v1/chat/completions', 200],
          ['/v1/embeddings', 200],
          ['/v1/responses', 200],
        ],
      );
    } finally {
      await serve.stop();
    }
  });

  it('--flex-unavailable refuses flex calls 429 resource_unavailable, and no call of the default tier', async () => {
    const data = tempDir();
    const serve = await spawnServe(['--data', data, '--flex-unavailable', '1', '--rpm', '6000']);
    try {
      const client = new OpenAI({ apiKey: KEY, baseURL: serve.url, maxRetries: 0 });
      const messages = [{ role: 'user' as const, content: 'hi' }];
      const chat = await client.chat.completions.create({ model: 'gpt-5.4', messages });
      assert.equal(chat.object, 'chat.completion');
      const refused = await client.chat.completions
        .create({ model: 'gpt-5.4', messages, service_tier: 'flex' })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      assert.ok(refused instanceof OpenAI.RateLimitError, String(refused));
      assert.equal(refused.code, 'resource_unavailable');
      // Not a rate limit: no rate-limit headers, and nothing spent of --rpm.
      assert.equal(refused.headers?.get('x-ratelimit-limit-requests') ?? null, null);
      assert.deepEqual(
        syncLog(data).map((l) => [l.status, l.service_tier]),
        [
          [200, null],
          [429, 'flex'],
        ],
      );
    } finally {
      await serve.stop();
    }
  });

  it('--rpm answers a burst past one second of the limit with 429, rate-limit headers and retry-after-ms', async () => {
    const data = tempDir();
    const rpm = 120; // two a second
    const serve = await spawnServe(['--data', data, '--rpm', String(rpm)]);
    try {
      const client = new OpenAI({ apiKey: KEY, baseURL: serve.url, maxRetries: 0 });
      const call = () =>
        client.chat.completions
          .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
          .withResponse()
          .then(
            (r) => ({ status: 200, headers: r.response.headers }),
            (err: InstanceType<typeof OpenAI.APIError>) => ({ status: err.status, headers: err.headers! }),
          );
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await call());
      const refused = answers.filter((a) => a.status === 429);
      assert.ok(refused.length >= 1, `4 calls at once under ${rpm} rpm: ${answers.map((a) => a.status)}`);
      assert.equal(answers[0]!.status, 200);
      assert.equal(answers[0]!.headers.get('x-ratelimit-limit-requests'), String(rpm));
      const wait = Number(refused[0]!.headers.get('retry-after-ms'));
      assert.ok(wait > 0 && wait <= 60_000 / rpm, `retry-after-ms ${wait}`);
      assert.equal(refused[0]!.headers.get('x-ratelimit-remaining-requests'), '0');
      assert.ok(Number(refused[0]!.headers.get('retry-after')) >= 1);
      // After the wait it asked for, the next call goes through.
      await new Promise((resolve) => setTimeout(resolve, wait + 20));
      assert.equal((await call()).status, 200);
      assert.equal(syncLog(data).filter((l) => l.status === 429).length, refused.length);
    } finally {
      await serve.stop();
    }
  });

  it("answers Anthropic's messages and Gemini's generateContent through their SDKs, each logged", async () => {
    const data = tempDir();
    const serve = await spawnServe(['--data', data]);
    try {
      const anthropic = new Anthropic({ apiKey: KEY, baseURL: originOf(serve.url), maxRetries: 0 });
      const message = await anthropic.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 64,
        messages: [{ role: 'user', content: 'Say hello' }],
      });
      assert.equal(message.type, 'message');
      assert.equal(message.content[0]?.type, 'text');
      const gemini = new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: originOf(serve.url) } });
      const content = await gemini.models.generateContent({
        model: 'gemini-2.5-flash',
        contents: 'Say hello',
      });
      assert.equal(typeof content.text, 'string');
      assert.ok((content.usageMetadata?.promptTokenCount ?? 0) > 0);
      assert.deepEqual(
        syncLog(data).map((l) => [l.path, l.status, l.model]),
        [
          ['/v1/messages', 200, 'claude-haiku-4-5'],
          ['/v1beta/models/gemini-2.5-flash:generateContent', 200, 'gemini-2.5-flash'],
        ],
      );
    } finally {
      await serve.stop();
    }
  });

  it("--rpm refuses a burst in each API's own shape: Anthropic's rate_limit_error with retry-after and anthropic-ratelimit-*, Gemini's RESOURCE_EXHAUSTED with a RetryInfo", async () => {
    const data = tempDir();
    const rpm = 120; // two a second
    const serve = await spawnServe(['--data', data, '--rpm', String(rpm)]);
    try {
      const anthropic = new Anthropic({ apiKey: KEY, baseURL: originOf(serve.url), maxRetries: 0 });
      const call = () =>
        anthropic.messages
          .create({ model: 'claude-haiku-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })
          .withResponse()
          .then(
            (r) => ({ status: 200, headers: r.response.headers, error: undefined }),
            (err: InstanceType<typeof Anthropic.APIError>) => ({
              status: err.status,
              headers: err.headers!,
              error: err.error as { type: string; error: { type: string; message: string } },
            }),
          );
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await call());
      assert.equal(answers[0]!.status, 200);
      assert.equal(answers[0]!.headers.get('anthropic-ratelimit-requests-limit'), String(rpm));
      assert.ok(Date.parse(answers[0]!.headers.get('anthropic-ratelimit-requests-reset')!) > 0);
      const refused = answers.find((a) => a.status === 429);
      assert.ok(refused, `4 calls at once under ${rpm} rpm: ${answers.map((a) => a.status)}`);
      assert.equal(refused.error?.type, 'error');
      assert.equal(refused.error?.error.type, 'rate_limit_error');
      assert.equal(refused.headers.get('anthropic-ratelimit-requests-remaining'), '0');
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);

      const gemini = new GoogleGenAI({
        apiKey: KEY,
        httpOptions: { baseUrl: originOf(serve.url), retryOptions: { attempts: 1 } },
      });
      const statuses: number[] = [];
      let body:
        | { error: { status: string; details: { '@type': string; retryDelay?: string }[] } }
        | undefined;
      for (let i = 0; i < 4; i++) {
        try {
          await gemini.models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' });
          statuses.push(200);
        } catch (err) {
          assert.ok(err instanceof ApiError, String(err));
          statuses.push(err.status);
          body ??= JSON.parse(err.message);
        }
      }
      assert.ok(statuses.includes(429), `4 calls at once under ${rpm} rpm: ${statuses}`);
      assert.equal(body?.error.status, 'RESOURCE_EXHAUSTED');
      const retry = body?.error.details.find((d) => d['@type'].endsWith('google.rpc.RetryInfo'));
      assert.match(retry?.retryDelay ?? '', /^\d+(\.\d+)?s$/);
      const refusals =
        answers.filter((a) => a.status === 429).length + statuses.filter((c) => c === 429).length;
      assert.equal(syncLog(data).filter((l) => l.status === 429).length, refusals);
    } finally {
      await serve.stop();
    }
  });

  it('rate limits refill at the limit per minute and hold one second of it (a fake clock)', () => {
    let now = 0;
    const limits = createRateLimits({ rpm: 600, tpm: 6000 }, () => now);
    // One second of each: 10 requests, 100 tokens. Tokens bind first at 30 a request.
    const admitted = () => {
      let n = 0;
      while (limits.admit(30).ok) n++;
      return n;
    };
    assert.equal(admitted(), Math.floor(6000 / 60 / 30));
    now += 3000; // 3 s later the buckets are full again (no more than one second's worth)
    assert.equal(admitted(), Math.floor(6000 / 60 / 30));
    const refused = limits.admit(30);
    assert.equal(refused.ok, false);
    assert.equal(!refused.ok && refused.limit, 'tokens');
  });
});

describe('the direct pacer', () => {
  it('reads OpenAI reset durations', () => {
    assert.equal(parseResetMs('1s'), 1000);
    assert.equal(parseResetMs('6m0s'), 360_000);
    assert.equal(parseResetMs('120ms'), 120);
    assert.equal(parseResetMs('1h2m3.5s'), 3_723_500);
    assert.equal(parseResetMs('soon'), undefined);
  });

  it("learns Anthropic's limit, and holds until its reset (an RFC 3339 time) when nothing remains", async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const pacer = new RatePacer({}, () => now);
    pacer.learn(
      new Headers({
        'anthropic-ratelimit-requests-limit': '50',
        'anthropic-ratelimit-tokens-limit': '40000',
        'anthropic-ratelimit-tokens-remaining': '0',
        'anthropic-ratelimit-tokens-reset': '2026-01-01T00:00:00.500Z',
      }),
    );
    assert.deepEqual(pacer.limits, { rpm: 50, tpm: 40000 });
    // Held for the reset: a take waits until the clock passes it.
    let taken = false;
    const take = pacer.take(0).then(() => {
      taken = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(taken, false);
    now += 500;
    await take;
    assert.equal(taken, true);
  });

  it("finds the pace from 429s when the API tells no limit: the last second's successes, cut by a fifth at most once a second, raised by successes", () => {
    let now = 0;
    const pacer = new RatePacer({}, () => now);
    for (let i = 0; i < 20; i++) pacer.noteStatus(200);
    assert.equal(pacer.limits.rpm, undefined, 'no pace before a refusal');
    now += 500;
    pacer.noteStatus(429);
    assert.equal(pacer.limits.rpm, 20 * 60);
    pacer.noteStatus(429); // the same burst
    assert.equal(pacer.limits.rpm, 20 * 60);
    now += 1000;
    pacer.noteStatus(429);
    assert.equal(pacer.limits.rpm, 20 * 60 * 0.8);
    pacer.noteStatus(200);
    assert.equal(pacer.limits.rpm, 20 * 60 * 0.8 + 3);
    // A limit the headers tell is not second-guessed by refusals.
    const told = new RatePacer({}, () => now);
    told.learn(new Headers({ 'x-ratelimit-limit-requests': '600' }));
    told.noteStatus(429);
    assert.equal(told.limits.rpm, 600);
  });

  it('learns the limit from the headers, the lower of it and the flag', () => {
    const pacer = new RatePacer({ rpm: 1000 });
    pacer.learn(new Headers({ 'x-ratelimit-limit-requests': '600', 'x-ratelimit-limit-tokens': '5000' }));
    assert.deepEqual(pacer.limits, { rpm: 600, tpm: 5000 });
    pacer.learn(new Headers({ 'x-ratelimit-limit-requests': '5000' }));
    assert.equal(pacer.limits.rpm, 1000);
  });
});

describe('run --mode direct', () => {
  it('gives the same result columns as the batch path on the BA reviews', async () => {
    const data = tempDir();
    const serve = await spawnServe(['--data', data]);
    try {
      const dir = tempDir();
      const batch = await runCli(
        [
          ...baReviewsRunArgs(path.join(dir, 'batch.db'), serve.url, '--poll-interval', '0.2'),
          '--format',
          'csv',
        ],
        { env },
      );
      assert.equal(batch.code, 0, batch.stderr);
      const direct = await runCli(
        [
          ...baReviewsRunArgs(
            path.join(dir, 'direct.db'),
            serve.url,
            '--mode',
            'direct',
            '--concurrency',
            '32',
          ),
          '--format',
          'csv',
        ],
        { env },
      );
      assert.equal(direct.code, 0, direct.stderr);
      const columns = (csv: string) =>
        (parse(csv, { columns: true }) as Record<string, string>[]).map((r) => [
          r.ReviewID,
          r.result,
          r.result_status,
          r.result_error,
        ]);
      const a = columns(batch.stdout);
      assert.ok(a.length > 3000, `${a.length} rows`);
      assert.ok(a.every((r) => r[2] === 'succeeded'));
      assert.deepEqual(columns(direct.stdout), a);
      // Every request went as one synchronous call, and none as a batch line of the direct run.
      const calls = syncLog(data);
      assert.equal(calls.length, a.length);
      assert.equal(new Set(calls.map((c) => c.client_id)).size, a.length);

      // Money as sent: the batch run's rows at batch prices, the direct run's at synchronous ones.
      const spent = async (db: string) => {
        const status = await runCli(['status', '--ledger', path.join(dir, db), '--json'], {});
        assert.equal(status.code, 0, status.stderr);
        return (JSON.parse(status.stdout) as { cost: { spent: Record<string, number> } }).cost.spent;
      };
      const batchSpent = await spent('batch.db');
      const directSpent = await spent('direct.db');
      assert.ok(batchSpent.batch_micro_usd! > 0);
      assert.ok(batchSpent.batch_micro_usd! < batchSpent.sync_micro_usd!, 'a batch costs less');
      assert.equal(
        directSpent.batch_micro_usd,
        directSpent.sync_micro_usd,
        'direct rows cost their sync price',
      );
      assert.equal(
        directSpent.sync_micro_usd,
        batchSpent.sync_micro_usd,
        'the same answers, the same tokens',
      );
    } finally {
      await serve.stop();
    }
  });

  const SAME_AS_BATCH = [
    { name: 'anthropic', ...PROVIDER_RUNS.anthropic },
    { name: 'gemini', ...PROVIDER_RUNS.gemini },
    {
      name: 'gemini embedContent',
      flags: [
        '--provider',
        'gemini',
        '--model',
        'gemini-embedding-001',
        '--endpoint',
        '/v1beta/embedContent',
      ],
      env: PROVIDER_RUNS.gemini.env,
    },
  ];
  for (const { name, flags, env: keys } of SAME_AS_BATCH) {
    it(`${name}: the same result columns as the batch path (ids the API would refuse too), direct rows at synchronous prices`, async () => {
      const data = tempDir();
      const serve = await spawnServe(['--data', data]);
      try {
        const dir = tempDir();
        const input = oddIdsCsv(dir, 60);
        const run = (db: string, ...extra: string[]) =>
          runCli(
            [
              'run',
              input,
              '--ledger',
              path.join(dir, db),
              '--base-url',
              serve.url,
              ...flags,
              '--id-column',
              'id',
              '--prompt',
              '{{text}}',
              '--format',
              'csv',
              ...extra,
            ],
            { env: keys },
          );
        const batch = await run('batch.db', '--poll-interval', '0.2');
        assert.equal(batch.code, 0, batch.stderr);
        assert.equal(syncLog(data).length, 0, 'the batch path makes no synchronous call');
        const direct = await run('direct.db', '--mode', 'direct', '--concurrency', '16');
        assert.equal(direct.code, 0, direct.stderr);
        const columns = (csv: string) =>
          (parse(csv, { columns: true }) as Record<string, string>[]).map((r) => [
            r.id,
            r.result,
            r.result_status,
            r.result_error,
          ]);
        const a = columns(batch.stdout);
        assert.equal(a.length, 60);
        assert.ok(
          a.every((r) => r[2] === 'succeeded' && r[1] !== ''),
          batch.stdout.slice(0, 2000),
        );
        assert.deepEqual(columns(direct.stdout), a);
        const calls = syncLog(data);
        assert.equal(calls.length, 60);
        assert.ok(calls.every((c) => c.status === 200));

        const spent = async (db: string) => {
          const status = await runCli(['status', '--ledger', path.join(dir, db), '--json'], {});
          assert.equal(status.code, 0, status.stderr);
          return (JSON.parse(status.stdout) as { cost: { spent: Record<string, number> } }).cost.spent;
        };
        const batchSpent = await spent('batch.db');
        const directSpent = await spent('direct.db');
        if (!name.includes('embed')) {
          // Gemini's embedContent answers report no tokens: nothing to price either way.
          assert.ok(batchSpent.batch_micro_usd! > 0, JSON.stringify(batchSpent));
          assert.ok(batchSpent.batch_micro_usd! < batchSpent.sync_micro_usd!, 'a batch costs less');
        }
        assert.equal(
          directSpent.batch_micro_usd,
          directSpent.sync_micro_usd,
          'direct rows cost their sync price',
        );
        assert.equal(
          directSpent.sync_micro_usd,
          batchSpent.sync_micro_usd,
          'the same answers, the same tokens',
        );
      } finally {
        await serve.stop();
      }
    });
  }

  for (const provider of ['anthropic', 'gemini'] as const) {
    it(`${provider}: the 429s of serve --rpm are waited out, and no request fails`, async () => {
      const data = tempDir();
      // 20 a second: a first burst of 32 calls is refused in part.
      const serve = await spawnServe(['--data', data, '--rpm', '1200']);
      try {
        const dir = tempDir();
        const run = await runCli(
          [
            'run',
            rowsCsv(dir, 60),
            '--ledger',
            path.join(dir, 'l.db'),
            '--base-url',
            serve.url,
            ...PROVIDER_RUNS[provider].flags,
            '--id-column',
            'id',
            '--prompt',
            '{{text}}',
            '--mode',
            'direct',
            '--concurrency',
            '32',
            '--format',
            'jsonl',
            // One attempt: the calls' own waits must carry every request (the ledger's would hide them).
            '--max-attempts',
            '1',
          ],
          { env: PROVIDER_RUNS[provider].env },
        );
        assert.equal(run.code, 0, run.stderr);
        const rows = run.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { status: string });
        assert.equal(rows.length, 60);
        assert.ok(rows.every((r) => r.status === 'succeeded'));
        const calls = syncLog(data);
        assert.ok(
          calls.some((c) => c.status === 429),
          'the burst was refused in part',
        );
        assert.ok(calls.every((c) => c.status === 200 || c.status === 429));
        const ok = calls.filter((c) => c.status === 200);
        assert.equal(ok.length, 60);
        assert.equal(new Set(ok.map((c) => c.client_id)).size, 60);
      } finally {
        await serve.stop();
      }
    });
  }

  it('under serve --rpm 3000 stays within the limit with few 429s, and every request succeeds', async () => {
    const data = tempDir();
    const rpm = 3000;
    const requests = 300;
    const serve = await spawnServe(['--data', data, '--rpm', String(rpm)]);
    try {
      const dir = tempDir();
      const input = rowsCsv(dir, requests);
      const run = await runCli(
        [
          'run',
          input,
          '--ledger',
          path.join(dir, 'l.db'),
          '--base-url',
          serve.url,
          '--model',
          'gpt-4o-mini',
          '--id-column',
          'id',
          '--prompt',
          '{{text}}',
          '--mode',
          'direct',
          '--concurrency',
          '32',
        ],
        { env },
      );
      assert.equal(run.code, 0, run.stderr);
      const calls = syncLog(data);
      const ok = calls.filter((c) => c.status === 200);
      assert.equal(ok.length, requests);
      const limited = calls.filter((c) => c.status === 429).length;
      assert.ok(limited <= requests * 0.05, `${limited} 429s for ${requests} requests`);
      // The steady rate, by the server's clock: within 10% of the limit, never above it. The first
      // second is left out: the server's bucket starts full with a second of the limit, as OpenAI's does.
      const start = Math.min(...ok.map((c) => c.at)) + 1000;
      const steady = ok.filter((c) => c.at >= start);
      const last = Math.max(...steady.map((c) => c.at));
      const perMinute = ((steady.length - 1) / (last - Math.min(...steady.map((c) => c.at)))) * 60_000;
      assert.ok(perMinute <= rpm * 1.05, `${perMinute.toFixed(0)} requests/min against a limit of ${rpm}`);
      assert.ok(perMinute >= rpm * 0.9, `${perMinute.toFixed(0)} requests/min against a limit of ${rpm}`);
    } finally {
      await serve.stop();
    }
  });

  // Anthropic's --fail-rate answers are 500 api_error and 529 overloaded_error.
  for (const provider of ['openai', 'anthropic'] as const) {
    it(`${provider}: retries 429, 5xx and 529 answers (serve --fail-rate) until every request succeeds`, async () => {
      const data = tempDir();
      // 0.1: one of 200 requests fails all 5 of its tries about one run in 500 (at 0.3 with 80, one in six),
      // while ~22 calls fail.
      const serve = await spawnServe(['--data', data, '--fail-rate', '0.1', '--seed', '3']);
      try {
        const dir = tempDir();
        const input = rowsCsv(dir, 200);
        const run = await runCli(
          [
            'run',
            input,
            '--ledger',
            path.join(dir, 'l.db'),
            '--base-url',
            serve.url,
            ...PROVIDER_RUNS[provider].flags,
            '--id-column',
            'id',
            '--prompt',
            '{{text}}',
            '--mode',
            'direct',
            '--format',
            'jsonl',
            // One attempt: the calls' own retries must carry every request (the ledger's would hide them).
            '--max-attempts',
            '1',
            '--log-format',
            'json',
          ],
          { env: PROVIDER_RUNS[provider].env },
        );
        assert.equal(run.code, 0, run.stderr);
        const rows = run.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { status: string });
        assert.equal(rows.length, 200);
        assert.ok(rows.every((r) => r.status === 'succeeded'));
        const calls = syncLog(data);
        assert.ok(calls.filter((c) => c.status !== 200).length > 5, 'the fail rate failed some calls');
        assert.equal(calls.filter((c) => c.status === 200).length, 200);
        // Rate limits and server errors are counted apart, each as the server answered them.
        const finished = run.stderr
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((e) => e.type === 'direct.finished');
        assert.deepEqual(
          [finished?.rateLimited, finished?.serverErrors, finished?.capacityRefused],
          [calls.filter((c) => c.status === 429).length, calls.filter((c) => c.status >= 500).length, 0],
        );
      } finally {
        await serve.stop();
      }
    });
  }

  for (const provider of PROVIDER_NAMES) {
    it(`${provider}: killed with SIGKILL mid-run, run again: every request final, none sent after it succeeded`, async () => {
      const { flags, env } = PROVIDER_RUNS[provider];
      const data = tempDir();
      const serve = await spawnServe(['--data', data, '--latency', '40']);
      try {
        const dir = tempDir();
        const input = rowsCsv(dir, 400);
        const ledger = path.join(dir, 'l.db');
        const args = [
          'run',
          input,
          '--ledger',
          ledger,
          '--base-url',
          serve.url,
          ...flags,
          '--id-column',
          'id',
          '--prompt',
          '{{text}}',
          '--mode',
          'direct',
          '--concurrency',
          '8',
          '--format',
          'jsonl',
        ];
        const first = spawnCli(args, { env });
        await waitFor('a third of the calls answered', () => syncLog(data).length >= 130, 60_000);
        first.child.kill('SIGKILL');
        const killed = await first.exited;
        assert.equal(killed.signal, 'SIGKILL');
        const beforeResume = syncLog(data).length;
        assert.ok(beforeResume < 400, 'the kill landed before the run ended');
        const atKill = new Database(ledger, { readonly: true });
        const recordedAtKill = atKill
          .prepare<[], number>("SELECT count(*) FROM requests WHERE state = 'succeeded'")
          .pluck()
          .get()!;
        atKill.close();

        const again = await runCli(args, { env });
        assert.equal(again.code, 0, again.stderr);
        const rows = again.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { custom_id: string; status: string });
        assert.equal(rows.length, 400);
        assert.ok(
          rows.every((r) => r.status === 'succeeded'),
          again.stdout.slice(0, 3000),
        );

        // From the server's log: no request was sent after a call of it had succeeded, except those
        // the killed run had in flight (answered by the server, never recorded by the client).
        const calls = syncLog(data);
        const succeededAt = new Map<string, number>();
        const sentAfterSuccess = new Set<string>();
        for (const c of calls) {
          const id = c.client_id!;
          if (succeededAt.has(id)) sentAfterSuccess.add(id);
          else if (c.status === 200) succeededAt.set(id, c.at);
        }
        assert.equal(succeededAt.size, 400);
        const db = new Database(ledger, { readonly: true });
        const resent = db
          .prepare('SELECT custom_id FROM requests WHERE direct_resent > 0')
          .pluck()
          .all() as string[];
        const states = db.prepare('SELECT state, count(*) AS n FROM requests GROUP BY state').all();
        db.close();
        assert.deepEqual(states, [{ state: 'succeeded', n: 400 }]);
        // Sent again only if the killed run had it in flight: answered by the server but not yet recorded,
        // or sent and not yet answered (at most --concurrency); each such one counted as resent.
        assert.ok(sentAfterSuccess.size > 0 || resent.length > 0, 'the kill left calls in flight');
        const inFlightAtKill = beforeResume - recordedAtKill + 8;
        assert.ok(
          resent.length <= inFlightAtKill,
          `${resent.length} resent, ${inFlightAtKill} in flight at most`,
        );
        for (const id of sentAfterSuccess) assert.ok(resent.includes(id), `${id} was sent again uncounted`);
        assert.match(again.stderr, /in flight when the last run stopped/);
      } finally {
        await serve.stop();
      }
    });
  }

  it('sends every staged request once from a file whose lines are not in seq order', async () => {
    const data = tempDir();
    const serve = await spawnServe(['--data', data]);
    try {
      const dir = tempDir();
      const ledger = path.join(dir, 'l.db');
      const rows = 20;
      const args = ['--model', 'gpt-4o-mini', '--id-column', 'id', '--prompt', '{{text}}'];
      const prepared = await runCli(['prepare', rowsCsv(dir, rows), '--ledger', ledger, ...args], { env });
      assert.equal(prepared.code, 0, prepared.stderr);
      // The pass walks a file's lines beside its staged requests in seq order; lines in another order
      // must still all be sent (the walk's leftovers go in a second pass), and none twice.
      const requests = path.join(dir, 'l.requests');
      const [name] = readdirSync(requests);
      const file = path.join(requests, name!);
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
      writeFileSync(file, `${lines.reverse().join('\n')}\n`);
      const run = await runCli(
        [
          'run',
          '--ledger',
          ledger,
          '--base-url',
          serve.url,
          '--mode',
          'direct',
          '--format',
          'jsonl',
          '--log-format',
          'json',
        ],
        { env },
      );
      assert.equal(run.code, 0, run.stderr);
      // In one pass over the file (a walk that only matched in order would need one pass a request).
      const started = run.stderr.split('\n').filter((l) => l.includes('"type":"direct.started"'));
      assert.equal(started.length, 1, run.stderr);
      const results = run.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { status: string });
      assert.equal(results.length, rows);
      assert.ok(results.every((r) => r.status === 'succeeded'));
      const calls = syncLog(data);
      assert.equal(calls.length, rows);
      assert.equal(new Set(calls.map((c) => c.client_id)).size, rows);
    } finally {
      await serve.stop();
    }
  });

  it('flags of the direct path without --mode direct are a usage error', async () => {
    const dir = tempDir();
    const run = await runCli(
      [
        'run',
        rowsCsv(dir, 2),
        '--ledger',
        path.join(dir, 'l.db'),
        '--backend',
        'local',
        '--model',
        'gpt-4o-mini',
        '--prompt',
        '{{text}}',
        '--rpm',
        '100',
      ],
      {},
    );
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /--rpm is for --mode direct/);
  });

  it("flex is OpenAI's tier: --service-tier flex or --hedge flex with --provider anthropic or gemini is a usage error, before any work", async () => {
    const dir = tempDir();
    const input = rowsCsv(dir, 2);
    for (const [provider, flags] of [
      ['gemini', ['--mode', 'direct', '--service-tier', 'flex']],
      ['anthropic', ['--deadline', '1h', '--hedge', 'flex']],
    ] as const) {
      const ledger = path.join(dir, `${provider}.db`);
      const run = await runCli(
        [
          'run',
          input,
          '--ledger',
          ledger,
          ...PROVIDER_RUNS[provider].flags,
          '--prompt',
          '{{text}}',
          ...flags,
        ],
        { env: PROVIDER_RUNS[provider].env },
      );
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, new RegExp(`BP_USAGE .*flex.*--provider ${provider} has no flex tier`));
      assert.equal(existsSync(ledger), false, 'nothing was prepared');
    }
  });

  it('hedging within --max-usd: when the unanswered rows would cost more on the hedge path than the budget leaves, the batches are left to finish', async () => {
    const data = tempDir();
    const serve = await spawnServe(['--data', data, '--stall', 'finalizing=20']);
    try {
      const dir = tempDir();
      const ledger = path.join(dir, 'l.db');
      const rows = 240;
      const input = rowsCsv(dir, rows);
      const template = ['--model', 'gpt-4o-mini', '--id-column', 'id', '--prompt', '{{text}}'];
      const estimate = await runCli(
        ['estimate', input, ...template, '--expect-output-tokens', '5', '--json'],
        {},
      );
      assert.equal(estimate.code, 0, estimate.stderr);
      const total = (JSON.parse(estimate.stdout) as { total: Record<string, number> }).total;
      // Enough for the batches, not for every row synchronously.
      const budget = Math.floor((total.batch_micro_usd! + total.sync_micro_usd!) / 2);
      assert.ok(total.batch_micro_usd! < budget && budget < total.sync_micro_usd!, JSON.stringify(total));
      const run = await runCli(
        [
          'run',
          input,
          '--ledger',
          ledger,
          '--base-url',
          serve.url,
          ...template,
          '--max-lines',
          '100',
          '--poll-interval',
          '0.5',
          '--deadline',
          '10s',
          '--hedge',
          'direct',
          '--max-usd',
          (budget / 1e6).toFixed(6),
          '--expect-output-tokens',
          '5',
          '--format',
          'jsonl',
          '--log-format',
          'json',
        ],
        { env },
      );
      assert.equal(run.code, 0, run.stderr);
      const results = run.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { status: string });
      assert.equal(results.length, rows);
      assert.ok(results.every((r) => r.status === 'succeeded'));
      const hedges = run.stderr
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((e) => e.type === 'hedge.decided');
      assert.deepEqual(
        hedges.map((e) => e.action),
        ['hold'],
        JSON.stringify(hedges),
      );
      assert.match(String(hedges[0]!.reason), /over --max-usd/);
      assert.equal(syncLog(data).length, 0, 'no row went the direct path');
    } finally {
      await serve.stop();
    }
  });

  it('hedging: serve --stall finalizing=3600, run --deadline 60s --hedge direct answers every row within the deadline, the hedged rows priced', async () => {
    const data = tempDir();
    const serve = await spawnServe(['--data', data, '--stall', 'finalizing=3600']);
    try {
      const dir = tempDir();
      const ledger = path.join(dir, 'l.db');
      const rows = 240;
      const started = Date.now();
      const run = await runCli(
        [
          'run',
          rowsCsv(dir, rows),
          '--ledger',
          ledger,
          '--base-url',
          serve.url,
          '--model',
          'gpt-4o-mini',
          '--id-column',
          'id',
          '--prompt',
          '{{text}}',
          '--max-lines',
          '100',
          '--poll-interval',
          '0.5',
          '--deadline',
          '60s',
          '--hedge',
          'direct',
          '--format',
          'jsonl',
          '--log-format',
          'json',
        ],
        { env },
      );
      const took = Date.now() - started;
      assert.equal(run.code, 0, run.stderr);
      assert.ok(took < 60_000, `took ${took} ms`);
      const results = run.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { status: string });
      assert.equal(results.length, rows);
      assert.ok(results.every((r) => r.status === 'succeeded'));
      const events = run.stderr
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const hedges = events.filter((e) => e.type === 'hedge.decided');
      // Stalled in finalizing, or no answers at the rate the deadline needs: either reason hedges.
      assert.ok(
        hedges.some(
          (e) => e.action === 'cancel' && /finalizing with no progress|deadline is/.test(String(e.reason)),
        ),
        JSON.stringify(hedges),
      );
      // finalizing cannot be cancelled: the batches are taken over after the grace.
      assert.ok(
        hedges.some((e) => e.action === 'take_over'),
        JSON.stringify(hedges),
      );
      // Every row went direct (the batches sat in finalizing), each logged by the server once.
      const calls = syncLog(data).filter((c) => c.status === 200);
      assert.equal(new Set(calls.map((c) => c.client_id)).size, rows);
      const status = await runCli(['status', '--ledger', ledger, '--json'], {});
      const paths = (
        JSON.parse(status.stdout) as {
          paths: {
            path: string;
            requests: number;
            usd: number | null;
            input_tokens: number;
            output_tokens: number;
          }[];
        }
      ).paths;
      const direct = paths.find((p) => p.path === 'direct');
      assert.equal(direct?.requests, rows);
      // Priced at gpt-4o-mini's synchronous rates from the price table (0.15 / 0.60 per 1M tokens).
      const { estimateCost } = await import('../src/cost/prices.js');
      const expected = estimateCost({
        model: 'gpt-4o-mini',
        inputTokens: direct!.input_tokens,
        outputTokens: direct!.output_tokens,
        path: 'sync',
      }).usd;
      assert.ok(direct!.usd !== null && direct!.usd > 0);
      assert.equal(direct!.usd, expected);
    } finally {
      await serve.stop();
    }
  });

  for (const provider of ['anthropic', 'gemini'] as const) {
    it(`${provider}: run --deadline 20s --hedge direct against stalled batches answers every row direct, priced at the standard price`, async () => {
      const data = tempDir();
      const serve = await spawnServe(['--data', data, '--stall', 'finalizing=3600']);
      try {
        const dir = tempDir();
        const ledger = path.join(dir, 'l.db');
        const rows = 120;
        const run = await runCli(
          [
            'run',
            rowsCsv(dir, rows),
            '--ledger',
            ledger,
            '--base-url',
            serve.url,
            ...PROVIDER_RUNS[provider].flags,
            '--id-column',
            'id',
            '--prompt',
            '{{text}}',
            '--max-lines',
            '60',
            '--poll-interval',
            '0.3',
            '--deadline',
            '20s',
            '--hedge',
            'direct',
            '--format',
            'jsonl',
            '--log-format',
            'json',
          ],
          { env: PROVIDER_RUNS[provider].env },
        );
        assert.equal(run.code, 0, run.stderr);
        const results = run.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { status: string });
        assert.equal(results.length, rows);
        assert.ok(results.every((r) => r.status === 'succeeded'));
        const hedges = run.stderr
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter((e) => e.type === 'hedge.decided');
        assert.ok(
          hedges.some((e) => e.action === 'cancel'),
          JSON.stringify(hedges),
        );
        const calls = syncLog(data).filter((c) => c.status === 200);
        assert.equal(calls.length, rows);
        assert.equal(new Set(calls.map((c) => c.client_id)).size, rows);
        const status = await runCli(['status', '--ledger', ledger, '--json'], {});
        type Paths = {
          paths: {
            path: string;
            model: string;
            requests: number;
            usd: number | null;
            input_tokens: number;
            output_tokens: number;
          }[];
        };
        const [direct] = (JSON.parse(status.stdout) as Paths).paths;
        assert.equal(direct?.path, 'direct');
        assert.equal(direct.requests, rows);
        const { estimateCost } = await import('../src/cost/prices.js');
        const tokens = {
          model: direct.model,
          inputTokens: direct.input_tokens,
          outputTokens: direct.output_tokens,
        };
        assert.ok(direct.usd !== null && direct.usd > 0);
        assert.equal(direct.usd, estimateCost({ ...tokens, path: 'sync' }).usd);
        assert.ok(direct.usd > estimateCost({ ...tokens, path: 'batch' }).usd, 'dearer than the batch price');
      } finally {
        await serve.stop();
      }
    });
  }

  it('--service-tier flex against serve --flex-unavailable 0.3: every row answered at flex rates, the refusals counted apart', async () => {
    const data = tempDir();
    const serve = await spawnServe(['--data', data, '--flex-unavailable', '0.3', '--seed', '5']);
    const rows = 60;
    try {
      const dir = tempDir();
      const ledger = path.join(dir, 'l.db');
      const run = await runCli(
        [
          'run',
          rowsCsv(dir, rows),
          '--ledger',
          ledger,
          '--base-url',
          serve.url,
          '--model',
          'gpt-5.4',
          '--id-column',
          'id',
          '--prompt',
          '{{text}}',
          '--mode',
          'direct',
          '--service-tier',
          'flex',
          '--log-format',
          'json',
        ],
        { env },
      );
      assert.equal(run.code, 0, run.stderr);
      const calls = syncLog(data);
      assert.ok(calls.every((c) => c.service_tier === 'flex'));
      assert.equal(calls.filter((c) => c.status === 200).length, rows);
      const refused = calls.filter((c) => c.status === 429).length;
      assert.ok(refused > 5, `${refused} flex calls refused of ${calls.length}`);
      assert.equal(calls.length, rows + refused);
      // The run's summary tells the capacity refusals from rate limits and faults.
      const events = run.stderr
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const finished = events.find((e) => e.type === 'direct.finished');
      // A request refused all 8 of its tries (0.3^8: rare) is answered again in the next pass.
      assert.ok(Number(finished?.answered) >= rows, JSON.stringify(finished));
      assert.deepEqual(
        [finished?.succeeded, finished?.capacityRefused, finished?.rateLimited, finished?.serverErrors],
        [rows, refused, 0, 0],
      );
      const status = await runCli(['status', '--ledger', ledger, '--json'], {});
      type Paths = {
        paths: {
          path: string;
          requests: number;
          usd: number | null;
          input_tokens: number;
          output_tokens: number;
        }[];
      };
      const [flex] = (JSON.parse(status.stdout) as Paths).paths;
      assert.equal(flex?.path, 'flex');
      assert.equal(flex.requests, rows);
      const { estimateCost } = await import('../src/cost/prices.js');
      const tokens = { model: 'gpt-5.4', inputTokens: flex.input_tokens, outputTokens: flex.output_tokens };
      assert.equal(flex.usd, estimateCost({ ...tokens, path: 'flex' }).usd);
      assert.ok(flex.usd! < estimateCost({ ...tokens, path: 'sync' }).usd);
    } finally {
      await serve.stop();
    }
  });
});

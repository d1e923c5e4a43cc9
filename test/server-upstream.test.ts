import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import {
  chatLine,
  countIds,
  createChatBatch,
  downloadLines,
  waitForBatch,
  withServer,
} from './server-support.js';

/** What the fake upstream saw and sent, per prompt. */
interface UpstreamLog {
  attempts: Map<string, number[]>;
  sent: Map<string, { status: number; body: unknown; requestId: string }>;
  auth: Set<string>;
  maxInFlight: number;
}

/**
 * A tiny OpenAI-compatible chat server on 127.0.0.1 (a fake model, not a mock of the SDK). The prompt
 * picks the behaviour: `flaky` → one 429 then 200; `down` → always 503; `bad` → 400; `slow-retry` →
 * a 429 asking for `Retry-After: 1`, then 200; anything else → 200 after 30 ms.
 */
async function startFakeUpstream(): Promise<{ server: Server; base: string; log: UpstreamLog }> {
  const log: UpstreamLog = { attempts: new Map(), sent: new Map(), auth: new Set(), maxInFlight: 0 };
  let inFlight = 0;
  let counter = 0;
  const readBody = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  };
  const server = createServer(async (req, res) => {
    inFlight++;
    log.maxInFlight = Math.max(log.maxInFlight, inFlight);
    log.auth.add(req.headers.authorization ?? '');
    const body = await readBody(req);
    const prompt: string = body.messages[0].content;
    const times = log.attempts.get(prompt) ?? [];
    times.push(Date.now());
    log.attempts.set(prompt, times);
    await new Promise((r) => setTimeout(r, 30));
    const requestId = `up-req-${++counter}`;
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      log.sent.set(prompt, { status, body: payload, requestId });
      inFlight--;
      res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': requestId, ...headers });
      res.end(JSON.stringify(payload));
    };
    const error = (message: string, type: string, code: string | null) => ({
      error: { message, type, param: null, code },
    });
    if (req.url !== '/v1/chat/completions')
      return send(404, error(`no route ${req.url}`, 'invalid_request_error', null));
    if (prompt === 'flaky' && times.length === 1)
      return send(429, error('slow down', 'requests', 'rate_limit_exceeded'), { 'retry-after': '0' });
    if (prompt === 'slow-retry' && times.length === 1)
      return send(429, error('wait a second', 'requests', 'rate_limit_exceeded'), { 'retry-after': '1' });
    if (prompt === 'down')
      return send(503, error('upstream overloaded', 'server_error', null), { 'retry-after': '0' });
    if (prompt === 'bad')
      return send(400, error('bad request from upstream', 'invalid_request_error', 'upstream_code'));
    return send(200, {
      id: `chatcmpl-up-${counter}`,
      object: 'chat.completion',
      created: 1_700_000_000,
      model: body.model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: `upstream says: ${prompt}`, refusal: null },
          finish_reason: 'stop',
          logprobs: null,
        },
      ],
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, base: `http://127.0.0.1:${port}/v1`, log };
}

test('--upstream forwards each request with bounded concurrency, retries 429/5xx honouring Retry-After, records answers as given', async () => {
  const upstream = await startFakeUpstream();
  try {
    await withServer(
      { upstream: upstream.base, upstreamApiKey: 'up-key', concurrency: 2 },
      async ({ client }, dir) => {
        const prompts = [
          'hello 1',
          'hello 2',
          'hello 3',
          'hello 4',
          'hello 5',
          'flaky',
          'down',
          'bad',
          'slow-retry',
        ];
        const lines = prompts.map((p, i) => chatLine(`u${i}`, p));
        const batch = await createChatBatch(client, dir, lines);
        const done = await waitForBatch(client, batch.id);
        assert.equal(done.status, 'completed');
        const out = await downloadLines(client, done.output_file_id);
        const errors = await downloadLines(client, done.error_file_id);
        assert.ok([...countIds([...out, ...errors]).values()].every((n) => n === 1));
        const byPrompt = (p: string) =>
          [...out, ...errors].find((l) => l.custom_id === `u${prompts.indexOf(p)}`);

        for (const p of ['hello 1', 'hello 5', 'flaky', 'slow-retry']) {
          const line = byPrompt(p);
          const sent = upstream.log.sent.get(p);
          assert.ok(line && out.includes(line), `${p} is in the output file`);
          assert.equal(line.response?.status_code, 200);
          assert.deepEqual(line.response?.body, sent?.body, 'the upstream body, exactly');
          assert.equal(line.response?.request_id, sent?.requestId, "the upstream's x-request-id");
        }
        for (const p of ['down', 'bad']) {
          const line = byPrompt(p);
          const sent = upstream.log.sent.get(p);
          assert.ok(line && errors.includes(line), `${p} is in the error file`);
          assert.equal(line.response?.status_code, sent?.status);
          assert.deepEqual(line.response?.body, sent?.body);
        }
        assert.equal(upstream.log.attempts.get('flaky')?.length, 2, 'a 429 is retried');
        assert.equal(
          upstream.log.attempts.get('down')?.length,
          5,
          'a 5xx is retried until the tries run out',
        );
        assert.equal(upstream.log.attempts.get('bad')?.length, 1, 'a 400 is not retried');
        const [first, second] = upstream.log.attempts.get('slow-retry') ?? [];
        assert.ok(
          (second as number) - (first as number) >= 950,
          `Retry-After: 1 is honoured (${(second as number) - (first as number)} ms)`,
        );
        assert.equal(upstream.log.maxInFlight, 2, 'at most --concurrency requests at once, and it is used');
        assert.deepEqual([...upstream.log.auth], ['Bearer up-key']);
        assert.deepEqual(done.request_counts, { total: 9, completed: 7, failed: 2 });
        assert.equal(done.usage?.input_tokens, 7 * 7);
        assert.equal(done.usage?.output_tokens, 3 * 7);
      },
    );
  } finally {
    await new Promise((r) => upstream.server.close(r));
  }
});

test('an unreachable upstream ends as non-HTTP error lines, not a stuck batch', async () => {
  const upstream = await startFakeUpstream();
  const base = upstream.base;
  await new Promise((r) => upstream.server.close(r)); // Nothing listens there now.
  await withServer({ upstream: base }, async (server, dir) => {
    const batch = await createChatBatch(server.client, dir, [chatLine('x', 'hello')]);
    const done = await waitForBatch(server.client, batch.id, undefined, { timeoutMs: 15_000 });
    assert.equal(done.status, 'completed');
    const [line] = await downloadLines(server.client, done.error_file_id);
    assert.equal(line?.response, null);
    assert.equal(line?.error?.code, 'upstream_error');
  });
});

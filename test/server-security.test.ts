import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { chatLines, type TestServer, upload, withServer, writeJsonl } from './server-support.js';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One raw HTTP request: the path goes out exactly as given (no normalisation of `..`). */
function raw(
  server: TestServer,
  method: string,
  rawPath: string,
  options: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<RawResponse> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path: rawPath,
        headers: { authorization: 'Bearer test', ...options.headers },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Asserts an OpenAI-style error body `{ error: { message, type, param, code } }` with that status. */
function assertApiError(
  res: RawResponse,
  status: number,
): { message: string; type: string; param: string | null; code: string | null } {
  assert.equal(res.status, status, res.body);
  assert.match(String(res.headers['content-type']), /application\/json/);
  const { error } = JSON.parse(res.body);
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof error.message, 'string');
  return error;
}

const multipart = (boundary: string, parts: string[]) =>
  parts.map((p) => `--${boundary}\r\n${p}\r\n`).join('');
const filePart = (content: string, name = 'in.jsonl') =>
  `Content-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n${content}`;
const purposePart = 'Content-Disposition: form-data; name="purpose"\r\n\r\nbatch';

test('ids shaped like paths, and encoded dot-segments, get clean 404s and never touch the disk', () =>
  withServer({}, async (server) => {
    const paths = [
      '/v1/files/../../etc/passwd',
      '/v1/files/..%2F..%2Fetc%2Fpasswd',
      '/v1/files/%2e%2e/content',
      '/v1/files/%2e%2e%2f%2e%2e%2fstate.db/content',
      '/v1/files/..%2Fstate.db/content',
      '/v1/files/file-%2e%2e%2f%2e%2e%2fstate.db/content',
      '/v1/files/%ZZ',
      '/v1/batches/..%2F..%2Fetc',
      '/v1/batches/%2e%2e/cancel',
    ];
    for (const p of paths) {
      const res = await raw(server, p.endsWith('/cancel') ? 'POST' : 'GET', p);
      assert.ok(res.status === 404, `${p} → ${res.status}`);
      const error = assertApiError(res, 404);
      assert.ok(!res.body.includes('root:'), 'no file content leaks');
      assert.equal(error.type, 'invalid_request_error');
    }
    assertApiError(await raw(server, 'DELETE', '/v1/files/..%2F..%2Fstate.db'), 404);
    const created = await raw(server, 'POST', '/v1/batches', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        input_file_id: '../../etc/passwd',
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      }),
    });
    assert.equal(assertApiError(created, 404).param, 'input_file_id');
    assert.ok(readdirSync(server.dataDir).includes('state.db'), 'the state is untouched');
  }));

test('bad requests get OpenAI-style errors: auth, unknown routes, bad JSON, non-multipart and truncated uploads', () =>
  withServer({ maxUploadBytes: 4096 }, async (server, dir) => {
    const noAuth = await raw(server, 'GET', '/v1/files', { headers: { authorization: '' } });
    assertApiError(noAuth, 401);
    const unknown = assertApiError(await raw(server, 'GET', '/v1/nothing/here'), 404);
    assert.equal(unknown.message, 'Invalid URL (GET /v1/nothing/here)');
    assertApiError(await raw(server, 'PUT', '/v1/files'), 404);
    assertApiError(
      await raw(server, 'POST', '/v1/batches', {
        body: '{"input_file_id": ',
        headers: { 'content-type': 'application/json' },
      }),
      400,
    );
    assertApiError(
      await raw(server, 'POST', '/v1/batches', {
        body: '[1,2]',
        headers: { 'content-type': 'application/json' },
      }),
      400,
    );
    assertApiError(await raw(server, 'GET', '/v1/files?limit=0'), 400);
    assertApiError(await raw(server, 'GET', '/v1/files?order=sideways'), 400);

    // Not multipart at all.
    assertApiError(
      await raw(server, 'POST', '/v1/files', {
        body: '{"a":1}',
        headers: { 'content-type': 'application/json' },
      }),
      400,
    );
    // A complete HTTP body whose multipart form stops before its closing boundary.
    const boundary = 'b0undary';
    const truncated = `${multipart(boundary, [purposePart])}--${boundary}\r\n${filePart('{"custom_id":"a"}\n{"cus')}`;
    const cut = assertApiError(
      await raw(server, 'POST', '/v1/files', {
        body: truncated,
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      }),
      400,
    );
    assert.match(cut.message, /multipart|form/i);
    // A form without the file part, and one with a file over the size limit.
    const noFile = `${multipart(boundary, [purposePart])}--${boundary}--\r\n`;
    assert.equal(
      assertApiError(
        await raw(server, 'POST', '/v1/files', {
          body: noFile,
          headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
        }),
        400,
      ).param,
      'file',
    );
    const big = `${multipart(boundary, [purposePart, filePart(`${'{"x":1}\n'.repeat(1000)}`)])}--${boundary}--\r\n`;
    assert.equal(
      assertApiError(
        await raw(server, 'POST', '/v1/files', {
          body: big,
          headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
        }),
        400,
      ).code,
      'file_too_large',
    );
    // A client that promises more bytes than it sends and hangs up.
    await new Promise<void>((resolve, reject) => {
      const url = new URL(server.url);
      const socket = connect(Number(url.port), url.hostname, () => {
        const body = multipart(boundary, [purposePart, filePart('{"custom_id":"a"}\n')]);
        socket.write(
          `POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 100000\r\n\r\n${body}`,
        );
        setTimeout(() => socket.destroy(), 50);
      });
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 50));

    // The server is still up and clean: no file was recorded, no partial upload left behind.
    assert.deepEqual((await server.client.files.list()).data, []);
    assert.deepEqual(readdirSync(path.join(server.dataDir, 'uploads')), []);
    assert.deepEqual(readdirSync(path.join(server.dataDir, 'files')), []);
    const ok = await upload(server.client, writeJsonl(dir, 'after.jsonl', chatLines(2)));
    assert.equal(ok.purpose, 'batch');
  }));

/**
 * `batchpipe serve`'s limits and manners, through the real bin: the connection cap, the header and
 * request timeouts, one log line per cut request, the key from a file or the environment (never
 * printed), and the warning for a non-loopback address without a key.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import OpenAI from 'openai';
import { BIN, type ServeProcess, spawnServe, tempDir } from './support.js';

/** Waits until `check` holds, polling; fails after `ms`. */
async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `promise`, or a failure naming `what` after `ms`. */
async function within<T>(what: string, promise: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A raw connection to the server, recording what it answers and when it is closed. */
interface RawClient {
  socket: Socket;
  received: () => string;
  closed: Promise<number>;
}

/** Every raw connection opened, destroyed by {@link stop} whatever a test did. */
const opened: Socket[] = [];

async function rawClient(serve: ServeProcess): Promise<RawClient> {
  const url = new URL(serve.url);
  const started = Date.now();
  const socket = connect(Number(url.port), url.hostname);
  opened.push(socket);
  let received = '';
  socket.on('data', (d: Buffer) => {
    received += d.toString();
  });
  socket.on('error', () => {}); // a reset is one way of being refused
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, received: () => received, closed };
}

/** Closes the test's raw connections, then stops the server. */
async function stop(serve: ServeProcess): Promise<void> {
  for (const socket of opened.splice(0)) socket.destroy();
  await serve.stop();
}

/** The log lines of a server's stderr that match `pattern`. */
function lines(serve: ServeProcess, pattern: RegExp): string[] {
  return serve
    .stderr()
    .split('\n')
    .filter((l) => pattern.test(l));
}

const JSON_POST = (length: number) =>
  `POST /v1/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

test('serve --max-connections: a connection beyond the cap is closed at once (logged once), and the server serves again when one is free', async () => {
  const serve = await spawnServe(['--data', tempDir(), '--max-connections', '2']);
  try {
    const held = [await rawClient(serve), await rawClient(serve)];
    // Both accepted: each still open after the third is refused.
    const extra = await rawClient(serve);
    const refusedAfter = await within('the refusal', extra.closed);
    assert.ok(refusedAfter < 2000, `refused at once (${refusedAfter} ms)`);
    assert.equal(extra.received(), '', 'closed without an answer');
    const more = await rawClient(serve);
    await within('the second refusal', more.closed);
    assert.ok(held.every((c) => !c.socket.destroyed));
    for (const c of held) c.socket.destroy();
    await Promise.all(held.map((c) => c.closed));
    const client = new OpenAI({ apiKey: 'k', baseURL: serve.url, maxRetries: 3 });
    assert.deepEqual((await client.files.list()).data, []);
    await until('the refusal line', () => lines(serve, /refused a connection/).length === 1);
  } finally {
    await stop(serve);
  }
  // The second refusal is summed into the line written at the end of its period (here: at stop).
  assert.equal(lines(serve, /refused a connection: 2 are open/).length, 1, serve.stderr());
  assert.equal(lines(serve, /refused 1 more connection beyond the cap/).length, 1, serve.stderr());
});

test('serve --request-timeout / --headers-timeout: a trickling body or unfinished headers are answered 408 and closed, one log line each', async () => {
  const serve = await spawnServe([
    '--data',
    tempDir(),
    '--request-timeout',
    '1s',
    '--headers-timeout',
    '0.5s',
  ]);
  try {
    const slowBody = await rawClient(serve);
    slowBody.socket.write(`${JSON_POST(1000)}{"input_file_id":`);
    const trickle = setInterval(() => slowBody.socket.write(' '), 100);
    const bodyCut = await within('the request timeout', slowBody.closed).finally(() =>
      clearInterval(trickle),
    );
    assert.ok(bodyCut >= 900 && bodyCut < 3000, `cut after the 1 s request timeout (${bodyCut} ms)`);
    assert.match(slowBody.received(), /^HTTP\/1\.1 408 /);

    const slowHeaders = await rawClient(serve);
    slowHeaders.socket.write('GET /v1/files HTTP/1.1\r\nHost: x\r\n');
    const headersCut = await within('the headers timeout', slowHeaders.closed);
    assert.ok(
      headersCut >= 400 && headersCut < 2500,
      `cut after the 0.5 s headers timeout (${headersCut} ms)`,
    );
    assert.match(slowHeaders.received(), /^HTTP\/1\.1 408 /);
    await until('both log lines', () => lines(serve, /within/).length >= 2);
  } finally {
    await stop(serve);
  }
  assert.equal(
    lines(serve, /^batchpipe serve: POST \/v1\/batches: not complete within the request timeout \(1 s\)/)
      .length,
    1,
    serve.stderr(),
  );
  assert.equal(lines(serve, /no complete request headers within 0\.5 s/).length, 1, serve.stderr());
  assert.doesNotMatch(serve.stderr(), /internal error|\n\s+at /);
});

test('serve: an upload or a JSON body cut off by its client, or a malformed request, logs one line each, never an error trace', async () => {
  const serve = await spawnServe(['--data', tempDir()]);
  try {
    const boundary = 'b0undary';
    const upload = await rawClient(serve);
    upload.socket.write(
      `POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 100000\r\n\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n{"custom_id":"a"}\n`,
    );
    const json = await rawClient(serve);
    json.socket.write(`${JSON_POST(1000)}{"input_file_id":`);
    await new Promise((r) => setTimeout(r, 150));
    upload.socket.destroy();
    json.socket.destroy();
    await until('two log lines', () => lines(serve, /before the request body was complete/).length >= 2);
    const malformed = await rawClient(serve);
    malformed.socket.write('BLAH /v1/files HTTP/1.1\r\nHost: x\r\n\r\n');
    await within('the 400', malformed.closed);
    assert.match(malformed.received(), /^HTTP\/1\.1 400 /);
    // Still serving.
    const client = new OpenAI({ apiKey: 'k', baseURL: serve.url, maxRetries: 0 });
    assert.deepEqual((await client.files.list()).data, []);
  } finally {
    await stop(serve);
  }
  const cut = /before the request body was complete/;
  assert.equal(
    lines(serve, /^batchpipe serve: POST \/v1\/files: the client closed/).length,
    1,
    serve.stderr(),
  );
  assert.equal(
    lines(serve, /^batchpipe serve: POST \/v1\/batches: the client closed/).length,
    1,
    serve.stderr(),
  );
  assert.equal(lines(serve, cut).length, 2);
  assert.equal(
    lines(serve, /a client sent a malformed request \(HPE_INVALID_METHOD\): answered 400/).length,
    1,
  );
  assert.doesNotMatch(serve.stderr(), /internal error|\n\s+at /);
});

test('serve --api-key-file and BATCHPIPE_SERVE_API_KEY: the key is required and never printed; --api-key warns of ps', async () => {
  const dir = tempDir();
  const secret = 'sk-file-secret-7f3a9c';
  const keyFile = path.join(dir, 'key');
  writeFileSync(keyFile, `${secret}\n`); // as `echo KEY > file` writes it
  const envSecret = 'sk-env-secret-51e2d0';
  for (const [args, env, key] of [
    [['--api-key-file', keyFile], {}, secret],
    [[], { BATCHPIPE_SERVE_API_KEY: envSecret }, envSecret],
  ] as const) {
    const serve = await spawnServe(['--data', tempDir(), ...args], { env });
    try {
      const good = new OpenAI({ apiKey: key, baseURL: serve.url, maxRetries: 0 });
      assert.deepEqual((await good.files.list()).data, []);
      const bad = new OpenAI({ apiKey: 'sk-wrong', baseURL: serve.url, maxRetries: 0 });
      await assert.rejects(bad.files.list(), OpenAI.AuthenticationError);
      // A request cut off with the key in its headers: logged, the key not.
      const cut = await rawClient(serve);
      cut.socket.write(JSON_POST(1000).replace('Bearer k', `Bearer ${key}`));
      await new Promise((r) => setTimeout(r, 100));
      cut.socket.destroy();
      await until('the cut request', () => lines(serve, /the client closed/).length === 1);
    } finally {
      await stop(serve);
    }
    assert.match(serve.stderr(), /API key required/);
    assert.ok(!serve.stderr().includes(key), `the key is never printed:\n${serve.stderr()}`);
  }
  const help = spawnSync(process.execPath, [BIN, 'serve', '--help'], { encoding: 'utf8' });
  assert.match(help.stdout.replace(/\s+/g, ' '), /--api-key <key> .*see it in `ps`/);
  const missing = spawnSync(process.execPath, [BIN, 'serve', '--api-key-file', path.join(dir, 'nope')], {
    encoding: 'utf8',
  });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /BP_IO --api-key-file .*nope: cannot read it \(ENOENT\)/);
  writeFileSync(path.join(dir, 'blank'), '\n');
  const blank = spawnSync(process.execPath, [BIN, 'serve', '--api-key-file', path.join(dir, 'blank')], {
    encoding: 'utf8',
  });
  assert.equal(blank.status, 2, 'an empty key file is not "any key"');
});

test('serve --host 0.0.0.0 without a key warns on stderr; with a key, or on loopback, it does not', async () => {
  const dir = tempDir();
  const keyFile = path.join(dir, 'key');
  writeFileSync(keyFile, 'sk-k\n');
  const warning = /warning: listening on 0\.0\.0\.0, which is not a loopback address, without an API key/;
  const open = await spawnServe(['--data', tempDir(), '--host', '0.0.0.0']);
  try {
    await until('the warning', () => warning.test(open.stderr()));
  } finally {
    await open.stop();
  }
  for (const args of [
    ['--host', '0.0.0.0', '--api-key-file', keyFile],
    ['--host', '127.0.0.1'],
  ]) {
    const serve = await spawnServe(['--data', tempDir(), ...args]);
    await stop(serve);
    assert.doesNotMatch(serve.stderr(), /warning/, args.join(' '));
  }
});

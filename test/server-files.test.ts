import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import OpenAI from 'openai';
import {
  assertValid,
  chatLines,
  createChatBatch,
  specValidator,
  upload,
  withServer,
  writeJsonl,
} from './server-support.js';

const validateFile = specValidator('OpenAIFile', true);
const validateBatch = specValidator('Batch', true);

test('files: list paginates with after/limit/order and filters by purpose; retrieve, content and delete', () =>
  withServer({}, async (server, dir) => {
    const { client } = server;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await upload(client, writeJsonl(dir, `f${i}.jsonl`, chatLines(1, `f${i}`)))).id);
    const other = await client.files.create({ file: new File(['hello'], 'notes.txt'), purpose: 'user_data' });

    // Newest first by default, walked page by page.
    const pages: string[][] = [];
    let page = await client.files.list({ purpose: 'batch', limit: 2 });
    pages.push(page.data.map((f) => f.id));
    while (page.hasNextPage()) {
      page = await page.getNextPage();
      pages.push(page.data.map((f) => f.id));
    }
    assert.deepEqual(pages, [[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]]]);
    const first = await client.files.list({ purpose: 'batch', limit: 2 });
    assert.equal(first.has_more, true);

    const ascending: string[] = [];
    for await (const f of client.files.list({ purpose: 'batch', order: 'asc', limit: 3 })) {
      assertValid(validateFile, f, 'a listed File');
      ascending.push(f.id);
    }
    assert.deepEqual(ascending, ids);

    const all = await client.files.list();
    assert.equal(all.data.length, 6);
    assert.equal(all.has_more, false);
    assert.deepEqual(
      (await client.files.list({ purpose: 'user_data' })).data.map((f) => f.id),
      [other.id],
    );

    const got = await client.files.retrieve(ids[2] as string);
    assertValid(validateFile, got, 'a retrieved File');
    assert.equal(got.filename, 'f2.jsonl');
    assert.match(await (await client.files.content(ids[2] as string)).text(), /"custom_id":"f2-0"/);

    const deleted = await client.files.delete(ids[2] as string);
    assert.deepEqual(deleted, { id: ids[2], object: 'file', deleted: true });
    await assert.rejects(client.files.retrieve(ids[2] as string), OpenAI.NotFoundError);
    await assert.rejects(client.files.content(ids[2] as string), OpenAI.NotFoundError);
    await assert.rejects(client.files.delete(ids[2] as string), OpenAI.NotFoundError);
    const remaining = (await client.files.list({ purpose: 'batch' })).data.map((f) => f.id);
    assert.deepEqual(remaining, [ids[4], ids[3], ids[1], ids[0]]);
    // A cursor naming the deleted file still works: it keeps its place in the order.
    assert.deepEqual(
      (await client.files.list({ purpose: 'batch', after: ids[2] as string })).data.map((f) => f.id),
      [ids[1], ids[0]],
    );
  }));

test('files: unknown ids are 404s; non-JSONL batch uploads, empty uploads and bad purposes are 400s', () =>
  withServer({}, async (server, dir) => {
    const { client } = server;
    const notFound = await client.files.retrieve('file-AAAAAAAAAAAAAAAAAAAAAA').catch((e: unknown) => e);
    assert.ok(notFound instanceof OpenAI.NotFoundError);
    assert.equal(notFound.type, 'invalid_request_error');
    assert.match(notFound.message, /No such File object/);

    const csv = path.join(dir, 'data.csv');
    writeFileSync(csv, 'id,text\n1,hello\n');
    const badFormat = await upload(client, csv).catch((e: unknown) => e);
    assert.ok(badFormat instanceof OpenAI.BadRequestError);
    assert.equal(badFormat.code, 'invalid_file_format');

    const binary = path.join(dir, 'blob.jsonl');
    writeFileSync(binary, Buffer.from([123, 0, 1, 2, 125, 10]));
    await assert.rejects(upload(client, binary), OpenAI.BadRequestError);

    // Valid JSONL under another name: OpenAI's Batch API takes only `.jsonl` files.
    const txt = writeJsonl(dir, 'x.txt', chatLines(2, 'txt'));
    const badName = await upload(client, txt).catch((e: unknown) => e);
    assert.ok(badName instanceof OpenAI.BadRequestError);
    assert.equal(badName.code, 'invalid_file_format');
    assert.match(badName.message, /\.jsonl/);
    assert.ok(
      (await upload(client, writeJsonl(dir, 'x.jsonl', chatLines(2, 'txt')))).id,
      'the same lines as .jsonl pass',
    );

    for (const purpose of ['batch', 'user_data'] as const) {
      const empty = await client.files
        .create({ file: new File([], 'empty.jsonl'), purpose })
        .catch((e: unknown) => e);
      assert.ok(empty instanceof OpenAI.BadRequestError, `a 0-byte ${purpose} upload is refused`);
      assert.equal(empty.code, 'empty_file');
    }

    const badPurpose = await client.files
      .create({ file: new File(['{}\n'], 'x.jsonl'), purpose: 'nonsense' as 'batch' })
      .catch((e: unknown) => e);
    assert.ok(badPurpose instanceof OpenAI.BadRequestError);
    assert.equal(badPurpose.param, 'purpose');

    assert.equal((await client.files.list()).data.length, 1, 'rejected uploads leave no file behind');
  }));

test('batches: list paginates newest first with after/limit/has_more; bad create requests are 400/404', () =>
  withServer({}, async (server, dir) => {
    const { client } = server;
    const created: string[] = [];
    for (let i = 0; i < 5; i++)
      created.push((await createChatBatch(client, dir, chatLines(2, `b${i}`), `b${i}.jsonl`)).id);
    const newestFirst = [...created].reverse();

    const walked: string[] = [];
    let page = await client.batches.list({ limit: 2 });
    assert.equal(page.has_more, true);
    for (;;) {
      for (const b of page.data) assertValid(validateBatch, b, 'a listed Batch');
      walked.push(...page.data.map((b) => b.id));
      if (!page.hasNextPage()) break;
      page = await page.getNextPage();
    }
    assert.deepEqual(walked, newestFirst);
    const auto: string[] = [];
    for await (const b of client.batches.list({ limit: 3 })) auto.push(b.id);
    assert.deepEqual(auto, newestFirst);
    const tail = await client.batches.list({ after: created[1] as string });
    assert.deepEqual(
      tail.data.map((b) => b.id),
      [created[0]],
    );
    assert.equal(tail.has_more, false);

    await assert.rejects(client.batches.list({ limit: 101 }), OpenAI.BadRequestError);
    await assert.rejects(
      client.batches.retrieve('batch_00000000000000000000000000000000'),
      OpenAI.NotFoundError,
    );
    await assert.rejects(
      client.batches.cancel('batch_00000000000000000000000000000000'),
      OpenAI.NotFoundError,
    );
    const missingFile = await client.batches
      .create({
        input_file_id: 'file-AAAAAAAAAAAAAAAAAAAAAA',
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
      .catch((e: unknown) => e);
    assert.ok(missingFile instanceof OpenAI.NotFoundError);
    assert.equal(missingFile.param, 'input_file_id');
    const file = await upload(client, writeJsonl(dir, 'ok.jsonl', chatLines(1)));
    await assert.rejects(
      client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/audio/speech' as '/v1/videos',
        completion_window: '24h',
      }),
      OpenAI.BadRequestError,
    );
    await assert.rejects(
      client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '48h' as '24h',
      }),
      OpenAI.BadRequestError,
    );
    const tooMuchMetadata = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
    await assert.rejects(
      client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        metadata: tooMuchMetadata,
      }),
      OpenAI.BadRequestError,
    );
  }));

test('auth: with apiKey set, other keys get 401 invalid_api_key, and no key is ever echoed', () =>
  withServer({ apiKey: 'sk-local-secret', client: { apiKey: 'sk-local-secret' } }, async (server) => {
    assert.deepEqual((await server.client.files.list()).data, []);
    const wrong = new OpenAI({ apiKey: 'sk-wrong', baseURL: server.url, maxRetries: 0 });
    const err = await wrong.files.list().catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.AuthenticationError);
    assert.equal(err.code, 'invalid_api_key');
    assert.ok(
      !err.message.includes('sk-wrong') && !err.message.includes('sk-local-secret'),
      'keys are never echoed',
    );
  }));

test('auth: without apiKey, any bearer key is accepted', () =>
  withServer({ client: { apiKey: 'anything-goes' } }, async (server) => {
    assert.deepEqual((await server.client.batches.list()).data, []);
  }));

/**
 * Shared helpers for the server tests: a server on a temp dir with an SDK client, JSONL builders,
 * batch polling, file downloads, and ajv validators built from the OpenAPI spec in shared/.
 * (Not a test file itself: it has no tests.)
 */
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import OpenAI from 'openai';
import { type LocalServerOptions, startLocalServer } from '../src/server/index.js';
import { tempDir as baseTempDir, SHARED_DIR } from './support.js';

export { REPO_ROOT, SHARED_DIR } from './support.js';

export const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

/** A fresh directory under the OS temp dir. */
export function tempDir(prefix = 'bp-server-'): string {
  return baseTempDir(prefix);
}

export interface TestServer {
  url: string;
  /** The base URL of the Anthropic and Gemini SDKs. */
  origin: string;
  dataDir: string;
  client: OpenAI;
  close(): Promise<void>;
}

/** Starts a server on an ephemeral port and a temp data dir, with an SDK client pointed at it. */
export async function startTestServer(
  options: Partial<LocalServerOptions> = {},
  clientOptions: { apiKey?: string; maxRetries?: number } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? tempDir();
  const server = await startLocalServer({ port: 0, ...options, dataDir });
  const client = new OpenAI({
    apiKey: clientOptions.apiKey ?? 'test',
    baseURL: server.url,
    maxRetries: clientOptions.maxRetries ?? 2,
  });
  return {
    url: server.url,
    origin: server.origin,
    dataDir,
    client,
    async close() {
      await server.close();
    },
  };
}

/**
 * Runs `fn` with a fresh server (see {@link startTestServer}) and a scratch dir, then closes the server
 * and removes both dirs, whatever `fn` did.
 */
export async function withServer(
  options: Partial<LocalServerOptions> & { client?: { apiKey?: string; maxRetries?: number } },
  fn: (server: TestServer, dir: string) => Promise<void>,
): Promise<void> {
  const { client, ...serverOptions } = options;
  const server = await startTestServer(serverOptions, client);
  const dir = tempDir();
  try {
    await fn(server, dir);
  } finally {
    await server.close();
    await removeDir(dir);
    await removeDir(server.dataDir);
  }
}

/** Removes a temp dir once a test is done with it. */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** A chat-completions request line in the shape `batchpipe prepare` writes. */
export function chatLine(customId: string, content: string, extra: Record<string, unknown> = {}) {
  return {
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra },
  };
}

/** `n` chat lines with ids `req-0` … `req-(n-1)`. */
export function chatLines(n: number, prefix = 'req'): ReturnType<typeof chatLine>[] {
  return Array.from({ length: n }, (_, i) =>
    chatLine(`${prefix}-${i}`, `Review ${i}: the flight was delayed but the crew was kind.`),
  );
}

/** Writes lines (objects are JSON-encoded, strings written as they are) to a .jsonl file in `dir`. */
export function writeJsonl(dir: string, name: string, lines: Array<unknown>): string {
  const file = path.join(dir, name);
  writeFileSync(file, `${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`);
  return file;
}

/** Uploads a file with purpose `batch`, streamed from disk. */
export async function upload(client: OpenAI, filePath: string) {
  return client.files.create({ file: createReadStream(filePath), purpose: 'batch' });
}

/** Uploads lines and creates a chat-completions batch over them. */
export async function createChatBatch(client: OpenAI, dir: string, lines: unknown[], name = 'input.jsonl') {
  const file = await upload(client, writeJsonl(dir, name, lines));
  return client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
}

/** Polls a batch until `until` holds (default: a terminal status); each polled object goes to `seen`. */
export async function waitForBatch(
  client: OpenAI,
  batchId: string,
  until: (b: OpenAI.Batches.Batch) => boolean = (b) => TERMINAL.has(b.status),
  options: { timeoutMs?: number; intervalMs?: number; seen?: OpenAI.Batches.Batch[] } = {},
): Promise<OpenAI.Batches.Batch> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    const batch = await client.batches.retrieve(batchId);
    options.seen?.push(batch);
    if (until(batch)) return batch;
    if (Date.now() > deadline) throw new Error(`batch ${batchId} still ${batch.status} after the timeout`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 25));
  }
}

/** A parsed JSON value whose shape the test checks itself. */
// biome-ignore lint/suspicious/noExplicitAny: test code reads arbitrary JSON and asserts on its shape.
export type JsonObject = any;

/** One line of an output or error file. */
export interface ResultLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: JsonObject } | null;
  error: { code: string; message: string } | null;
}

/** Downloads a file through the SDK and parses its JSONL; a null/undefined id is no file (no lines). */
export async function downloadLines(
  client: OpenAI,
  fileId: string | null | undefined,
): Promise<ResultLine[]> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  assertEndsWithNewline(text);
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as ResultLine);
}

function assertEndsWithNewline(text: string) {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('a JSONL file must end with a newline');
}

/** custom_id → how many lines name it. */
export function countIds(lines: ResultLine[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) counts.set(line.custom_id, (counts.get(line.custom_id) ?? 0) + 1);
  return counts;
}

let spec: { components: { schemas: Record<string, JsonObject> } } | undefined;

function loadSpec() {
  spec ??= JSON.parse(readFileSync(path.join(SHARED_DIR, 'reference', 'openapi.json'), 'utf8'));
  return spec as { components: { schemas: Record<string, JsonObject> } };
}

/**
 * Validators for `#/components/schemas/<name>` of the OpenAPI 3.1 spec, refs resolved within it.
 * For the object schemas listed in `nullableOptional`, a property that is not `required` may also be
 * null: the spec reference notes that the API returns null for unset optional fields (its own Batch
 * example shows `"failed_at": null`), while the schema types them without null.
 */
export function specValidator(name: string, nullableOptional = false): ValidateFunction {
  const components = structuredClone(loadSpec().components);
  const target = components.schemas[name];
  if (!target) throw new Error(`no schema ${name} in the spec`);
  if (nullableOptional) {
    const required = new Set<string>(target.required ?? []);
    for (const [prop, schema] of Object.entries<JsonObject>(target.properties ?? {})) {
      if (!required.has(prop)) target.properties[prop] = { anyOf: [schema, { type: 'null' }] };
    }
  }
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  ajv.addSchema({ $id: 'https://batchpipe.test/openapi.json', components });
  return ajv.compile({ $ref: `https://batchpipe.test/openapi.json#/components/schemas/${name}` });
}

/** Fails with ajv's errors when `value` does not validate. */
export function assertValid(validate: ValidateFunction, value: unknown, what: string): void {
  if (!validate(value)) {
    throw new Error(
      `${what} does not match its schema: ${JSON.stringify(validate.errors?.slice(0, 5), null, 1)}`,
    );
  }
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openProvider } from '../src/providers/open-provider.js';
import { secretRedactor } from '../src/providers/redact.js';

test('a key is taken out of every text; a placeholder key too short to be a secret leaves words whole', () => {
  const key = 'sk-test-0123456789abcdef';
  const redact = secretRedactor(key);
  const text = `401: Incorrect API key provided: ${key}. Next: batchpipe collect --max-attempts 1 (${key})`;
  const shown = redact(text);
  assert.ok(!shown.includes(key));
  assert.equal(shown.split('[redacted]').length - 1, 2);
  assert.equal(shown.replaceAll('[redacted]', key), text, 'only the key changed');

  const placeholder = secretRedactor('x');
  const line = 'submitted; Next: batchpipe collect --max-attempts 1';
  assert.equal(placeholder(line), line);
});

test('every provider redacts its key the same way: the key out, a placeholder key leaves words whole', async () => {
  const line = 'submitted; Next: batchpipe collect --max-attempts 1';
  for (const provider of ['openai', 'anthropic', 'gemini'] as const) {
    const baseUrl = 'http://127.0.0.1:9/v1';
    const short = await openProvider({ provider, apiKey: 'x', baseUrl });
    const long = await openProvider({ provider, apiKey: 'key-0123456789abcdef', baseUrl });
    try {
      assert.equal(short.redact(line), line, provider);
      assert.equal(long.redact(`${line} key-0123456789abcdef`), `${line} [redacted]`, provider);
    } finally {
      await short.close();
      await long.close();
    }
  }
});

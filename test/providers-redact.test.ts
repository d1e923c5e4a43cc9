import assert from 'node:assert/strict';
import { test } from 'node:test';
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

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FileRules } from '../src/validate/file-rules.js';

function chatLine(customId: string, model = 'gpt-4o-mini'): Record<string, unknown> {
  return {
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model, messages: [{ role: 'user', content: 'hi' }] },
  };
}

function embeddingLine(customId: string, input: unknown): Record<string, unknown> {
  return { custom_id: customId, method: 'POST', url: '/v1/embeddings', body: { model: 'e', input } };
}

/** Feeds `values` as lines 1..n and returns `[line, code, message]` for every issue. */
function run(rules: FileRules, values: unknown[]): [number, string, string][] {
  const found: [number, string, string][] = [];
  values.forEach((value, i) => {
    for (const issue of rules.addRequest(i + 1, value)) found.push([i + 1, issue.code, issue.message]);
  });
  return found;
}

describe('FileRules', () => {
  it('accepts distinct ids with one url and one model', () => {
    const rules = new FileRules();
    assert.deepEqual(run(rules, [chatLine('a'), chatLine('b'), chatLine('c')]), []);
    assert.equal(rules.requests, 3);
  });

  it('names the id and both lines of a duplicate custom_id', () => {
    const found = run(new FileRules(), [chatLine('x'), chatLine('y'), chatLine('x'), chatLine('x')]);
    assert.deepEqual(found, [
      [3, 'duplicate_custom_id', 'duplicate custom_id "x" (first on line 1)'],
      [4, 'duplicate_custom_id', 'duplicate custom_id "x" (first on line 1)'],
    ]);
  });

  it('compares ids exactly: "1" and "01" differ', () => {
    assert.deepEqual(run(new FileRules(), [chatLine('1'), chatLine('01'), chatLine('1 ')]), []);
  });

  it('reports a url that differs from the first line', () => {
    const found = run(new FileRules(), [chatLine('a'), embeddingLine('b', 'text'), chatLine('c')]);
    assert.deepEqual(
      found.map(([line, code]) => [line, code]),
      [
        [2, 'url_mismatch'],
        [2, 'model_mismatch'],
      ],
    );
    assert.match(found[0]?.[2] ?? '', /"\/v1\/embeddings".*"\/v1\/chat\/completions".*line 1/);
  });

  it('reports a model that differs from the first line', () => {
    const found = run(new FileRules(), [
      chatLine('a', 'gpt-4o'),
      chatLine('b', 'gpt-4o'),
      chatLine('c', 'gpt-4o-mini'),
    ]);
    assert.deepEqual(
      found.map(([line, code]) => [line, code]),
      [[3, 'model_mismatch']],
    );
    assert.match(found[0]?.[2] ?? '', /"gpt-4o-mini".*"gpt-4o".*line 1/);
  });

  it('does not compare a moderations line that leaves the model to the default', () => {
    const moderation = (id: string, body: Record<string, unknown>) => ({
      custom_id: id,
      method: 'POST',
      url: '/v1/moderations',
      body,
    });
    const found = run(new FileRules(), [
      moderation('a', { input: 'x' }),
      moderation('b', { input: 'y', model: 'omni-moderation-latest' }),
      moderation('c', { input: 'z' }),
    ]);
    assert.deepEqual(found, []);
  });

  it('reports too many lines once, on the first line over the limit', () => {
    const rules = new FileRules({ maxLines: 3 });
    const found = run(
      rules,
      ['a', 'b', 'c', 'd', 'e'].map((id) => chatLine(id)),
    );
    assert.deepEqual(
      found.map(([line, code]) => [line, code]),
      [[4, 'too_many_lines']],
    );
    assert.match(found[0]?.[2] ?? '', /\b3\b/);
    assert.equal(rules.requests, 5);
  });

  it('counts lines that did not parse as requests', () => {
    const rules = new FileRules({ maxLines: 1 });
    assert.deepEqual(rules.addRequest(1, undefined), []);
    assert.deepEqual(
      rules.addRequest(2, undefined).map((i) => i.code),
      ['too_many_lines'],
    );
  });

  it('stops remembering ids past the line limit, so memory stays bounded', () => {
    const rules = new FileRules({ maxLines: 10 });
    run(
      rules,
      Array.from({ length: 1000 }, (_, i) => chatLine(`id-${i}`)),
    );
    assert.equal(rules.trackedIds, 10);
  });

  it('reports too many bytes once, on the line that passes the limit', () => {
    const rules = new FileRules({ maxBytes: 100 });
    assert.deepEqual(rules.addBytes(1, 60), []);
    assert.deepEqual(rules.addBytes(2, 40), [], 'exactly at the limit is allowed');
    const over = rules.addBytes(3, 1);
    assert.deepEqual(
      over.map((i) => i.code),
      ['too_many_bytes'],
    );
    assert.match(over[0]?.message ?? '', /\b100\b/);
    assert.deepEqual(rules.addBytes(4, 500), []);
    assert.equal(rules.bytes, 601);
  });

  it('limits the embedding inputs of a file in total', () => {
    const rules = new FileRules({ maxEmbeddingInputs: 5 });
    const found = run(rules, [
      embeddingLine('a', ['1', '2']),
      embeddingLine('b', 'three'),
      embeddingLine('c', [[1], [2]]),
      embeddingLine('d', [7, 8, 9]),
      embeddingLine('e', 'more'),
    ]);
    // 2 + 1 + 2 = 5 inputs is the limit; the token array on line 4 is the sixth input.
    assert.deepEqual(
      found.map(([line, code]) => [line, code]),
      [[4, 'too_many_embedding_inputs']],
    );
    assert.equal(rules.embeddingInputs, 7);
  });

  it('uses the API limits by default', () => {
    const rules = new FileRules();
    assert.equal(rules.maxLines, 50_000);
    assert.equal(rules.maxBytes, 209_715_200);
    assert.equal(rules.maxEmbeddingInputs, 50_000);
  });
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { createRng, generateFeedbackCsv } from '../bench/generate.js';
import { compileInputTokenCounter } from '../bench/template-tokens.js';
import { cl100kPieceEnd, o200kPieceEnd } from '../src/cost/pretokenize.js';
import { type EncodingName, tokenCounter } from '../src/cost/text-tokens.js';
import { packageEncoding, packageSplitRegex } from '../src/cost/tokenizer-package.js';
import {
  CHAT_REPLY_PRIMING_TOKENS,
  CHAT_TOKENS_PER_MESSAGE,
  CHAT_TOKENS_PER_NAME,
  counterForModel,
  encodingForModel,
  outputTokenBound,
  requestInputTokens,
} from '../src/cost/tokens.js';
import { compileTailEncoder } from '../src/transforms/request-builder.js';
import { columnFieldResolver } from '../src/transforms/template.js';
import { BA_REVIEWS, REPO_ROOT } from './support.js';

const ENCODINGS: EncodingName[] = ['o200k_base', 'cl100k_base'];
const PIECE_END = { o200k_base: o200kPieceEnd, cl100k_base: cl100kPieceEnd };

interface Fixture {
  fields: string[];
  reviews: Record<EncodingName, number[]>;
  edge: ({ text: string } & Record<EncodingName, number>)[];
}
const FIXTURE = JSON.parse(
  readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'js-tiktoken-counts.json'), 'utf8'),
) as Fixture;
const REVIEWS = parse(readFileSync(BA_REVIEWS), { columns: true }) as Record<string, string>[];
const REVIEW_TEXTS = REVIEWS.map((row) => FIXTURE.fields.map((f) => row[f] ?? '').join('\n'));

/** Feedback texts from the bench generator: accents, emoji, quotes, newlines, placeholders as data. */
function generatedTexts(rows: number): string[] {
  const csv = [...generateFeedbackCsv({ rows, seed: 'cost' })].join('');
  return (parse(csv, { columns: true }) as Record<string, string>[]).flatMap((r) => [r.text!, r.customer!]);
}

/** Random strings over characters of every class the split regexes tell apart. */
function randomStrings(count: number): string[] {
  const alphabet = [
    ...'aZqé\u01c5\u02b0中𝐀𝐚\u0301\u0903',
    ...'19²½Ⅻ٣',
    ' ',
    ' ',
    ' ',
    '\t',
    '\n',
    '\r',
    '\u00a0',
    '\u3000',
    '\u2028',
    '\f',
    '\ufeff',
    '\u0085',
    "'",
    ...'stlvedmrSLDT',
    ...'.,/!-_"\\<|>',
    '😀',
    '👍🏽',
    '\u200d',
    '\ud800',
    '\udc00',
  ];
  const next = createRng('pieces');
  return Array.from({ length: count }, () => {
    let text = '';
    for (let n = 1 + Math.floor(next() * 24); n > 0; n--)
      text += alphabet[Math.floor(next() * alphabet.length)];
    return text;
  });
}

function scannerPieces(encoding: EncodingName, text: string): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < text.length; ) {
    const end = PIECE_END[encoding](text, i);
    if (end <= i) assert.fail(`the ${encoding} scanner is stuck at ${i} of ${JSON.stringify(text)}`);
    pieces.push(text.slice(i, end));
    i = end;
  }
  return pieces;
}

/**
 * The package's split regex as tiktoken's engine reads it: `\s` is Unicode White_Space there, where
 * JavaScript's `\s` also takes U+FEFF and leaves out U+0085.
 */
function tiktokenSplitRegex(encoding: EncodingName): RegExp {
  const source = packageSplitRegex(encoding).source;
  return new RegExp(source.replaceAll('\\s', '\\p{White_Space}').replaceAll('\\S', '\\P{White_Space}'), 'gu');
}

/** Texts on which JavaScript's and tiktoken's `\s` agree, so gpt-tokenizer splits them as OpenAI does. */
const withoutSpaceQuirks = (text: string) => !/[\ufeff\u0085]/.test(text);

test("the pre-tokenizers split text as the package's regexes do, read as tiktoken reads them: reviews, feedback, random strings", () => {
  const texts = [
    ...REVIEW_TEXTS,
    ...generatedTexts(2_000),
    ...randomStrings(10_000),
    ...FIXTURE.edge.map((e) => e.text),
  ];
  for (const encoding of ENCODINGS) {
    const regex = tiktokenSplitRegex(encoding);
    const asPackage = packageSplitRegex(encoding);
    for (const text of texts.filter(withoutSpaceQuirks).slice(0, 1_000)) {
      assert.deepEqual(
        [...text.matchAll(regex)].map((m) => m[0]),
        [...text.matchAll(asPackage)].map((m) => m[0]),
        'the same pieces where the two \\s agree',
      );
    }
    const counter = tokenCounter(encoding);
    let differing = 0;
    for (const text of texts) {
      const expected = [...text.matchAll(regex)].map((m) => m[0]);
      // The scanner alone, and the counter's ASCII fast path in front of it.
      for (const actual of [scannerPieces(encoding, text), counter.pieces(text)]) {
        if (actual.join('\u0000') !== expected.join('\u0000') && differing++ < 3) {
          assert.deepEqual(actual, expected, `${encoding} pieces of ${JSON.stringify(text)}`);
        }
      }
    }
    assert.equal(differing, 0, `${encoding}: texts split differently`);
  }
});

test('counts equal js-tiktoken (an independent implementation, recorded in a fixture) on every BA review and edge case', () => {
  assert.equal(REVIEW_TEXTS.length, FIXTURE.reviews.o200k_base.length);
  for (const encoding of ENCODINGS) {
    const counter = tokenCounter(encoding);
    const wrong = REVIEW_TEXTS.map((text, i) => [
      i,
      counter.count(text),
      FIXTURE.reviews[encoding][i],
    ]).filter(([, actual, expected]) => actual !== expected);
    assert.deepEqual(wrong.slice(0, 5), [], `${encoding}: [review, counted, js-tiktoken]`);
    for (const edge of FIXTURE.edge) {
      assert.equal(counter.count(edge.text), edge[encoding], `${encoding}: ${JSON.stringify(edge.text)}`);
    }
  }
});

test("counts equal the package's own (regex and BPE over the whole text) on generated feedback and random strings", () => {
  // Not texts with U+FEFF or U+0085, where the package departs from OpenAI's tokenizer (the fixture test has them).
  const texts = [...generatedTexts(3_000), ...randomStrings(5_000)].filter(withoutSpaceQuirks);
  for (const encoding of ENCODINGS) {
    const counter = tokenCounter(encoding);
    const reference = packageEncoding(encoding);
    for (const text of texts) {
      assert.equal(counter.count(text), reference.countTokens(text), `${encoding}: ${JSON.stringify(text)}`);
    }
  }
});

test("known counts from OpenAI's cookbook (How to count tokens with tiktoken)", () => {
  const known: [string, number, number][] = [
    // text, o200k_base, cl100k_base
    ['tiktoken is great!', 6, 6],
    ['antidisestablishmentarianism', 6, 6],
    ['2 + 2 = 4', 7, 7],
    ['お誕生日おめでとう', 8, 9],
  ];
  for (const [text, o200k, cl100k] of known) {
    assert.equal(tokenCounter('o200k_base').count(text), o200k, text);
    assert.equal(tokenCounter('cl100k_base').count(text), cl100k, text);
  }
});

test("chat input tokens equal what the API billed in OpenAI's cookbook: 124 for gpt-4o / gpt-4o-mini, 129 for gpt-4 / gpt-3.5-turbo", () => {
  const messages = [
    {
      role: 'system',
      content:
        'You are a helpful, pattern-following assistant that translates corporate jargon into plain English.',
    },
    { role: 'system', name: 'example_user', content: 'New synergies will help drive top-line growth.' },
    {
      role: 'system',
      name: 'example_assistant',
      content: 'Things working well together will increase revenue.',
    },
    {
      role: 'system',
      name: 'example_user',
      content:
        "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
    },
    {
      role: 'system',
      name: 'example_assistant',
      content: "Let's talk later when we're less busy about how to do better.",
    },
    {
      role: 'user',
      content: "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
  ];
  const billed = (model: string) =>
    requestInputTokens('/v1/chat/completions', { model, messages }, counterForModel(model));
  assert.equal(billed('gpt-4o'), 124);
  assert.equal(billed('gpt-4o-mini'), 124);
  assert.equal(billed('gpt-4'), 129);
  assert.equal(billed('gpt-3.5-turbo'), 129);
  // A response's usage recorded in a course notebook (github.com/ai-5050/facamp-2025-winter): prompt_tokens=17.
  const question = {
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Who won the World Cup in 2022?' }],
  };
  assert.equal(requestInputTokens('/v1/chat/completions', question, counterForModel('gpt-4o-mini')), 17);
});

test('chat: 3 tokens a message, 1 more for a name, 3 priming the reply; content parts count their text and name the rest', () => {
  const counter = counterForModel('gpt-4o-mini');
  const c = (text: string) => counter.count(text);
  const body = {
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: 'Classify the sentiment.' },
      {
        role: 'user',
        name: 'ana',
        content: [
          { type: 'text', text: 'The crew was kind.' },
          { type: 'text', text: 'Food: cold.' },
        ],
      },
      { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] },
    ],
    tools: [{ type: 'function', function: { name: 'f', parameters: {} } }],
    response_format: { type: 'json_schema', json_schema: { name: 's', schema: { type: 'object' } } },
  };
  const uncounted = new Set<string>();
  const expected =
    3 * CHAT_TOKENS_PER_MESSAGE +
    CHAT_TOKENS_PER_NAME +
    CHAT_REPLY_PRIMING_TOKENS +
    c('system') +
    c('Classify the sentiment.') +
    c('user') +
    c('ana') +
    c('The crew was kind.') +
    c('Food: cold.') +
    c('user');
  assert.equal(requestInputTokens('/v1/chat/completions', body, counter, uncounted), expected);
  assert.deepEqual([...uncounted].sort(), [
    'messages[].content[] of type image_url',
    'response_format.json_schema',
    'tools',
  ]);
  assert.deepEqual([CHAT_TOKENS_PER_MESSAGE, CHAT_TOKENS_PER_NAME, CHAT_REPLY_PRIMING_TOKENS], [3, 1, 3]);
});

test('responses: instructions and input are counted as chat messages (a string input is one user message)', () => {
  const counter = counterForModel('gpt-5-mini');
  const c = (text: string) => counter.count(text);
  const plain = { model: 'gpt-5-mini', instructions: 'Be brief.', input: 'Summarise: late and cold.' };
  assert.equal(
    requestInputTokens('/v1/responses', plain, counter),
    3 + 3 + c('system') + c('Be brief.') + 3 + c('user') + c('Summarise: late and cold.'),
  );
  const items = {
    model: 'gpt-5-mini',
    input: [
      { role: 'developer', content: 'Answer in French.' },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello' }] },
      { type: 'function_call_output', call_id: 'c1', output: '{}' },
    ],
  };
  const uncounted = new Set<string>();
  assert.equal(
    requestInputTokens('/v1/responses', items, counter, uncounted),
    3 + 3 + c('developer') + c('Answer in French.') + 3 + c('user') + c('Hello'),
  );
  assert.deepEqual([...uncounted], ['input[] of type function_call_output']);
});

test('embeddings, completions and moderations count their inputs; inputs given as token ids count one a token', () => {
  const e = counterForModel('text-embedding-3-small');
  assert.equal(e.encoding, 'cl100k_base');
  assert.equal(requestInputTokens('/v1/embeddings', { input: 'late flight' }, e), e.count('late flight'));
  assert.equal(
    requestInputTokens('/v1/embeddings', { input: ['a b', 'c d e'] }, e),
    e.count('a b') + e.count('c d e'),
  );
  assert.equal(requestInputTokens('/v1/embeddings', { input: [1, 2, 3] }, e), 3);
  assert.equal(requestInputTokens('/v1/embeddings', { input: [[1, 2], [3]] }, e), 3);

  const i = counterForModel('gpt-3.5-turbo-instruct');
  assert.equal(
    requestInputTokens('/v1/completions', { prompt: 'Once upon', suffix: ' the end.' }, i),
    i.count('Once upon') + i.count(' the end.'),
  );
  assert.equal(
    requestInputTokens('/v1/completions', { prompt: ['x y', 'z'] }, i),
    i.count('x y') + i.count('z'),
  );

  const m = counterForModel('omni-moderation-latest');
  const uncounted = new Set<string>();
  const parts = [
    { type: 'text', text: 'kind words' },
    { type: 'image_url', image_url: { url: 'https://x/y.png' } },
  ];
  assert.equal(requestInputTokens('/v1/moderations', { input: parts }, m, uncounted), m.count('kind words'));
  assert.deepEqual([...uncounted], ['input[] of type image_url']);
  assert.equal(
    requestInputTokens('/v1/moderations', { input: ['a', 'b c'] }, m),
    m.count('a') + m.count('b c'),
  );
});

test("models map to their encodings; fine-tunes and snapshots to their base's; unknown models are a guess", () => {
  const cases: [string, EncodingName, boolean][] = [
    ['gpt-4o-mini', 'o200k_base', false],
    ['gpt-4o-mini-2024-07-18', 'o200k_base', false],
    ['chatgpt-4o-latest', 'o200k_base', false],
    ['gpt-4.1-nano', 'o200k_base', false],
    ['gpt-5', 'o200k_base', false],
    ['gpt-5.4-mini', 'o200k_base', false],
    ['o1', 'o200k_base', false],
    ['o3-mini-2025-01-31', 'o200k_base', false],
    ['o4-mini', 'o200k_base', false],
    ['ft:gpt-4o-mini-2024-07-18:acme::abc123', 'o200k_base', false],
    ['gpt-4', 'cl100k_base', false],
    ['gpt-4-turbo-2024-04-09', 'cl100k_base', false],
    ['gpt-3.5-turbo-0125', 'cl100k_base', false],
    ['text-embedding-3-large', 'cl100k_base', false],
    ['text-embedding-ada-002', 'cl100k_base', false],
    ['o100', 'o200k_base', true],
    ['my-local-llama', 'o200k_base', true],
  ];
  for (const [model, encoding, guessed] of cases) {
    assert.deepEqual(encodingForModel(model), { encoding, guessed }, model);
  }
});

test('the output bound is the request limit times its choices, and says which field it came from', () => {
  assert.deepEqual(
    outputTokenBound('/v1/chat/completions', { max_completion_tokens: 40, max_tokens: 9, n: 3 }),
    {
      tokens: 120,
      from: 'max_completion_tokens',
    },
  );
  assert.deepEqual(outputTokenBound('/v1/chat/completions', { max_tokens: 9 }), {
    tokens: 9,
    from: 'max_tokens',
  });
  assert.deepEqual(outputTokenBound('/v1/chat/completions', {}), { tokens: undefined, from: 'none' });
  assert.deepEqual(outputTokenBound('/v1/responses', { max_output_tokens: 300 }), {
    tokens: 300,
    from: 'max_output_tokens',
  });
  assert.deepEqual(outputTokenBound('/v1/completions', { n: 2, best_of: 5 }), {
    tokens: 80,
    from: 'default max_tokens of /v1/completions',
  });
  assert.deepEqual(outputTokenBound('/v1/embeddings', { input: 'x' }), { tokens: 0, from: 'no output' });
});

test("the template's per-record counter (what the token bench measures inside prepare) equals requestInputTokens of the line", () => {
  const rows = parse([...generateFeedbackCsv({ rows: 300, seed: 'tails' })].join('')) as string[][];
  const columns = rows.shift()!;
  const options = {
    model: 'gpt-4o-mini',
    idColumn: 'id',
    system: 'Classify the sentiment: positive, negative or mixed.',
    prompt: 'Feedback from {{customer}} ({{channel}}): {{text}}',
  };
  const resolve = columnFieldResolver(columns);
  const encodeTail = compileTailEncoder(options, resolve);
  const fromTemplate = compileInputTokenCounter(options, resolve);
  const tails = rows.map((row) => encodeTail(row).tail);
  const expected = tails.map((tail) => {
    const line = JSON.parse(`{${tail}`) as { url: string; body: Record<string, unknown> };
    return requestInputTokens(line.url, line.body, counterForModel('gpt-4o-mini'));
  });
  assert.deepEqual(rows.map(fromTemplate), expected);
});

test('prefixWithin keeps whole pieces up to the token budget', () => {
  const counter = tokenCounter('o200k_base');
  const text = 'Summary: turbulence, delayed baggage, and a very kind crew.';
  const total = counter.count(text);
  for (let max = 0; max <= total; max++) {
    const prefix = counter.prefixWithin(text, max);
    assert.ok(text.startsWith(prefix));
    assert.ok(counter.count(prefix) <= max, `${JSON.stringify(prefix)} is at most ${max} tokens`);
    let longest = '';
    for (const piece of scannerPieces('o200k_base', text)) {
      if (counter.count(longest + piece) > max) break;
      longest += piece;
    }
    assert.equal(prefix, longest, `the longest whole-piece prefix within ${max}`);
  }
  assert.equal(counter.prefixWithin(text, total), text);
});

test('outputTokenBound: Anthropic max_tokens and Gemini maxOutputTokens × candidateCount bound the output', () => {
  assert.deepEqual(outputTokenBound('/v1/messages', { model: 'claude-x', max_tokens: 300 }), {
    tokens: 300,
    from: 'max_tokens',
  });
  assert.deepEqual(
    outputTokenBound('/v1beta/generateContent', {
      generationConfig: { maxOutputTokens: 50, candidateCount: 2 },
    }),
    { tokens: 100, from: 'generationConfig.maxOutputTokens' },
  );
  assert.equal(outputTokenBound('/v1beta/generateContent', { contents: [] }).tokens, undefined);
  assert.deepEqual(outputTokenBound('/v1beta/embedContent', {}), { tokens: 0, from: 'no output' });
});

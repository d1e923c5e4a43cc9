import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { LineChunker, LineCursor, LineSplitter } from '../src/internal/lines.js';
import { expectedOutput } from '../src/results/extract.js';
import { parseLineChunk } from '../src/results/line-chunks.js';
import { readLines } from '../src/server/engine/jsonl-lines.js';
import { parseJsonlChunk } from '../src/sources/parse-chunk.js';
import { chatOutputLine } from './results-support.js';
import { tempDir } from './support.js';

interface Seen {
  number: number;
  text: string;
  size: number;
  oversized: boolean;
}

/** Splits `input` fed in `chunkSize`-byte chunks. */
function split(input: Buffer | string, chunkSize: number, maxLineBytes?: number): Seen[] {
  const bytes = typeof input === 'string' ? Buffer.from(input) : input;
  const seen: Seen[] = [];
  const splitter = new LineSplitter(
    (l) =>
      seen.push({ number: l.number, text: l.bytes.toString('utf8'), size: l.size, oversized: l.oversized }),
    maxLineBytes,
  );
  for (let i = 0; i < bytes.length; i += chunkSize) {
    // A fresh copy per chunk, overwritten afterwards, to prove lines do not keep references to old chunks.
    const chunk = Buffer.from(bytes.subarray(i, i + chunkSize));
    splitter.push(chunk);
    chunk.fill(0x23);
  }
  splitter.end();
  return seen;
}

describe('LineSplitter', () => {
  it('splits LF and CRLF lines, with and without a final newline, at every chunk size', () => {
    const input = 'first\r\nsecond, with émoji 🎉\n\nlast';
    const expected = [
      { number: 1, text: 'first', size: 7, oversized: false },
      {
        number: 2,
        text: 'second, with émoji 🎉',
        size: Buffer.byteLength('second, with émoji 🎉') + 1,
        oversized: false,
      },
      { number: 3, text: '', size: 1, oversized: false },
      { number: 4, text: 'last', size: 4, oversized: false },
    ];
    for (let chunkSize = 1; chunkSize <= input.length + 1; chunkSize++) {
      assert.deepEqual(split(input, chunkSize), expected, `chunk size ${chunkSize}`);
      assert.deepEqual(
        split(`${input}\n`, chunkSize).at(-1),
        { ...expected[3], size: 5 },
        `chunk size ${chunkSize}`,
      );
    }
  });

  it('sizes add up to the input length', () => {
    const input = 'a\r\nbb\n\r\nccc\n';
    for (const chunkSize of [1, 2, 5, 100]) {
      const total = split(input, chunkSize).reduce((sum, l) => sum + l.size, 0);
      assert.equal(total, Buffer.byteLength(input));
    }
  });

  it('emits nothing for empty input', () => {
    assert.deepEqual(split('', 4), []);
  });

  it('counts but drops lines longer than the cap', () => {
    const input = `short\n${'x'.repeat(50)}\nok\n${'y'.repeat(50)}`;
    for (const chunkSize of [3, 7, 64]) {
      const seen = split(input, chunkSize, 10);
      assert.deepEqual(
        seen.map((l) => [l.number, l.text, l.size, l.oversized]),
        [
          [1, 'short', 6, false],
          [2, '', 51, true],
          [3, 'ok', 3, false],
          [4, '', 50, true],
        ],
        `chunk size ${chunkSize}`,
      );
    }
  });
});

/**
 * The lines of `text` by an independent reading: split at `\n`, a trailing `\r` dropped, no line
 * after a final `\n`. Each with its 1-based number, byte range in the input and terminator.
 */
function referenceLines(
  text: string,
): { number: number; text: string; start: number; end: number; terminated: boolean }[] {
  const out = [];
  const parts = text.split('\n');
  let offset = 0;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const terminated = i < parts.length - 1;
    if (!terminated && part === '') break;
    const content = part.endsWith('\r') ? part.slice(0, -1) : part;
    const start = offset;
    out.push({ number: i + 1, text: content, start, end: start + Buffer.byteLength(content), terminated });
    offset += Buffer.byteLength(part) + (terminated ? 1 : 0);
  }
  return out;
}

const SAMPLES = [
  '',
  '\n',
  'one',
  'one\r',
  'a\r\nb\n\n\r\n  \nlast',
  '{"a":1}\r\n\n  \n[1]\n{"b":"é 🎉"}\n',
  '\r\r\n\r',
];

describe('LineCursor', () => {
  it('walks the lines of a buffer as a plain split at \\n does', () => {
    for (const sample of SAMPLES) {
      const cursor = new LineCursor(Buffer.from(sample), 1);
      const seen = [];
      while (cursor.advance()) {
        seen.push({
          number: cursor.line,
          text: cursor.text(),
          start: cursor.start,
          end: cursor.end,
          terminated: cursor.terminated,
        });
      }
      assert.deepEqual(seen, referenceLines(sample), JSON.stringify(sample));
    }
  });

  it('starts where it is told, numbering from the first line given', () => {
    const cursor = new LineCursor(Buffer.from('\uFEFFx\ny'), 7, 3);
    const seen = [];
    while (cursor.advance()) seen.push([cursor.line, cursor.text()]);
    assert.deepEqual(seen, [
      [7, 'x'],
      [8, 'y'],
    ]);
  });
});

describe('LineChunker', () => {
  it('gathers reads up to minBytes and cuts after the last \\n, numbering each chunk', () => {
    const text = Buffer.from('l1\nline two\r\n\nfour\nfive, long enough\nsix');
    for (const read of [1, 2, 3, 5, 8, 64]) {
      for (const minBytes of [0, 4, 16, 100]) {
        const chunker = new LineChunker({ minBytes });
        const chunks = [];
        for (let i = 0; i < text.length; i += read) chunks.push(...chunker.push(text.subarray(i, i + read)));
        chunks.push(...chunker.end());
        const where = `read ${read}, minBytes ${minBytes}`;
        assert.ok(Buffer.concat(chunks.map((c) => c.bytes)).equals(text), where);
        let line = 1;
        chunks.forEach((chunk, i) => {
          assert.equal(chunk.firstLine, line, where);
          if (i < chunks.length - 1) {
            assert.equal(chunk.bytes.at(-1), 0x0a, where);
            assert.ok(chunk.bytes.length >= Math.min(minBytes, 1), where);
          }
          line += chunk.bytes.toString().split('\n').length - 1;
        });
      }
    }
  });

  it('never keeps more of an unfinished line than the cap', () => {
    const chunker = new LineChunker({ maxLineBytes: 10 });
    const long = 'z'.repeat(1000);
    const chunks = [];
    for (let i = 0; i < long.length; i += 7) chunks.push(...chunker.push(Buffer.from(long.slice(i, i + 7))));
    chunks.push(...chunker.push(Buffer.from('\nok\n')), ...chunker.end());
    assert.deepEqual(
      chunks.map((c) => [c.firstLine, c.bytes.toString(), c.oversize]),
      [
        [1, '', 1001],
        [2, 'ok\n', undefined],
      ],
    );
  });
});

describe('every line reader agrees', () => {
  const [a, b, c] = ['a', 'b', 'c'].map((id) => chatOutputLine(id, `answer ${id}`));
  const text = `${a}\r\n\n   \n${b}\n\r\n${c}\r`;
  const expected = referenceLines(text).filter((l) => l.text.trim() !== '');

  it('the JSONL source parser', () => {
    const parsed = parseJsonlChunk(Buffer.from(text), 1);
    assert.deepEqual(
      expected.map((l) => [l.number, l.start, l.end]),
      [...parsed.lines].map((line, i) => [line, parsed.starts[i], parsed.ends[i]]),
    );
  });

  it('the output-line parser', () => {
    const endpoint = '/v1/chat/completions';
    const ctx = { endpoint, expect: expectedOutput({ endpoint, body: {} }) };
    const parsed = parseLineChunk({ bytes: Buffer.from(text), firstLine: 1 }, ctx, 'out.jsonl');
    assert.deepEqual(
      parsed.lines.map((line, i) => [line, parsed.outcomes[i]!.customId]),
      expected.map((l) => [l.number, JSON.parse(l.text).custom_id]),
    );
    assert.equal(parsed.lastLine, referenceLines(text).length);
  });

  it("the local server's file reader", async () => {
    const file = path.join(tempDir('bp-lines-'), 'in.jsonl');
    writeFileSync(file, text);
    const seen = [];
    for await (const line of readLines(file)) seen.push(line);
    const all = referenceLines(text);
    assert.deepEqual(
      seen.map((l) => [l.lineNo, l.text, l.terminated]),
      all.map((l) => [l.number, l.text, l.terminated]),
    );
    // `end` is where the next line starts (the file's size after the last).
    assert.deepEqual(
      seen.map((l) => l.end),
      [...all.slice(1).map((l) => l.start), Buffer.byteLength(text)],
    );
  });

  it('the request-file splitter', () => {
    const seen = split(text, 3).map((l) => [l.number, l.text]);
    assert.deepEqual(
      seen,
      referenceLines(text).map((l) => [l.number, l.text]),
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineSplitter } from '../src/validate/line-splitter.js';

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

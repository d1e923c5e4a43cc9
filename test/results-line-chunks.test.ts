import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import {
  alignedChunks,
  CHUNK_BYTES,
  fileChunks,
  type LineChunk,
  lineChunks,
} from '../src/results/line-chunks.js';
import { tempDir } from './support.js';

/** A deterministic PRNG, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Lines of mixed lengths, one of them longer than a chunk, some CRLF-terminated. */
function sampleText(random: () => number): string {
  const lines: string[] = [];
  for (let i = 0; lines.join('').length < 3 * CHUNK_BYTES; i++) {
    const length = i === 40 ? CHUNK_BYTES + 1000 : Math.floor(random() * 3000);
    lines.push(`${i}:${'x'.repeat(length)}é${random() < 0.2 ? '\r\n' : '\n'}`);
  }
  return `${lines.join('')}last line without a newline`;
}

/** The text cut into pieces of random sizes, as strings, Buffers and Uint8Array views. */
function* pieces(bytes: Buffer, random: () => number): Generator<Buffer | string | Uint8Array> {
  for (let offset = 0; offset < bytes.length; ) {
    const size = 1 + Math.floor(random() * (random() < 0.1 ? 2 * CHUNK_BYTES : 70_000));
    const piece = bytes.subarray(offset, offset + size);
    offset += piece.length;
    const kind = Math.floor(random() * 3);
    if (kind === 0) yield Buffer.from(piece);
    else if (kind === 1) yield new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength);
    else yield isAscii(piece) ? piece.toString('latin1') : piece;
  }
}

function isAscii(bytes: Buffer): boolean {
  return bytes.every((b) => b < 0x80);
}

test('lineChunks gives back every byte, in whole lines, numbered from 1, whatever the reads', async () => {
  for (const seed of [1, 2, 3]) {
    const random = rng(seed);
    const text = Buffer.from(sampleText(random), 'utf8');
    const input = Readable.from([...pieces(text, random)], { objectMode: true });
    const chunks: LineChunk[] = [];
    for await (const chunk of lineChunks(input)) chunks.push({ ...chunk, bytes: Buffer.from(chunk.bytes) });

    assert.ok(Buffer.concat(chunks.map((c) => c.bytes)).equals(text), `seed ${seed}: bytes differ`);
    let line = 1;
    chunks.forEach((chunk, i) => {
      assert.equal(chunk.firstLine, line, `seed ${seed}: chunk ${i} starts at the wrong line`);
      if (i < chunks.length - 1)
        assert.equal(chunk.bytes.at(-1), 0x0a, `seed ${seed}: chunk ${i} cuts a line`);
      line += chunk.bytes.toString('latin1').split('\n').length - 1;
    });
    // Small reads are gathered: chunks come close to CHUNK_BYTES (less at most a line each).
    const expected = Math.ceil(text.length / (CHUNK_BYTES - 3100)) + 2;
    assert.ok(chunks.length <= expected, `seed ${seed}: ${chunks.length} chunks, expected ≤ ${expected}`);
  }
});

test('lineChunks over fileChunks (one reused read buffer) gives back a file intact', async () => {
  const text = Buffer.from(sampleText(rng(9)), 'utf8');
  const file = path.join(tempDir('bp-line-chunks-'), 'out.jsonl');
  writeFileSync(file, text);
  const chunks: Buffer[] = [];
  // Copied at once, as the parsers do: a chunk may be a view of the buffer the next read reuses.
  for await (const chunk of lineChunks(fileChunks(file))) chunks.push(Buffer.from(chunk.bytes));
  assert.ok(chunks.length > 2, `${chunks.length} chunks`);
  assert.ok(Buffer.concat(chunks).equals(text));
});

test('fileChunks: pieces end at a line end, a line longer than its buffer still arrives whole, an empty file gives none', async () => {
  const dir = tempDir('bp-file-chunks-');
  const text = Buffer.from(`${sampleText(rng(11))}\n${'y'.repeat(2 * CHUNK_BYTES)}\nend\n`, 'utf8');
  const file = path.join(dir, 'long.jsonl');
  writeFileSync(file, text);
  const pieces = Array.from(fileChunks(file), (piece) => Buffer.from(piece));
  assert.ok(Buffer.concat(pieces).equals(text));
  const unaligned = pieces.filter((piece) => piece[piece.length - 1] !== 0x0a);
  // Only the line longer than the buffer is cut mid-line, in pieces holding no line end at all.
  assert.ok(unaligned.length >= 1);
  for (const piece of unaligned) assert.equal(piece.indexOf(0x0a), -1);
  const lines: Buffer[] = [];
  for await (const chunk of lineChunks(fileChunks(file))) lines.push(Buffer.from(chunk.bytes));
  assert.ok(Buffer.concat(lines).equals(text));
  const empty = path.join(dir, 'empty.jsonl');
  writeFileSync(empty, '');
  assert.equal(Array.from(fileChunks(empty)).length, 0);
});

test('alignedChunks: a stream of any reads comes back intact in line-aligned chunks from one reused buffer, which lineChunks passes on uncopied', async () => {
  for (const seed of [4, 5]) {
    const random = rng(seed);
    const text = Buffer.from(`${sampleText(random)}\n${'y'.repeat(2 * CHUNK_BYTES)}\nend`, 'utf8');
    const copies: Buffer[] = [];
    const views = new Set<ArrayBufferLike>();
    for await (const piece of alignedChunks(pieces(text, random))) {
      copies.push(Buffer.from(piece));
      views.add(piece.buffer);
    }
    assert.ok(Buffer.concat(copies).equals(text), `seed ${seed}: bytes differ`);
    assert.equal(views.size, 1, `seed ${seed}: every chunk is a view of the same buffer`);
    // Only the last piece and those of the line longer than the buffer end mid-line, and those hold
    // no line end at all.
    const unaligned = copies.slice(0, -1).filter((piece) => piece.at(-1) !== 0x0a);
    assert.ok(unaligned.length >= 1, `seed ${seed}: the long line comes in pieces`);
    for (const piece of unaligned) assert.equal(piece.indexOf(0x0a), -1);
    // A full buffer is cut at its last line end: short of CHUNK_BYTES only before a line longer
    // than the buffer's slack (the text has two).
    const short = copies.slice(0, -1).filter((p) => p.at(-1) === 0x0a && p.length < CHUNK_BYTES);
    assert.ok(short.length <= 2, `seed ${seed}: ${short.length} aligned chunks short of CHUNK_BYTES`);

    const lines: LineChunk[] = [];
    const byBuffer = new Map<ArrayBufferLike, number>();
    for await (const chunk of lineChunks(alignedChunks(pieces(text, rng(seed))))) {
      byBuffer.set(chunk.bytes.buffer, (byBuffer.get(chunk.bytes.buffer) ?? 0) + 1);
      lines.push({ ...chunk, bytes: Buffer.from(chunk.bytes) });
    }
    // lineChunks copies only what it gathers (the long lines' pieces, the chunks short of its size
    // and the last): the rest are views of alignedChunks' one buffer.
    const uncopied = Math.max(...byBuffer.values());
    assert.ok(
      uncopied >= lines.length - 5,
      `seed ${seed}: ${uncopied} of ${lines.length} chunks passed on as they came`,
    );
    assert.ok(Buffer.concat(lines.map((c) => c.bytes)).equals(text), `seed ${seed}: lines differ`);
    assert.equal(lines.at(-1)!.firstLine, text.toString('latin1').split('\n').length);
  }
  for await (const _ of alignedChunks([])) assert.fail('an empty stream gives no chunk');
});

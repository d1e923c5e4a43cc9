import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { createRng } from '../bench/generate.js';
import { parseJsonLossless } from '../src/internal/lossless-json.js';
import { type Chunk, countLineBreaks, recordChunks } from '../src/sources/chunker.js';
import { openInput } from '../src/sources/input.js';
import {
  CSV_PARSE_OPTIONS,
  csvRecordBounds,
  parseCsvChunk,
  parseCsvHeader,
  parseJsonlChunk,
} from '../src/sources/parse-chunk.js';
import type { Envelope } from '../src/types.js';
import { randomCsv } from './input-support.js';
import { pythonCsvRows, pythonFirstInvalidUtf8Of } from './python-reference.js';
import { tempDir } from './support.js';

async function* pieces(text: string, size: number): AsyncGenerator<Buffer> {
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

/** Parses a whole CSV the way prepare does (chunk by chunk) and returns rows with their lines. */
async function chunkedRows(text: string, pieceSize: number, targetBytes: number) {
  const rows: { line: number; values: string[] }[] = [];
  let columns: string[] | undefined;
  const input = await openInput(pieces(text, pieceSize), { name: 't.csv' });
  let chunks = 0;
  let previous: Buffer | undefined;
  for await (const chunk of recordChunks(input.bytes, { syntax: 'csv', targetBytes })) {
    chunks++;
    if (previous) {
      assert.ok(/[\r\n]$/.test(previous.toString('latin1')), 'a chunk ends after a line break');
      assert.ok(!(previous.at(-1) === 0x0d && chunk.bytes[0] === 0x0a), 'a CRLF is never cut');
    }
    previous = chunk.bytes;
    let { bytes, firstLine } = chunk;
    if (!columns) {
      const header = parseCsvHeader(chunk, 't.csv');
      columns = header.columns;
      firstLine += countLineBreaks(bytes, 'csv', 0, header.bodyStart);
      bytes = bytes.subarray(header.bodyStart);
    }
    const parsed = parseCsvChunk(bytes, firstLine, 't.csv');
    parsed.values.forEach((values, i) => {
      rows.push({ line: parsed.lines[i]!, values });
    });
  }
  return { columns, rows, chunks };
}

const TRICKY = [
  'id,text,note',
  '1,"a, b","say ""hi"""',
  '2,"line one',
  'line two',
  '',
  'line four",x',
  '',
  '3,plain,"""quoted"""',
  '4,"😀 emoji, é",""',
  '5,"ends with newline',
  '",last',
].join('\n');

test('record chunks split only between records, whatever the piece and chunk sizes', async () => {
  const whole = parse(TRICKY, { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  for (const pieceSize of [1, 2, 3, 7, 64]) {
    for (const target of [1, 5, 16, 1 << 20]) {
      const { columns, rows } = await chunkedRows(TRICKY, pieceSize, target);
      assert.deepEqual(columns, ['id', 'text', 'note']);
      assert.deepEqual(
        rows.map((r) => Object.fromEntries(columns!.map((c, i) => [c, r.values[i]]))),
        whole,
        `piece ${pieceSize}, target ${target}`,
      );
      assert.deepEqual(
        rows.map((r) => r.line),
        [2, 3, 8, 9, 10],
        `lines with piece ${pieceSize}, target ${target}`,
      );
    }
  }
});

test("random CSV with every record ending chunks into Python's records and lines, at any piece and chunk size", async () => {
  const dir = tempDir();
  for (const seed of [1, 2, 3]) {
    const text = randomCsv(seed, 60);
    const file = path.join(dir, `random-${seed}.csv`);
    writeFileSync(file, text);
    const [header, ...expected] = pythonCsvRows(file);
    for (const pieceSize of [1, 2, 3, 5, 64, 4096]) {
      for (const target of [1, 7, 100, 1 << 20]) {
        const { columns, rows, chunks } = await chunkedRows(text, pieceSize, target);
        const what = `seed ${seed}, piece ${pieceSize}, target ${target}`;
        assert.deepEqual(columns, header!.values, what);
        assert.deepEqual(rows, expected, what);
        if (target === 1) assert.ok(chunks > expected.length / 2, `${what}: ${chunks} chunks`);
      }
    }
  }
});

test('a BOM is stripped and CRLF chunks keep line numbers', async () => {
  const text = `\ufeffid,text\r\n1,a\r\n\r\n2,"b\r\nc"\r\n3,d`;
  const { columns, rows } = await chunkedRows(text, 3, 4);
  assert.deepEqual(columns, ['id', 'text']);
  assert.deepEqual(
    rows.map((r) => [r.line, ...r.values]),
    [
      [2, '1', 'a'],
      [4, '2', 'b\r\nc'],
      [6, '3', 'd'],
    ],
  );
});

test('record bounds give each record its exact source text', () => {
  const body = Buffer.from('1,"x\ny"\r\n\n2,z\n');
  const { lines, starts, ends } = csvRecordBounds(body, 10, 2);
  assert.deepEqual([...lines], [10, 13]);
  assert.equal(body.toString('utf8', starts[0], ends[0]), '1,"x\ny"');
  assert.equal(body.toString('utf8', starts[1], ends[1]), '2,z');
});

test('an unclosed quote is a parse error naming the line', async () => {
  await assert.rejects(
    chunkedRows('id,t\n1,a\n2,"open\n3,b\n', 4, 8),
    (err: Error & { line?: number; code?: string }) => {
      assert.equal(err.code, 'BP_PARSE');
      assert.equal(err.line, 3);
      return true;
    },
  );
});

test('JSONL chunks: blank lines skipped, bad lines reported per line, CRLF tolerated', () => {
  const parsed = parseJsonlChunk(Buffer.from('{"a":1}\r\n\n  \n[1]\n{bad\n{"b":2}'), 5);
  assert.deepEqual([...parsed.lines], [5, 8, 9, 10]);
  assert.deepEqual(parsed.values[0], { a: 1 });
  assert.match((parsed.values[1] as { message: string }).message, /expected a JSON object/);
  assert.match((parsed.values[2] as { message: string }).message, /invalid JSON/);
  assert.deepEqual(parsed.values[3], { b: 2 });
});

test('lossless JSON keeps numbers JSON.parse would change, and nothing else', () => {
  assert.deepEqual(
    parseJsonLossless('{"id":123456789012345678,"n":3,"f":1.5,"z":1.50,"e":1e3,"s":"123456789012345678"}'),
    {
      id: '123456789012345678',
      n: 3,
      f: 1.5,
      z: '1.50',
      e: '1e3',
      s: '123456789012345678',
    },
  );
  assert.deepEqual(parseJsonLossless('{"k":"a \\"1.50\\" b","v":[-12345678901234567890, 2]}'), {
    k: 'a "1.50" b',
    v: ['-12345678901234567890', 2],
  });
  assert.deepEqual(parseJsonLossless('{"plain": [1, 2.5, -3]}'), { plain: [1, 2.5, -3] });
});

test('the stream sources read bare-CR CSV; invalid UTF-8 comes as a reject naming the line, and stops a pipeline', async () => {
  const { batchSink, csvSource, jsonlEncode, jsonlSource, promptTemplate } = await import(
    '../src/streams.js'
  );
  const { Ledger } = await import('../src/ledger/ledger.js');
  const { pipeline } = await import('node:stream/promises');
  type Env = Envelope & { reject?: { code: string; message: string } };
  const read = async (source: AsyncIterable<unknown>) => {
    const out: { line: number; record: unknown; reject?: Env['reject'] }[] = [];
    for await (const env of source as AsyncIterable<Env>)
      out.push({ line: env.line, record: env.record, ...(env.reject ? { reject: env.reject } : {}) });
    return out;
  };
  assert.deepEqual(await read(csvSource(Readable.from([Buffer.from('id,t\r1,"a\rb"\r2,c')]))), [
    { line: 2, record: { id: '1', t: 'a\rb' } },
    { line: 4, record: { id: '2', t: 'c' } },
  ]);
  const latin1Csv = () => Readable.from([Buffer.from('id,t\r\n1,a\r\n2,caf\xe9\r\n', 'latin1')]);
  const csvRead = await read(csvSource(latin1Csv(), { name: 'x.csv' }));
  assert.equal(csvRead[0]!.reject, undefined);
  assert.equal(csvRead[1]!.line, 3);
  assert.equal(csvRead[1]!.reject?.code, 'BP_ENCODING');
  assert.match(
    csvRead[1]!.reject!.message,
    /invalid UTF-8 at byte offset 16 \(column t\); the file looks like windows-1252/,
  );
  const jsonlRead = await read(
    jsonlSource(Readable.from([Buffer.from('{"a":1}\n{"a":"\x92"}\n', 'latin1')])),
  );
  assert.deepEqual(
    jsonlRead.map((e) => [e.line, e.reject?.code]),
    [
      [1, undefined],
      [2, 'BP_ENCODING'],
    ],
  );
  // Without onReject, the sink stops the pipeline at the bad record, naming its file and line.
  const dir = tempDir();
  const ledger = Ledger.open(path.join(dir, 'l.db'));
  await assert.rejects(
    pipeline(
      csvSource(latin1Csv(), { name: 'x.csv' }),
      promptTemplate({ model: 'm', prompt: '{{t}}' }),
      jsonlEncode(),
      batchSink({ ledger, outDir: path.join(dir, 'out') }),
    ),
    (err: Error & { code?: string; file?: string; line?: number }) =>
      err.code === 'BP_ENCODING' && err.file === 'x.csv' && err.line === 3,
  );
  ledger.close();
});

test('records over maxRecordBytes become oversize chunks (line, size, first bytes); the rest arrive whole, spilled or not', async () => {
  const random = createRng(9);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const atoms = ['ab', '""', '\r', '\n', '\r\n', 'é', ','];
  const endings = ['\r', '\n', '\r\n'];
  const records: { raw: string; start: number }[] = [];
  let text = 'id,text\r\n';
  for (let r = 0; r < 40; r++) {
    // Small, large enough to be spilled (over 100 bytes), or over the 500-byte limit.
    const size = pick([20, 20, 300, 2000]);
    let payload = '';
    while (Buffer.byteLength(payload) < size) payload += pick(atoms);
    const raw = `${r},"${payload}"`;
    records.push({ raw, start: Buffer.byteLength(text) });
    text += raw + pick(endings) + (random() < 0.2 ? pick(endings) : '');
  }
  const bytes = Buffer.from(text);
  const lineAt = (offset: number) =>
    (bytes
      .subarray(0, offset)
      .toString()
      .match(/\r\n|\r|\n/g)?.length ?? 0) + 1;
  const expected = records.map(({ raw, start }) => {
    const size = Buffer.byteLength(raw);
    return size > 500
      ? { line: lineAt(start), oversize: size, prefix: raw.slice(0, 300) }
      : { line: lineAt(start), values: parse(raw, CSV_PARSE_OPTIONS)[0] as string[] };
  });
  const spill = path.join(tempDir(), 'spill.partial');
  for (const pieceSize of [1, 3, 64, 1000]) {
    const got: unknown[] = [];
    const pieces = async function* () {
      for (let i = 0; i < bytes.length; i += pieceSize) yield bytes.subarray(i, i + pieceSize);
    };
    let header = true;
    for await (const chunk of recordChunks(pieces(), {
      syntax: 'csv',
      targetBytes: 256,
      maxRecordBytes: 500,
      spillPath: () => spill,
      spillAfterBytes: 100,
    })) {
      if (chunk.oversize) {
        assert.ok(chunk.bytes.length <= 1024);
        got.push({
          line: chunk.firstLine,
          oversize: chunk.oversize.bytes,
          prefix: chunk.bytes.toString().slice(0, 300),
        });
        continue;
      }
      let { bytes: body, firstLine } = chunk;
      if (header) {
        header = false;
        const { bodyStart } = parseCsvHeader(chunk, 't.csv');
        firstLine += countLineBreaks(body, 'csv', 0, bodyStart);
        body = body.subarray(bodyStart);
      }
      const parsed = parseCsvChunk(body, firstLine, 't.csv');
      parsed.values.forEach((values, i) => {
        got.push({ line: parsed.lines[i], values });
      });
    }
    assert.deepEqual(got, expected, `piece ${pieceSize}`);
    assert.equal(existsSync(spill), false, 'the spill file is removed');
  }

  // Without rejects the input stops at the first oversize record: exact when it lies whole in one
  // piece read, else as soon as it grows past the limit.
  const first = expected.find((e) => 'oversize' in e)!;
  for (const [size, complete] of [
    [bytes.length, true],
    [64, false],
  ] as const) {
    const stopped: Chunk[] = [];
    const pieces = Readable.from(
      Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) =>
        bytes.subarray(i * size, (i + 1) * size),
      ),
    );
    for await (const chunk of recordChunks(pieces, {
      syntax: 'csv',
      maxRecordBytes: 500,
      onOversize: 'stop',
    })) {
      stopped.push(chunk);
    }
    assert.equal(stopped.at(-1)?.oversize?.complete, complete, `piece ${size}`);
    assert.equal(stopped.at(-1)?.firstLine, first.line);
    assert.equal(stopped.filter((c) => c.oversize).length, 1);
  }
});

test('invalid UTF-8 is located where Python locates it, and only where isUtf8 fails', async () => {
  const { isUtf8 } = await import('node:buffer');
  const { invalidUtf8Offsets } = await import('../src/sources/utf8.js');
  const random = createRng(5);
  const atoms = [
    [0x61],
    [0xc3, 0xa9],
    [0xe2, 0x82, 0xac],
    [0xf0, 0x9f, 0x98, 0x80],
    [0x80],
    [0xc3],
    [0xe2, 0x82],
    [0xed, 0xa0, 0x80], // a surrogate, not UTF-8
    [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
    [0xc0, 0xaf], // overlong
    [0xe0, 0x80, 0xaf], // overlong
    [0xff],
  ];
  const samples = Array.from({ length: 3000 }, () =>
    Buffer.from(
      Array.from(
        { length: 1 + Math.floor(random() * 6) },
        () => atoms[Math.floor(random() * atoms.length)]!,
      ).flat(),
    ),
  );
  const expected = pythonFirstInvalidUtf8Of(samples);
  samples.forEach((sample, i) => {
    const offsets = invalidUtf8Offsets(sample, 0, sample.length);
    assert.equal(offsets[0] ?? null, expected[i], sample.toString('hex'));
    assert.equal(offsets.length === 0, isUtf8(sample), sample.toString('hex'));
  });
});

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { connectionOf, Ledger } from '../src/ledger/ledger.js';
import { LedgerPaths } from '../src/ledger/paths.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../src/ledger/schema.js';
import { tempDir } from './support.js';

/** A ledger file as a batchpipe with only the first `version` migrations left it. */
function ledgerAtVersion(version: number, setup: (db: Database.Database) => void): string {
  const file = path.join(tempDir(), 'ledger.db');
  const db = new Database(file);
  for (const migration of MIGRATIONS.slice(0, version)) {
    if (typeof migration === 'string') db.exec(migration);
    else migration(db, { paths: new LedgerPaths(file) });
  }
  db.pragma(`user_version = ${version}`);
  setup(db);
  db.close();
  return file;
}

test('a version 1 ledger is migrated: its source records move to the records table, byte for byte', () => {
  const records = [Buffer.from('1,"a ""quoted"" text"\r\n'), Buffer.from([0xe2, 0x82, 0xac, 0x0a])];
  const file = ledgerAtVersion(1, (db) => {
    const insert = db.prepare(
      'INSERT INTO requests (seq, line, custom_id, record, state) VALUES (?, ?, ?, ?, ?)',
    );
    insert.run(0, 2, 'a', records[0], 'succeeded');
    insert.run(1, 3, 'b', records[1], 'staged');
  });

  const ledger = Ledger.open(file);
  try {
    assert.equal(connectionOf(ledger).pragma('user_version', { simple: true }), SCHEMA_VERSION);
    const columns = connectionOf(ledger)
      .prepare<[], string>("SELECT name FROM pragma_table_info('requests')")
      .pluck()
      .all();
    assert.ok(!columns.includes('record'), `requests still has a record column: ${columns.join(', ')}`);
    assert.deepEqual(ledger.keptRecord(0), { kind: 'request', line: 2, customId: 'a', record: records[0] });
    assert.deepEqual(ledger.keptRecord(1), { kind: 'request', line: 3, customId: 'b', record: records[1] });
    const states = connectionOf(ledger).prepare('SELECT seq, state FROM requests ORDER BY seq').all();
    assert.deepEqual(states, [
      { seq: 0, state: 'succeeded' },
      { seq: 1, state: 'staged' },
    ]);
  } finally {
    ledger.close();
  }
});

test('a ledger from a newer batchpipe is refused, not misread', () => {
  const file = ledgerAtVersion(SCHEMA_VERSION, (db) => db.pragma(`user_version = ${SCHEMA_VERSION + 1}`));
  assert.throws(() => Ledger.open(file), /newer than this batchpipe understands/);
});

test('a request that loses to an earlier custom_id leaves no record behind', () => {
  const ledger = Ledger.open(path.join(tempDir(), 'ledger.db'));
  try {
    const rows = Array.from({ length: 20 }, (_, i) => ({
      seq: i,
      line: i + 2,
      customId: i === 17 ? 'id-3' : `id-${i}`,
      record: Buffer.from(`row ${i}`),
      fileId: 1,
    }));
    const lost = ledger.transaction(() => ledger.insertRequests(rows));
    assert.deepEqual(lost, [17]);
    assert.equal(ledger.keptRecord(17), undefined);
    const recordSeqs = connectionOf(ledger)
      .prepare<[], number>('SELECT seq FROM records ORDER BY seq')
      .pluck()
      .all();
    assert.deepEqual(
      recordSeqs,
      rows.map((r) => r.seq).filter((seq) => seq !== 17),
    );
    assert.deepEqual(ledger.keptRecord(16), {
      kind: 'request',
      line: 18,
      customId: 'id-16',
      record: Buffer.from('row 16'),
    });
  } finally {
    ledger.close();
  }
});

test('request file paths are kept relative to the ledger, so the folder can move; a file elsewhere stays absolute', () => {
  const dir = tempDir();
  const ledgerPath = path.join(dir, 'runs', 'x.db');
  const ledger = Ledger.open(ledgerPath);
  const inside = path.join(dir, 'runs', 'x.requests', 'a.jsonl');
  const outside = path.join(tempDir(), 'b.jsonl');
  const file = { model: null, endpoint: '/v1/chat/completions', attempt: 1, firstSeq: 0 };
  try {
    ledger.insertFile({ ...file, name: 'a.jsonl', path: path.relative(process.cwd(), inside) });
    ledger.insertFile({ ...file, name: 'b.jsonl', path: outside });
    const stored = connectionOf(ledger)
      .prepare<[], string>('SELECT path FROM files ORDER BY id')
      .pluck()
      .all();
    assert.deepEqual(stored, [path.join('x.requests', 'a.jsonl'), outside]);
    assert.deepEqual(
      ledger.files().map((f) => path.resolve(f.path)),
      [inside, outside],
    );
  } finally {
    ledger.close();
  }
});

test('a version 2 ledger is migrated: paths relative to where its command ran become relative to the ledger', () => {
  const dir = tempDir();
  const ledgerPath = path.join(dir, 'runs', 'x.db');
  const requests = path.join(dir, 'runs', 'x.requests');
  mkdirSync(requests, { recursive: true });
  for (const name of ['here.jsonl', 'there.jsonl']) writeFileSync(path.join(requests, name), '{}\n');
  const elsewhere = path.join(tempDir(), 'abs.jsonl');
  const outside = path.join(tempDir(), 'x.requests', 'twin.jsonl');
  mkdirSync(path.dirname(outside));
  for (const file of [elsewhere, outside, path.join(requests, 'twin.jsonl')]) writeFileSync(file, '{}\n');
  const legacy = [
    // found from this working directory, as the command that wrote it named it
    path.relative(process.cwd(), path.join(requests, 'here.jsonl')),
    // written by a command run in `dir`: not found from here, found by its tail beside the ledger
    path.join('runs', 'x.requests', 'there.jsonl'),
    // found from here, outside the ledger's folder: that file, not its namesake beside the ledger
    path.relative(process.cwd(), outside),
    elsewhere,
  ];
  mkdirSync(path.dirname(ledgerPath), { recursive: true });
  const db = new Database(ledgerPath);
  for (const migration of MIGRATIONS.slice(0, 2)) db.exec(migration as string);
  db.pragma('user_version = 2');
  const insert = db.prepare(
    "INSERT INTO files (name, path, endpoint, first_seq, complete) VALUES (?, ?, '/v1/chat/completions', 0, 1)",
  );
  for (const [i, p] of legacy.entries()) insert.run(`f${i}`, p);
  db.close();

  const ledger = Ledger.open(ledgerPath);
  try {
    const stored = connectionOf(ledger)
      .prepare<[], string>('SELECT path FROM files ORDER BY id')
      .pluck()
      .all();
    assert.deepEqual(stored, [
      path.join('x.requests', 'here.jsonl'),
      path.join('x.requests', 'there.jsonl'),
      outside,
      elsewhere,
    ]);
    for (const f of ledger.files()) assert.ok(existsSync(f.path), `${f.path} resolves`);
  } finally {
    ledger.close();
  }
});

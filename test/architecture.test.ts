/**
 * The house's walls, checked on the source: every relative import under src/ (static, type-only,
 * re-exports, dynamic `import()`, and the `new URL('./x-worker.js', import.meta.url)` that starts a
 * worker) must point down the room order below or stay in its room, no module may reach itself
 * through its imports, and SQL is written only in src/ledger/ (and in the local server, which keeps
 * its own store). Each failure names the importing file and the import.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { REPO_ROOT } from './support.js';

const SRC = path.join(REPO_ROOT, 'src');

/**
 * Rooms from low to high: a module may import its own room and the rooms of lower levels. Rooms
 * that share a level may import each other, except where the level is `siblings` (prepare and
 * results each build on what lies below them, never on each other).
 */
const LEVELS: { rooms: string[]; siblings?: boolean }[] = [
  { rooms: ['errors.ts', 'types.ts', 'events.ts'] }, // plain data contracts, error codes, event types
  { rooms: ['internal'] }, // one of each mechanism, never exported: lines, worker pool, thread errors, JSON, CSV cells
  { rooms: ['ledger'] }, // the only room with SQL
  { rooms: ['sources', 'transforms', 'validate', 'sink', 'cost', 'dialects'] }, // the stages' pure cores, token counts, providers' request dialects
  { rooms: ['prepare', 'results'], siblings: true },
  { rooms: ['server'] }, // apart: see SERVER_MAY_IMPORT
  { rooms: ['providers'] },
  { rooms: ['scheduler'] },
  { rooms: ['streams.ts', 'index.ts'] },
  { rooms: ['cli'] },
];

/**
 * The local server stands apart: it may use the shared mechanisms, the data contracts and errors, the
 * JSON array scanner (sources) and token counting (cost), never the ledger, prepare or the scheduler.
 */
const SERVER_MAY_IMPORT = ['server', 'internal', 'errors.ts', 'types.ts', 'sources', 'cost'];

/** The grep of issue 12: SQL statements and pragmas. */
const SQL = /SELECT |INSERT INTO|UPDATE [a-z_]+ SET|DELETE FROM|PRAGMA|CREATE (TABLE|INDEX)/;

interface Arrow {
  from: string;
  to: string;
  /** The import as written, for the message. */
  spec: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** A repo-relative path with forward slashes: `src/sink/batch-writer.ts`. */
function rel(file: string): string {
  return path.relative(REPO_ROOT, file).split(path.sep).join('/');
}

const WORKER_URL = /new URL\(\s*['"](\.[^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g;

/** Every relative import of every module under src/, resolved to the .ts file it names. */
function arrows(): Arrow[] {
  return sourceFiles(SRC).flatMap((file) => {
    const text = readFileSync(file, 'utf8');
    const specs = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
    for (const m of text.matchAll(WORKER_URL)) specs.push(m[1]!);
    return specs
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => ({
        from: rel(file),
        to: rel(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'))),
        spec,
      }))
      .filter((a) => a.to.startsWith('src/')); // package.json, for the version
  });
}

/** The room of a module: its folder under src/, or its file name for a module at the top. */
function roomOf(module: string): string {
  return module.split('/')[1]!;
}

function levelOf(room: string): number {
  const level = LEVELS.findIndex((l) => l.rooms.includes(room));
  assert.notEqual(level, -1, `src/${room} is in no room of the order: add it to LEVELS in this test`);
  return level;
}

/** Why an arrow goes against the order, or undefined when it does not. */
function violation(arrow: Arrow): string | undefined {
  const from = roomOf(arrow.from);
  const to = roomOf(arrow.to);
  if (from === to) return undefined;
  if (from === 'server' && !SERVER_MAY_IMPORT.includes(to)) {
    return `the local server stands apart and may import only ${SERVER_MAY_IMPORT.join(', ')}`;
  }
  const [a, b] = [levelOf(from), levelOf(to)];
  if (b > a) return `${from} may not import ${to}, a room above it`;
  if (a === b && LEVELS[a]!.siblings) return `${from} and ${to} are siblings and may not import each other`;
  return undefined;
}

/** The first import cycle found, as the chain of modules, or undefined. */
function findCycle(all: Arrow[]): string[] | undefined {
  const out = new Map<string, Arrow[]>();
  for (const a of all) out.set(a.from, [...(out.get(a.from) ?? []), a]);
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (module: string): string[] | undefined => {
    if (state.get(module) === 'done') return undefined;
    if (state.get(module) === 'open') return [...stack.slice(stack.indexOf(module)), module];
    state.set(module, 'open');
    stack.push(module);
    for (const a of out.get(module) ?? []) {
      const cycle = visit(a.to);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(module, 'done');
    return undefined;
  };
  for (const module of out.keys()) {
    const cycle = visit(module);
    if (cycle) return cycle;
  }
  return undefined;
}

describe('architecture', () => {
  const all = arrows();

  it('reads the imports it checks', () => {
    // The scan itself: a module known to import another by each kind of reference.
    const has = (from: string, to: string) => all.some((a) => a.from === from && a.to === to);
    assert.ok(has('src/results/write-results.ts', 'src/results/format-pages.ts'), 'a static import');
    assert.ok(has('src/results/format-pages.ts', 'src/results/format-worker.ts'), 'a worker URL');
    assert.ok(has('src/results/apply.ts', 'src/results/output-schema.ts'), 'a dynamic import()');
    assert.ok(all.length > 300, `only ${all.length} imports found`);
  });

  it('has no import cycle', () => {
    const cycle = findCycle(all);
    assert.equal(cycle, undefined, `import cycle: ${cycle?.join(' -> ')}`);
  });

  it('imports only down the room order', () => {
    const found = all
      .map((a) => ({ arrow: a, why: violation(a) }))
      .filter((v) => v.why !== undefined)
      .map((v) => `${v.arrow.from} imports '${v.arrow.spec}': ${v.why}`);
    assert.deepEqual(found, []);
  });

  it('exports nothing of src/internal from the public API', () => {
    const found = all
      .filter((a) => a.from === 'src/index.ts' && roomOf(a.to) === 'internal')
      .map((a) => `src/index.ts imports '${a.spec}'`);
    assert.deepEqual(found, []);
  });

  it('starts workers only by URL: no module imports a worker script for its code', () => {
    const found = sourceFiles(SRC)
      .flatMap((file) => {
        const text = readFileSync(file, 'utf8');
        return [...text.matchAll(/^import (?!type )[^;]*?from '(\.[^']*-worker\.js)'/gm)].map(
          (m) => `${rel(file)} imports '${m[1]}'`,
        );
      })
      .filter((line) => line !== '');
    assert.deepEqual(found, []);
  });

  it("keeps zod out of prepare's encode worker: no static import chain from it reaches the schemas", () => {
    // What Node loads when the worker starts: the compiled modules' static imports (a type-only
    // import may still load its module, so the emitted JS is walked, not the source).
    const dist = path.join(REPO_ROOT, 'dist', 'src');
    const staticImports = /^(?:import|export)\s[^;]*?from\s+'([^']+)'|^import\s+'([^']+)'/gm;
    const seen = new Set<string>();
    const packages = new Set<string>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const m of readFileSync(file, 'utf8').matchAll(staticImports)) {
        const spec = (m[1] ?? m[2])!;
        if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
        else packages.add(spec);
      }
    };
    visit(path.join(dist, 'prepare', 'encode-worker.js'));
    assert.ok(seen.has(path.join(dist, 'transforms', 'request-builder.js')), 'the walk follows imports');
    assert.ok(packages.has('csv-parse/sync'), 'the walk sees packages');
    assert.equal(packages.has('zod'), false, `zod is loaded by ${[...seen].map(rel).join(', ')}`);
  });

  it('writes SQL only in src/ledger (and the local server)', () => {
    // As `git grep -nE SQL -- src ':!src/ledger' ':!src/server'` of issue 12.
    const sqlLines = (file: string) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((text, i) => (SQL.test(text) ? [`${rel(file)}:${i + 1}: ${text.trim()}`] : []));
    const outside = sourceFiles(SRC).filter((f) => !/^src\/(ledger|server)\//.test(rel(f)));
    assert.ok(sourceFiles(path.join(SRC, 'ledger')).flatMap(sqlLines).length > 50, 'the pattern finds SQL');
    assert.deepEqual(outside.flatMap(sqlLines), []);
  });

  it("reaches the ledger's database only from src/ledger: `connectionOf` is its one door", () => {
    const users = sourceFiles(SRC)
      .filter((f) => /\bconnectionOf\b/.test(readFileSync(f, 'utf8')))
      .map(rel);
    assert.ok(users.includes('src/ledger/ledger.ts'), 'the pattern finds the door');
    assert.deepEqual(
      users.filter((f) => !f.startsWith('src/ledger/')),
      [],
    );
  });
});

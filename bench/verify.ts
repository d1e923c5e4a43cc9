/**
 * Correctness checks for a benchmark run's output: a ledger (SQLite) and a directory of request files.
 *
 * `verifyCounts` is cheap (run after every timed run): request count in the ledger, file line counts
 * in the ledger and on disk, no file over the line limit. `verifyContent` is thorough (run once on a
 * small preflight input): every request line and every ledger record compared with the source CSV.
 * Both read only the columns the batchpipe ledger and the Python baseline's ledger have in common:
 * `requests(seq, line, custom_id, record, state)` and `files(path, lines, bytes)`; a stored record
 * may be a JSON object, a JSON array of values, or the raw CSV text (see decodeRecord).
 */
import { deepStrictEqual } from 'node:assert';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { parse } from 'csv-parse';
import { parse as parseCsvSync } from 'csv-parse/sync';

export interface RunOutput {
  ledger: string;
  outDir: string;
  /** Working directory the tool ran in (ledger file paths may be relative to it). */
  cwd: string;
}

export interface CountReport {
  requests: number;
  ledgerFiles: number;
  ledgerLines: number;
  diskFiles: number;
  diskLines: number;
  diskBytes: number;
  problems: string[];
}

interface FileRow {
  path: string;
  lines: number;
  bytes: number;
}

/** Cheap checks: N requests, files' line counts summing to N, on disk and in the ledger. */
export async function verifyCounts(run: RunOutput, rows: number, maxLines: number): Promise<CountReport> {
  const problems: string[] = [];
  const db = new Database(run.ledger, { readonly: true, fileMustExist: true });
  let requests: number;
  let fileRows: FileRow[];
  try {
    const r = db.prepare('SELECT COUNT(*) AS n, MIN(seq) AS lo, MAX(seq) AS hi FROM requests').get() as {
      n: number;
      lo: number | null;
      hi: number | null;
    };
    requests = r.n;
    if (r.n !== rows) problems.push(`ledger has ${r.n} requests, expected ${rows}`);
    if (rows > 0 && (r.lo !== 0 || r.hi !== rows - 1)) {
      problems.push(`ledger seq runs ${r.lo}..${r.hi}, expected 0..${rows - 1}`);
    }
    fileRows = db.prepare('SELECT path, lines, bytes FROM files ORDER BY path').all() as FileRow[];
  } finally {
    db.close();
  }

  const ledgerLines = fileRows.reduce((sum, f) => sum + f.lines, 0);
  if (ledgerLines !== rows)
    problems.push(`ledger files table sums to ${ledgerLines} lines, expected ${rows}`);

  const disk = requestFiles(run.outDir);
  let diskLines = 0;
  let diskBytes = 0;
  const byName = new Map<string, { lines: number; bytes: number }>();
  for (const file of disk) {
    const lines = await countNewlines(file);
    const bytes = statSync(file).size;
    byName.set(basename(file), { lines, bytes });
    diskLines += lines;
    diskBytes += bytes;
    if (lines > maxLines) problems.push(`${file}: ${lines} lines, over the limit of ${maxLines}`);
  }
  if (diskLines !== rows) problems.push(`request files on disk hold ${diskLines} lines, expected ${rows}`);
  if (disk.length !== fileRows.length) {
    problems.push(`${disk.length} request files on disk, ${fileRows.length} in the ledger`);
  }
  for (const f of fileRows) {
    const d = byName.get(basename(f.path));
    if (d === undefined) problems.push(`ledger file ${f.path} not found in ${run.outDir}`);
    else if (d.lines !== f.lines || d.bytes !== f.bytes) {
      problems.push(
        `${f.path}: ledger says ${f.lines} lines/${f.bytes} bytes, disk has ${d.lines}/${d.bytes}`,
      );
    }
  }
  return {
    requests,
    ledgerFiles: fileRows.length,
    ledgerLines,
    diskFiles: disk.length,
    diskLines,
    diskBytes,
    problems,
  };
}

export interface ExpectedRequest {
  /** The CSV column whose value is the custom_id. */
  idColumn: string;
  model: string;
  url: string;
  /** Builds the expected `body.messages` from a source record. */
  messages: (record: Record<string, string>) => unknown[];
}

/**
 * Thorough check against the source CSV: every request line's custom_id, method, url and body, every
 * ledger record (source JSON, 1-based start line, state `staged`). Returns the problems found (at most
 * a few of each kind).
 */
export async function verifyContent(
  run: RunOutput,
  csvPath: string,
  expected: ExpectedRequest,
): Promise<string[]> {
  const problems: string[] = [];
  const report = (msg: string): void => {
    if (problems.length < 20) problems.push(msg);
  };
  const source = await readCsvWithLines(csvPath);
  const byId = new Map<string, { record: Record<string, string>; line: number; seq: number }>();
  source.forEach((s, seq) => {
    byId.set(s.record[expected.idColumn] ?? '', { ...s, seq });
  });

  const seen = new Set<string>();
  for (const file of requestFiles(run.outDir)) {
    const lines = readFileSync(file, 'utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    else report(`${file}: does not end with a newline`);
    for (const [i, text] of lines.entries()) {
      const where = `${file}:${i + 1}`;
      let req: { custom_id?: unknown; method?: unknown; url?: unknown; body?: unknown };
      try {
        req = JSON.parse(text) as typeof req;
      } catch (err) {
        report(`${where}: invalid JSON (${(err as Error).message})`);
        continue;
      }
      const id = String(req.custom_id);
      const src = byId.get(id);
      if (src === undefined) {
        report(`${where}: custom_id ${JSON.stringify(req.custom_id)} not in the source`);
        continue;
      }
      if (seen.has(id)) {
        report(`${where}: duplicate custom_id ${id}`);
        continue;
      }
      seen.add(id);
      try {
        deepStrictEqual(req, {
          custom_id: id,
          method: 'POST',
          url: expected.url,
          body: { model: expected.model, messages: expected.messages(src.record) },
        });
      } catch {
        report(
          `${where}: request for ${id} (source line ${src.line}) differs from the expected one: ${text.slice(0, 300)}`,
        );
      }
    }
  }
  if (seen.size !== source.length)
    report(`request files hold ${seen.size} distinct ids, source has ${source.length} records`);

  const db = new Database(run.ledger, { readonly: true, fileMustExist: true });
  try {
    // batchpipe keeps source records in a table of their own; the Python baseline in requests.
    const separate = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'records'").get() !== undefined;
    const rows = db
      .prepare(
        `SELECT seq, line, custom_id, record, state FROM requests${separate ? ' JOIN records USING (seq)' : ''} ORDER BY seq`,
      )
      .all() as {
      seq: number;
      line: number;
      custom_id: string;
      record: string | Buffer;
      state: string;
    }[];
    // A ledger may store CSV records positionally (a JSON array) with the header once, in meta 'columns'.
    const columns = metaColumns(db);
    if (rows.length !== source.length)
      report(`ledger has ${rows.length} requests, source has ${source.length}`);
    for (const row of rows) {
      const src = byId.get(row.custom_id);
      if (src === undefined) {
        report(`ledger seq ${row.seq}: custom_id ${row.custom_id} not in the source`);
        continue;
      }
      if (row.seq !== src.seq) report(`ledger: ${row.custom_id} has seq ${row.seq}, expected ${src.seq}`);
      if (row.line !== src.line)
        report(`ledger: ${row.custom_id} has line ${row.line}, expected ${src.line}`);
      if (row.state !== 'staged') report(`ledger: ${row.custom_id} has state ${row.state}, expected staged`);
      try {
        deepStrictEqual(decodeRecord(row.record, columns ?? Object.keys(src.record)), src.record);
      } catch {
        report(
          `ledger: record of ${row.custom_id} differs from source line ${src.line}: ${String(row.record).slice(0, 300)}`,
        );
      }
    }
    const files = db.prepare('SELECT path FROM files').all() as { path: string }[];
    for (const f of files) {
      const candidates = [
        isAbsolute(f.path) ? f.path : resolve(run.cwd, f.path),
        resolve(dirname(run.ledger), f.path),
        join(run.outDir, basename(f.path)),
      ];
      if (!candidates.some((p) => existsSync(p))) report(`ledger file ${f.path} does not exist`);
    }
  } finally {
    db.close();
  }
  return problems;
}

function metaColumns(db: Database.Database): string[] | undefined {
  try {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'columns'").get() as
      | { value: string }
      | undefined;
    const value: unknown = row === undefined ? undefined : JSON.parse(row.value);
    return Array.isArray(value) ? value.map(String) : undefined;
  } catch {
    return undefined; // no meta table, or no JSON there
  }
}

/**
 * A ledger's stored source record as an object. Accepted forms: a JSON object; a JSON array of values
 * (the header once, in meta 'columns'); or the record's raw CSV text or bytes.
 */
function decodeRecord(stored: string | Buffer, columns: readonly string[]): unknown {
  const text = typeof stored === 'string' ? stored : stored.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (Array.isArray(value)) return Object.fromEntries(columns.map((c, i) => [c, value[i]]));
  if (typeof value === 'object' && value !== null) return value;
  const records = parseCsvSync(text, { columns: [...columns] }) as unknown[];
  return records.length === 1 ? records[0] : records;
}

/** The complete request files in a directory (`*.jsonl`; temporary names are ignored), sorted. */
export function requestFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.jsonl'))
    .sort()
    .map((name) => join(dir, name));
}

async function countNewlines(path: string): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++;
  }
  return n;
}

/** Parses the CSV with csv-parse, giving each record the 1-based line where it starts. */
async function readCsvWithLines(path: string): Promise<{ record: Record<string, string>; line: number }[]> {
  const out: { record: Record<string, string>; line: number }[] = [];
  // Preflight inputs are small: read the whole file rather than wire up a stream for its errors.
  const parser = parse(readFileSync(path, 'utf8'), { columns: true, bom: true, info: true });
  let nextLine = 2; // line 1 is the header
  for await (const item of parser as AsyncIterable<{
    record: Record<string, string>;
    info: { lines: number };
  }>) {
    out.push({ record: item.record, line: nextLine });
    // info.lines is the line the record ends on; the next record starts on the line after.
    nextLine = item.info.lines + 1;
  }
  return out;
}

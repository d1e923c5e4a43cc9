/**
 * Python's csv and json modules as the reference for what an input holds: an independent parser in
 * another language, so our parser never checks itself. (Not a test file itself.)
 */
import { spawnSync } from 'node:child_process';

/** A CSV row as Python reads it, with the 1-based line it starts on. */
export interface PythonRow {
  line: number;
  values: string[];
}

const SCRIPT = String.raw`
import csv, io, json, sys

csv.field_size_limit(sys.maxsize)

def read_csv(f):
    # newline='': records end at \r, \n or \r\n outside quotes; quoted ones stay in the values.
    reader = csv.reader(f)
    rows, last = [], 0
    for row in reader:
        if row:  # a blank line reads as []: skipped, as csv-parse's skip_empty_lines does
            rows.append({'line': last + 1, 'values': row})
        last = reader.line_num
    return rows

def json_elements(text):
    # Each element of the top-level array: the line it starts on and its compact text, found by
    # json's own decoder (raw_decode gives where each value ends).
    decoder = json.JSONDecoder()
    pos = text.index('[') + 1
    out = []
    ws = ' \t\r\n'
    while True:
        while text[pos] in ws or text[pos] == ',':
            pos += 1
        if text[pos] == ']':
            return out
        value, end = decoder.raw_decode(text, pos)
        out.append({'line': text.count('\n', 0, pos) + 1, 'text': compact(text[pos:end])})
        pos = end

def compact(text):
    # Whitespace between tokens removed, strings and numbers kept as written.
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == '\\' else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif c in ' \t\r\n':
            i += 1
        else:
            out.append(c)
            i += 1
    return ''.join(out)

job = json.load(sys.stdin)
result = {}
if 'csv' in job:
    with open(job['csv'], newline='', encoding=job.get('encoding', 'utf-8')) as f:
        result['rows'] = read_csv(f)
if 'records' in job:
    result['records'] = [read_csv(io.StringIO(r, newline=''))[0]['values'] for r in job['records']]
if 'utf8' in job:
    data = open(job['utf8'], 'rb').read()
    try:
        data.decode('utf-8')
        result['invalid'] = None
    except UnicodeDecodeError as e:
        result['invalid'] = e.start
if 'samples' in job:
    def first_invalid(data):
        try:
            data.decode('utf-8')
            return None
        except UnicodeDecodeError as e:
            return e.start
    result['invalid'] = [first_invalid(bytes.fromhex(h)) for h in job['samples']]
if 'json' in job:
    with open(job['json'], encoding=job.get('encoding', 'utf-8')) as f:
        result['elements'] = json_elements(f.read())
print(json.dumps(result))
`;

function runPython(job: Record<string, unknown>): Record<string, unknown> {
  const run = spawnSync('python3', ['-c', SCRIPT], {
    input: JSON.stringify(job),
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (run.status !== 0) throw new Error(`python3 failed (${run.status}): ${run.stderr}`);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

/** The rows of a CSV file as Python's csv module reads it with `newline=''` and `encoding`. */
export function pythonCsvRows(path: string, encoding = 'utf-8'): PythonRow[] {
  return runPython({ csv: path, encoding }).rows as PythonRow[];
}

/** The values of single CSV records (text without a line break after them), as Python reads them. */
export function pythonCsvRecords(records: string[]): string[][] {
  return runPython({ records }).records as string[][];
}

/** Each element of a JSON file's top-level array: its start line and compact text, as Python finds them. */
export function pythonJsonElements(path: string, encoding = 'utf-8'): { line: number; text: string }[] {
  return runPython({ json: path, encoding }).elements as { line: number; text: string }[];
}

/** The offset of the first byte of a file that Python's UTF-8 decoder refuses, or null. */
export function pythonFirstInvalidUtf8(path: string): number | null {
  return runPython({ utf8: path }).invalid as number | null;
}

/** For each byte string, the offset of its first byte Python's UTF-8 decoder refuses, or null. */
export function pythonFirstInvalidUtf8Of(samples: Buffer[]): (number | null)[] {
  return runPython({ samples: samples.map((b) => b.toString('hex')) }).invalid as (number | null)[];
}

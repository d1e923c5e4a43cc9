/**
 * Streamed validation of existing Batch API input files (`batchpipe validate`): bytes → lines → JSON →
 * `checkRequestLine` + `FileRules`. Memory is one read chunk, the longest line and the id map of
 * `FileRules` (at most `maxLines` ids), whatever the file's size.
 */
import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { BatchpipeError, ErrorCodes, IssueCodes } from '../errors.js';
import { LineSplitter, type RawLine } from '../internal/lines.js';
import { FileRules, type FileRulesOptions } from './file-rules.js';
import type { LineIssue, ValidationIssue } from './issues.js';
import { checkRequestLine } from './request-schema.js';

/** One problem in one file, the form the CLI prints as `file:line: code message`. */
export interface FileProblem extends LineIssue {
  /** The file as given (`-` for stdin). */
  file: string;
}

/** What a validated file held. */
export interface FileSummary {
  file: string;
  /** Non-blank lines. */
  requests: number;
  bytes: number;
  problems: number;
}

export type ValidateFileOptions = FileRulesOptions;

const READ_CHUNK_BYTES = 1 << 20;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Validates one JSONL request file from any byte source, yielding its problems in line order as they are
 * found and returning its summary.
 *
 * @example
 * const problems = validateJsonl(process.stdin, '-');
 * for (let r = await problems.next(); !r.done; r = await problems.next()) console.log(r.value.message);
 */
export async function* validateJsonl(
  source: AsyncIterable<Uint8Array>,
  file: string,
  options: ValidateFileOptions = {},
): AsyncGenerator<FileProblem, FileSummary, undefined> {
  const rules = new FileRules(options);
  let found: FileProblem[] = [];
  let problems = 0;
  const report = (line: number, issues: readonly ValidationIssue[]): void => {
    for (const i of issues) found.push({ file, line, code: i.code, path: i.path, message: i.message });
  };
  // Lines longer than the file's byte limit are counted, not parsed: the file fails anyway.
  const splitter = new LineSplitter((raw) => checkLine(raw, rules, report), rules.maxBytes);
  const flush = (): FileProblem[] => {
    const out = found;
    found = [];
    problems += out.length;
    return out;
  };
  for await (const chunk of source) {
    splitter.push(chunk);
    yield* flush();
  }
  splitter.end();
  if (rules.requests === 0) {
    report(1, [{ code: IssueCodes.EMPTY_FILE, path: '', message: 'the file holds no requests' }]);
  }
  yield* flush();
  return { file, requests: rules.requests, bytes: rules.bytes, problems };
}

/**
 * Validates one JSONL request file on disk; see {@link validateJsonl}.
 * @throws BatchpipeError `BP_IO` when the file cannot be read.
 */
export function validateJsonlFile(
  path: string,
  options: ValidateFileOptions = {},
): AsyncGenerator<FileProblem, FileSummary, undefined> {
  return validateJsonl(readChunks(path), path, options);
}

/** The file's chunks; only errors of the read itself become `BP_IO`. */
async function* readChunks(path: string): AsyncGenerator<Buffer, void, undefined> {
  const stream = createReadStream(path, { highWaterMark: READ_CHUNK_BYTES });
  const chunks = stream[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await chunks.next();
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new BatchpipeError(ErrorCodes.IO, `cannot read: ${reason}`, { file: path, cause: err });
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    stream.destroy();
  }
}

/** All the checks of one line: bytes, encoding, JSON, the request schema, then the cross-line rules. */
function checkLine(
  raw: RawLine,
  rules: FileRules,
  report: (line: number, issues: readonly ValidationIssue[]) => void,
): void {
  const n = raw.number;
  report(n, rules.addBytes(n, raw.size));
  let bytes = raw.bytes;
  if (n === 1 && bytes.subarray(0, 3).equals(BOM)) {
    report(n, [lineIssue(IssueCodes.BOM, 'the file starts with a UTF-8 byte order mark; remove it')]);
    bytes = bytes.subarray(3);
  }
  if (raw.oversized) {
    report(n, [
      lineIssue(
        IssueCodes.TOO_MANY_BYTES,
        `the line is ${raw.size} bytes, over the file limit of ${rules.maxBytes}; not checked further`,
      ),
    ]);
    report(n, rules.addRequest(n, undefined));
    return;
  }
  if (isBlank(bytes)) {
    report(n, [lineIssue(IssueCodes.BLANK_LINE, 'blank line; every line must hold one request')]);
    return;
  }
  const parsed = parseJson(bytes);
  if ('issue' in parsed) report(n, [parsed.issue]);
  else report(n, checkRequestLine(parsed.value));
  // A line that does not parse is still a request line of the file: it counts against the limits.
  report(n, rules.addRequest(n, parsed.value));
}

/** Decodes and parses one line, or says why it cannot. */
function parseJson(bytes: Buffer): { value: unknown } | { value: undefined; issue: ValidationIssue } {
  if (!isUtf8(bytes)) {
    return { value: undefined, issue: lineIssue(IssueCodes.INVALID_UTF8, 'the line is not valid UTF-8') };
  }
  try {
    return { value: JSON.parse(bytes.toString('utf8')) };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { value: undefined, issue: lineIssue(IssueCodes.INVALID_JSON, `not valid JSON: ${reason}`) };
  }
}

function lineIssue(code: ValidationIssue['code'], message: string): ValidationIssue {
  return { code, path: '', message };
}

/** Empty, or only spaces and tabs (a lone `\r` was already stripped with the terminator). */
function isBlank(bytes: Buffer): boolean {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09) return false;
  return true;
}

/**
 * JSON array input: the elements of a top-level array (or of the array at a path of object keys) as
 * JSONL, each element's compact text on a line of its own, so that the JSONL chunker and parser take
 * them from there. Owns finding the array and its elements and where each starts; touches only bytes.
 *
 * Why a byte scanner and not stream-json: stream-json reports no byte offsets or lines, so an element
 * could not be named by the line it starts on, and rebuilding its text from tokens would lose the
 * exact text of its numbers. This scanner tracks strings, escapes and depth, copies each element
 * with the whitespace between its tokens removed (strings and numbers byte for byte) and logs its
 * line, in one pass and in bounded memory.
 *
 * Lines count `\n`, as for JSONL. An element holding a raw line break inside a string (invalid JSON)
 * is written with the break escaped, to keep one element a line, and logged as a BP_PARSE problem; an
 * element holding invalid UTF-8 is logged as a BP_ENCODING one. The problems reject those elements.
 */
import { isUtf8 } from 'node:buffer';
import { BatchpipeError, type ErrorCode, ErrorCodes } from '../errors.js';
import type { RecordProblem } from '../types.js';
import { type Chunk, type ChunkerOptions, recordChunks } from './chunker.js';
import { guessEncoding, invalidInputMessage, UTF8 } from './encoding.js';
import { invalidUtf8Offsets, wholeCharactersEnd } from './utf8.js';

/** What the scanner learned about each element: its line, offset, and why it cannot be a record. */
export class ElementLog {
  private lines: number[] = [];
  private offsets: number[] = [];
  private problems = new Map<number, RecordProblem>();
  /** Index of the first element still held. */
  private base = 0;

  /** Number of elements logged so far. */
  get count(): number {
    return this.base + this.lines.length;
  }

  add(line: number, offset: number): void {
    this.lines.push(line);
    this.offsets.push(offset);
  }

  problem(index: number, code: ErrorCode, message: string): void {
    if (!this.problems.has(index)) this.problems.set(index, { code, message });
  }

  lineOf(index: number): number {
    return this.lines[index - this.base]!;
  }

  offsetOf(index: number): number {
    return this.offsets[index - this.base]!;
  }

  problemOf(index: number): RecordProblem | undefined {
    return this.problems.get(index);
  }

  /** Drops what is known of the elements before `index`. */
  forget(index: number): void {
    const drop = index - this.base;
    if (drop <= 0) return;
    this.lines.splice(0, drop);
    this.offsets.splice(0, drop);
    for (const key of this.problems.keys()) if (key < index) this.problems.delete(key);
    this.base = index;
  }
}

export interface JsonArrayOptions {
  /** Input name, for messages. */
  name: string;
  /** Object keys leading to the array (`data.items` → `['data', 'items']`); empty for a top-level array. */
  path: readonly string[];
  /** The input's encoding, for messages about invalid bytes. */
  encoding: string;
  /** Offset of the stream's first byte in the input (a BOM). */
  startOffset: number;
}

const LF = 0x0a;
const CR = 0x0d;
const TAB = 0x09;
const SPACE = 0x20;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

const isSpace = (c: number): boolean => c === SPACE || c === LF || c === CR || c === TAB;

/** Where the scanner is in the document. */
type State =
  | 'root' // before the root value
  | 'member' // in an object on the path: before a key (or its closing brace)
  | 'key' // inside a key string
  | 'colon' // after a key
  | 'value' // after a key's colon
  | 'skip' // inside a value off the path
  | 'next-member' // after a value off the path
  | 'array' // in the array: before an element (or its closing bracket)
  | 'element' // inside an element
  | 'next-element' // after an element
  | 'after'; // after the array

/**
 * The elements of the array in `input` as compact JSONL text, piece by piece; `log` learns each
 * element's line, offset and problems as its text is produced.
 */
export function jsonArrayLines(
  input: AsyncIterable<Buffer>,
  options: JsonArrayOptions,
): { lines: AsyncGenerator<Buffer>; log: ElementLog } {
  const log = new ElementLog();
  const scanner = new ArrayScanner(options, log);
  async function* lines(): AsyncGenerator<Buffer> {
    let offset = options.startOffset;
    for await (const piece of input) {
      const out = scanner.scan(piece, offset);
      offset += piece.length;
      if (out.length > 0) yield out;
    }
    scanner.end();
  }
  return { lines: lines(), log };
}

/**
 * The array's elements as record-aligned chunks of compact JSONL (see `recordChunks`), each record
 * with the line its element starts on (`lines`) and the problems the scanner found (`rejects`).
 */
export async function* jsonArrayChunks(
  input: AsyncIterable<Buffer>,
  options: JsonArrayOptions & Omit<ChunkerOptions, 'syntax' | 'startOffset'>,
): AsyncGenerator<Chunk> {
  const { lines, log } = jsonArrayLines(input, options);
  // The compact text has one element a line, so a chunk's line numbers there are element indexes.
  for await (const chunk of recordChunks(lines, { ...options, syntax: 'lines' })) {
    const first = chunk.firstLine - 1;
    const count = chunk.oversize ? 1 : chunk.lineBreaks;
    const rejects: NonNullable<Chunk['rejects']> = [];
    for (let k = 0; k < count && !chunk.oversize; k++) {
      const problem = log.problemOf(first + k);
      if (problem) rejects.push({ index: k, ...problem });
    }
    yield {
      ...chunk,
      firstLine: log.lineOf(first),
      offset: log.offsetOf(first),
      lines: Int32Array.from({ length: count }, (_, k) => log.lineOf(first + k)),
      rejects,
    };
    log.forget(first + count);
  }
}

class ArrayScanner {
  private state: State = 'root';
  private line = 1;
  /** Path keys matched so far. */
  private depthOnPath = 0;
  private key: number[] = [];
  /** Inside a string (of a key, a skipped value or an element), and after a backslash there. */
  private inString = false;
  private escaped = false;
  /** Bracket depth inside a skipped value or an element; 0 with `scalar` for a number or literal. */
  private depth = 0;
  private scalar = false;
  /** After a comma in the array (an element must follow) or an object (a key must follow). */
  private afterComma = false;
  /** The index of the element being written. */
  private element = -1;
  /** Invalid bytes not yet matched to an element, in input order. */
  private invalid: InvalidBytes[] = [];
  /** An incomplete character at the end of the last piece, checked with the next. */
  private carry: Buffer | undefined;
  private carryOffset = 0;
  /** The next quote and LF in the piece being scanned (-1: none left). */
  private nextQuote = -1;
  private nextLF = -1;
  private out: Buffer = Buffer.allocUnsafe(0);
  private outLength = 0;

  constructor(
    private readonly options: JsonArrayOptions,
    private readonly log: ElementLog,
  ) {}

  /** The compact text the piece adds (elements' bytes and their line ends). */
  scan(piece: Buffer, offset: number): Buffer {
    this.checkText(piece, offset);
    this.nextQuote = piece.indexOf(QUOTE);
    this.nextLF = piece.indexOf(LF);
    this.out = Buffer.allocUnsafe(piece.length + 64);
    this.outLength = 0;
    const end = piece.length;
    let i = 0;
    while (i < end) {
      const c = piece[i]!;
      switch (this.state) {
        case 'element':
          i = this.copyElement(piece, i, offset);
          continue;
        case 'skip':
          i = this.skipValue(piece, i);
          continue;
        case 'key':
          i = this.readKey(piece, i);
          continue;
        default:
          break;
      }
      if (c === LF) this.line++;
      if (isSpace(c)) {
        i++;
        continue;
      }
      this.structural(c, offset + i);
      i++;
    }
    return this.out.subarray(0, this.outLength);
  }

  /** At the end of the input: the array must have been closed. */
  end(): void {
    if (this.carry) this.queueInvalid(this.carry, this.carryOffset, this.carry.length);
    const stray = this.invalid[0];
    if (stray) throw this.invalidError(stray);
    if (this.state === 'after') return;
    const what =
      this.state === 'root'
        ? 'the input holds no JSON value'
        : this.depthOnPath < this.options.path.length && this.state !== 'element'
          ? `the input ends before the array at ${this.pathName()}`
          : 'the input ends inside the JSON array';
    throw this.error(`${what} (is it cut short?)`);
  }

  /** A byte outside strings and elements: navigation to the array, and the array's own punctuation. */
  private structural(c: number, at: number): void {
    const { path } = this.options;
    switch (this.state) {
      case 'root':
        if (path.length === 0) {
          if (c !== OPEN_ARRAY)
            throw this.error(
              `expected a JSON array, found ${shown(c)} (with an object, name the array with --json-path)`,
            );
          this.openArray();
        } else {
          if (c !== OPEN_OBJECT)
            throw this.error(`expected a JSON object holding ${this.pathName()}, found ${shown(c)}`);
          this.openMember();
        }
        return;
      case 'member':
        if (c === QUOTE) {
          this.state = 'key';
          this.key = [];
          return;
        }
        if (c === CLOSE_OBJECT && !this.afterComma)
          throw this.error(`no ${this.pathName()} in the JSON input`);
        throw this.error(`expected a key, found ${shown(c)}`);
      case 'colon':
        if (c !== COLON) throw this.error(`expected ':' after a key, found ${shown(c)}`);
        this.state = 'value';
        return;
      case 'value': {
        const name = this.keyName();
        if (name === path[this.depthOnPath]) {
          this.depthOnPath++;
          const last = this.depthOnPath === path.length;
          if (last && c === OPEN_ARRAY) {
            this.openArray();
            return;
          }
          if (!last && c === OPEN_OBJECT) {
            this.openMember();
            return;
          }
          throw this.error(
            `expected ${last ? 'an array' : 'an object'} at ${this.pathName(this.depthOnPath)}, found ${shown(c)}`,
          );
        }
        this.startValue(c, 'skip');
        return;
      }
      case 'next-member':
        if (c === COMMA) {
          this.openMember();
          this.afterComma = true;
          return;
        }
        if (c === CLOSE_OBJECT) throw this.error(`no ${this.pathName()} in the JSON input`);
        throw this.error(`expected ',' or '}' in an object, found ${shown(c)}`);
      case 'array':
        if (c === CLOSE_ARRAY && !this.afterComma) {
          this.state = 'after';
          return;
        }
        if (c === COMMA || c === CLOSE_ARRAY) throw this.error(`expected an element, found ${shown(c)}`);
        this.element = this.log.count;
        this.log.add(this.line, at);
        this.startValue(c, 'element');
        this.write(c);
        return;
      case 'next-element':
        if (c === COMMA) {
          this.state = 'array';
          this.afterComma = true;
          return;
        }
        if (c === CLOSE_ARRAY) {
          this.state = 'after';
          return;
        }
        throw this.error(`expected ',' or ']' after an element, found ${shown(c)}`);
      case 'after':
        // Beside a path, the rest of the enclosing objects is not ours to read.
        if (path.length === 0) throw this.error(`unexpected ${shown(c)} after the JSON array`);
        return;
      default:
        throw new Error(`internal error: JSON scanner in state ${this.state}`);
    }
  }

  /** The key just read, unescaped. */
  private keyName(): string {
    try {
      return JSON.parse(`"${Buffer.from(this.key).toString('utf8')}"`) as string;
    } catch {
      throw this.error('invalid JSON: a key with an invalid escape');
    }
  }

  private openArray(): void {
    this.state = 'array';
    this.afterComma = false;
  }

  private openMember(): void {
    this.state = 'member';
    this.afterComma = false;
  }

  /** Starts a value at byte `c`: a string, an object or array, or a number or literal. */
  private startValue(c: number, state: 'skip' | 'element'): void {
    this.state = state;
    this.inString = c === QUOTE;
    this.escaped = false;
    this.depth = c === OPEN_ARRAY || c === OPEN_OBJECT ? 1 : 0;
    this.scalar = !this.inString && this.depth === 0;
  }

  /**
   * Copies element bytes from `i`, without whitespace between tokens, until the element ends (then
   * its line end is written and the state moves on) or the piece does. Returns where it stopped.
   */
  private copyElement(piece: Buffer, i: number, offset: number): number {
    const end = piece.length;
    while (i < end) {
      if (this.inString) {
        i = this.copyString(piece, i);
        if (i === end) return end;
        if (!this.inString && this.depth === 0) return this.endElement(i, offset);
        continue;
      }
      // Outside strings: copy runs of token bytes, skipping whitespace, following the nesting.
      let j = i;
      for (; j < end; j++) {
        const c = piece[j]!;
        if (isSpace(c) || c === QUOTE) break;
        if (c === OPEN_ARRAY || c === OPEN_OBJECT) this.depth++;
        else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
          if (this.scalar && c === CLOSE_ARRAY) break; // the array's own bracket ends a number or literal
          if (--this.depth === 0) {
            j++;
            break;
          }
        } else if (c === COMMA && this.scalar) break;
      }
      this.writeBytes(piece, i, j);
      i = j;
      if (!this.scalar && this.depth === 0) return this.endElement(i, offset);
      if (i === end) return end;
      const c = piece[i]!;
      if (this.scalar && (isSpace(c) || c === COMMA || c === CLOSE_ARRAY)) return this.endElement(i, offset);
      i++;
      if (c === LF) this.line++;
      else if (c === QUOTE) {
        this.write(c);
        this.inString = true;
      }
    }
    return end;
  }

  /**
   * Copies string bytes from `i` up to and including the closing quote (then `inString` is false), or
   * to the end of the piece. Quotes are found by search, their escapes by the backslashes before them.
   */
  private copyString(piece: Buffer, i: number): number {
    const end = piece.length;
    if (this.escaped && piece[i] !== LF) {
      this.write(piece[i]!);
      this.escaped = false;
      i++;
    }
    for (;;) {
      if (this.nextQuote !== -1 && this.nextQuote < i) this.nextQuote = piece.indexOf(QUOTE, i);
      if (this.nextLF !== -1 && this.nextLF < i) this.nextLF = piece.indexOf(LF, i);
      const quote = this.nextQuote === -1 ? end : this.nextQuote;
      if (this.nextLF !== -1 && this.nextLF < quote) {
        // A raw line break inside a string is invalid JSON: escaped, to keep one element a line.
        this.writeBytes(piece, i, this.nextLF);
        this.line++;
        this.log.problem(this.element, ErrorCodes.PARSE, 'invalid JSON: a raw line break inside a string');
        this.write(BACKSLASH);
        this.write(0x6e);
        this.escaped = false;
        i = this.nextLF + 1;
        continue;
      }
      let backslashes = 0;
      while (quote - backslashes - 1 >= i && piece[quote - backslashes - 1] === BACKSLASH) backslashes++;
      if (quote === end) {
        this.writeBytes(piece, i, end);
        this.escaped = backslashes % 2 === 1;
        return end;
      }
      this.writeBytes(piece, i, quote + 1);
      i = quote + 1;
      if (backslashes % 2 === 0) {
        this.inString = false;
        return i;
      }
    }
  }

  /** The element ended just before `i`: its line end is written, and its invalid bytes become a problem. */
  private endElement(i: number, offset: number): number {
    this.write(LF);
    this.state = 'next-element';
    this.afterComma = false;
    this.claimInvalid(offset + i);
    return i;
  }

  /** Invalid bytes before `end` belong to the element ending there; any before it, to no element. */
  private claimInvalid(end: number): void {
    const start = this.log.offsetOf(this.element);
    while (this.invalid.length > 0 && this.invalid[0]!.offset < end) {
      const bad = this.invalid.shift()!;
      if (bad.offset < start) throw this.invalidError(bad);
      this.log.problem(this.element, ErrorCodes.ENCODING, this.invalidMessage(bad));
    }
  }

  /** Skips a value off the path (strings, nesting) until it ends; returns where it stopped. */
  private skipValue(piece: Buffer, i: number): number {
    const end = piece.length;
    for (; i < end; i++) {
      const c = piece[i]!;
      if (this.scalar && !this.inString && (isSpace(c) || c === COMMA || c === CLOSE_OBJECT)) {
        this.state = 'next-member';
        return i;
      }
      if (c === LF) this.line++;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === BACKSLASH) this.escaped = true;
        else if (c === QUOTE) {
          this.inString = false;
          if (this.depth === 0) {
            this.state = 'next-member';
            return i + 1;
          }
        }
        continue;
      }
      if (c === QUOTE) this.inString = true;
      else if (c === OPEN_ARRAY || c === OPEN_OBJECT) this.depth++;
      else if ((c === CLOSE_ARRAY || c === CLOSE_OBJECT) && --this.depth === 0) {
        this.state = 'next-member';
        return i + 1;
      }
    }
    return end;
  }

  /** Collects a key's bytes up to its closing quote. */
  private readKey(piece: Buffer, i: number): number {
    const end = piece.length;
    for (; i < end; i++) {
      const c = piece[i]!;
      if (this.escaped) this.escaped = false;
      else if (c === BACKSLASH) this.escaped = true;
      else if (c === QUOTE) {
        this.state = 'colon';
        return i + 1;
      } else if (c === LF) this.line++;
      this.key.push(c);
    }
    return end;
  }

  private write(c: number): void {
    if (this.outLength === this.out.length) this.grow(1);
    this.out[this.outLength++] = c;
  }

  private writeBytes(src: Buffer, from: number, to: number): void {
    if (to <= from) return;
    if (this.outLength + (to - from) > this.out.length) this.grow(to - from);
    if (to - from > 64) {
      this.outLength += src.copy(this.out, this.outLength, from, to);
      return;
    }
    // A native copy costs more than a loop for the short runs between tokens.
    const out = this.out;
    let at = this.outLength;
    for (let k = from; k < to; k++) out[at++] = src[k]!;
    this.outLength = at;
  }

  private grow(need: number): void {
    const bigger = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.outLength + need + 64));
    this.out.copy(bigger, 0, 0, this.outLength);
    this.out = bigger;
  }

  /**
   * Finds the piece's invalid bytes (natively, per piece; a character split between pieces is checked
   * whole) and queues them for the elements they fall in.
   */
  private checkText(piece: Buffer, offset: number): void {
    let buf = piece;
    let bufOffset = offset;
    if (this.carry) {
      buf = Buffer.concat([this.carry, piece]);
      bufOffset = this.carryOffset;
      this.carry = undefined;
    }
    const end = wholeCharactersEnd(buf);
    if (end < buf.length) {
      this.carry = Buffer.from(buf.subarray(end));
      this.carryOffset = bufOffset + end;
    }
    this.queueInvalid(buf, bufOffset, end);
  }

  private queueInvalid(buf: Buffer, bufOffset: number, end: number): void {
    if (isUtf8(buf.subarray(0, end))) return;
    const offsets = invalidUtf8Offsets(buf, 0, end, Number.POSITIVE_INFINITY);
    const guess = this.options.encoding === UTF8 ? guessEncoding(buf, offsets.slice(0, 256)) : undefined;
    for (const at of offsets) this.invalid.push({ offset: bufOffset + at, buf, at, bufOffset, guess });
  }

  private invalidMessage(bad: InvalidBytes): string {
    const { buf, at, bufOffset, guess } = bad;
    return invalidInputMessage({ encoding: this.options.encoding, buf, at, fileOffset: bufOffset, guess });
  }

  private invalidError(bad: InvalidBytes): BatchpipeError {
    return new BatchpipeError(
      ErrorCodes.ENCODING,
      `${this.invalidMessage(bad)}, outside the array's elements`,
      {
        file: this.options.name,
      },
    );
  }

  private pathName(upTo = this.options.path.length): string {
    return `--json-path ${this.options.path.slice(0, upTo).join('.')}`;
  }

  private error(message: string): BatchpipeError {
    return new BatchpipeError(ErrorCodes.PARSE, message, { file: this.options.name, line: this.line });
  }
}

/** An invalid byte, with the piece it was found in for its message. */
interface InvalidBytes {
  offset: number;
  buf: Buffer;
  at: number;
  bufOffset: number;
  guess: string | undefined;
}

/** A byte as a message shows it. */
function shown(c: number): string {
  return c >= 0x21 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `byte 0x${c.toString(16).padStart(2, '0')}`;
}

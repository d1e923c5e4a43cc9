/**
 * Input encodings: which one a BOM announces, decoding any encoding iconv-lite knows to UTF-8, and what
 * to say about bytes that are not valid. Owns the bytes between the input and the chunker, and the
 * text of BP_ENCODING messages; touches nothing else.
 *
 * Input is never repaired. UTF-8 input is checked (per chunk, natively) and a record holding invalid
 * bytes is rejected with BP_ENCODING. Other encodings are decoded here, and where a byte has no
 * character in the encoding the decoder writes a marker that is itself invalid UTF-8 (0xFF, followed by
 * the byte for single-byte encodings) instead of U+FFFD, so that the same check rejects the record,
 * naming its line and column.
 */
import { isUtf8 } from 'node:buffer';
import { createRequire } from 'node:module';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { invalidUtf8Offsets } from './utf8.js';

export const UTF8 = 'utf-8';

// iconv-lite and its tables load only when an input needs them (a decode, a guess): every prepare and
// every encode worker imports this module, and most read UTF-8.
const require = createRequire(import.meta.url);
let iconvModule: typeof import('iconv-lite') | undefined;
const iconv = (): typeof import('iconv-lite') => {
  iconvModule ??= require('iconv-lite') as typeof import('iconv-lite');
  return iconvModule;
};

/** How an encoding is decoded: not at all, by our UTF-16 decoder, byte by byte, or by iconv-lite's stream decoder. */
type DecoderKind = 'utf-8' | 'utf-16le' | 'utf-16be' | 'utf-16' | 'single-byte' | 'multi-byte';

/** Never valid in UTF-8: the decoders write it where the input has no character. */
const MARKER = 0xff;

/**
 * The encoding name as stored and compared (lower case; `utf8` → `utf-8`), or a BP_USAGE error for
 * a name iconv-lite does not know.
 */
export function normalizeEncoding(name: string): string {
  const lower = name.trim().toLowerCase();
  const bare = lower.replace(/[^a-z0-9]/g, '');
  if (bare === 'utf8') return UTF8;
  if (bare === 'utf16le' || bare === 'ucs2') return 'utf-16le';
  if (bare === 'utf16be') return 'utf-16be';
  if (bare === 'utf16') return 'utf-16';
  if (bare === 'base64' || bare === 'hex' || !iconv().encodingExists(lower)) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `--encoding ${JSON.stringify(name)} is not an encoding batchpipe can read (try utf-8, windows-1252, latin1, macintosh, utf-16le or utf-16be)`,
    );
  }
  return lower;
}

function decoderKind(encoding: string): DecoderKind {
  if (encoding === UTF8 || encoding === 'utf-16le' || encoding === 'utf-16be' || encoding === 'utf-16') {
    return encoding;
  }
  return iconv().getCodec(encoding).constructor.name === 'SBCSCodec' ? 'single-byte' : 'multi-byte';
}

/** The encoding a byte-order mark at the start of `head` announces, and its length. */
export function byteOrderMark(head: Buffer): { encoding: string; bytes: number } | undefined {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return { encoding: UTF8, bytes: 3 };
  if (head[0] === 0xff && head[1] === 0xfe) return { encoding: 'utf-16le', bytes: 2 };
  if (head[0] === 0xfe && head[1] === 0xff) return { encoding: 'utf-16be', bytes: 2 };
  return undefined;
}

/**
 * The input as UTF-8: `pieces` (after any BOM) decoded from `encoding`. UTF-8 passes through as it is
 * (checked later, per chunk). `utf-16` without a BOM is read as little-endian.
 */
export function toUtf8(pieces: AsyncIterable<Buffer>, encoding: string): AsyncIterable<Buffer> {
  const kind = decoderKind(encoding);
  switch (kind) {
    case 'utf-8':
      return pieces;
    case 'utf-16le':
    case 'utf-16':
      return utf16ToUtf8(pieces, false);
    case 'utf-16be':
      return utf16ToUtf8(pieces, true);
    case 'single-byte':
      return singleByteToUtf8(pieces, encoding);
    case 'multi-byte':
      return multiByteToUtf8(pieces, encoding);
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** UTF-16 code units to UTF-8; unpaired surrogates and an odd last byte become markers. */
async function* utf16ToUtf8(pieces: AsyncIterable<Buffer>, bigEndian: boolean): AsyncGenerator<Buffer> {
  let carry: Buffer | undefined;
  for await (const piece of pieces) {
    const buf = carry ? Buffer.concat([carry, piece]) : piece;
    let whole = buf.length & ~1;
    // A high surrogate at the end waits for its pair in the next piece.
    if (whole >= 2) {
      const last = bigEndian ? buf.readUInt16BE(whole - 2) : buf.readUInt16LE(whole - 2);
      if (last >= 0xd800 && last <= 0xdbff) whole -= 2;
    }
    carry = whole < buf.length ? Buffer.from(buf.subarray(whole)) : undefined;
    if (whole > 0) yield utf16Units(buf.subarray(0, whole), bigEndian);
  }
  if (carry) {
    const whole = carry.length & ~1;
    yield Buffer.concat([utf16Units(carry.subarray(0, whole), bigEndian), Buffer.from([MARKER])]);
  }
}

function utf16Units(bytes: Buffer, bigEndian: boolean): Buffer {
  const text = (bigEndian ? Buffer.from(bytes).swap16() : bytes).toString('utf16le');
  return withMarkers(text, LONE_SURROGATE);
}

/** `text` as UTF-8, with a marker for each match of `invalid` (a global, one-unit pattern). */
function withMarkers(text: string, invalid: RegExp): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  for (const match of text.matchAll(invalid)) {
    parts.push(Buffer.from(text.slice(from, match.index), 'utf8'), Buffer.from([MARKER]));
    from = match.index + 1;
  }
  if (from === 0) return Buffer.from(text, 'utf8');
  parts.push(Buffer.from(text.slice(from), 'utf8'));
  return Buffer.concat(parts);
}

/**
 * Apple's Mac OS Roman mapping since Mac OS 8.5 (and Python's mac_roman): 0xDB is the euro sign and 0xF0
 * the Apple logo (U+F8FF, private use), where iconv-lite's older table has `¤` and nothing.
 */
const MAC_ROMAN_FIXES = { 219: '€', 240: '\uf8ff' } as Record<number, string>;

/** A single-byte encoding: one character per byte, so a byte without one is found by its index. */
async function* singleByteToUtf8(pieces: AsyncIterable<Buffer>, encoding: string): AsyncGenerator<Buffer> {
  const fixes = iconv().getCodec(encoding) === iconv().getCodec('macintosh') ? MAC_ROMAN_FIXES : undefined;
  for await (const piece of pieces) {
    let text = iconv().decode(piece, encoding);
    if (fixes) text = text.replaceAll('¤', fixes[0xdb]!);
    if (!text.includes('\uFFFD')) {
      yield Buffer.from(text, 'utf8');
      continue;
    }
    const parts: Buffer[] = [];
    let from = 0;
    for (let i = text.indexOf('\uFFFD'); i !== -1; i = text.indexOf('\uFFFD', i + 1)) {
      const fixed = fixes?.[piece[i]!];
      parts.push(
        Buffer.from(text.slice(from, i), 'utf8'),
        fixed === undefined ? Buffer.from([MARKER, piece[i]!]) : Buffer.from(fixed, 'utf8'),
      );
      from = i + 1;
    }
    parts.push(Buffer.from(text.slice(from), 'utf8'));
    yield Buffer.concat(parts);
  }
}

/** Any other encoding, through iconv-lite's stream decoder; its U+FFFD (no character) becomes a marker. */
async function* multiByteToUtf8(pieces: AsyncIterable<Buffer>, encoding: string): AsyncGenerator<Buffer> {
  const decoder = iconv().getDecoder(encoding, { stripBOM: false });
  for await (const piece of pieces) yield withMarkers(decoder.write(piece), REPLACEMENT);
  const rest = decoder.end();
  if (rest) yield withMarkers(rest, REPLACEMENT);
}

const REPLACEMENT = /\uFFFD/g;

/**
 * Encodings a user's non-UTF-8 file most likely is in, tie broken in this order; Latin-1 (which decodes
 * every byte, 0x80–0x9F as control characters) when neither reads the bytes as plausible text.
 */
const GUESSES = ['windows-1252', 'macintosh'] as const;
const FALLBACK = 'latin1';
const TYPOGRAPHY = new Set('’‘“”–—…•€£¥°«»¡¿©®™§¶·\u00a0');
/** How each guess decodes the bytes 0x80–0xFF (made on the first guess). */
let decodedHigh: Map<string, string> | undefined;
function highHalves(): Map<string, string> {
  decodedHigh ??= new Map(
    GUESSES.map((e) => {
      const table = iconv().decode(Buffer.from(Array.from({ length: 128 }, (_, i) => 128 + i)), e);
      return [e, e === 'macintosh' ? table.replace('¤', MAC_ROMAN_FIXES[0xdb]!) : table];
    }),
  );
  return decodedHigh;
}

const isAsciiLetter = (b: number | undefined): boolean =>
  b !== undefined && ((b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a));
const isAsciiLower = (b: number | undefined): boolean => b !== undefined && b >= 0x61 && b <= 0x7a;

/** How plausible `ch` is as text between the bytes `prev` and `next`: letters inside words, typography. */
function plausibility(ch: string, prev: number | undefined, next: number | undefined): number {
  if (ch === '\uFFFD') return -100; // not even decodable
  if (ch < '\u00a0') return -3; // a C1 control
  if (ch === '’' && isAsciiLetter(prev) && isAsciiLetter(next)) return 2; // it’s, don’t
  if (TYPOGRAPHY.has(ch)) return 1;
  if (/\p{Ll}/u.test(ch)) return isAsciiLetter(prev) || isAsciiLetter(next) ? 1 : -1;
  if (/\p{Lu}/u.test(ch)) {
    if (isAsciiLower(prev)) return -1; // a capital inside a lower-case word
    return isAsciiLetter(next) ? 1 : 0;
  }
  return -1;
}

/**
 * The encoding a chunk's invalid UTF-8 most likely is: each invalid byte is decoded as each candidate
 * would decode it and scored for how text-like the result is with its neighbours.
 */
export function guessEncoding(buf: Uint8Array, offsets: readonly number[]): string {
  let best: string = FALLBACK;
  let bestScore = 0;
  for (const encoding of GUESSES) {
    const table = highHalves().get(encoding)!;
    let score = 0;
    for (const at of offsets) {
      const b = buf[at]!;
      if (b >= 0x80) score += plausibility(table[b - 0x80]!, buf[at - 1], buf[at + 1]);
    }
    if (score > bestScore) {
      best = encoding;
      bestScore = score;
    }
  }
  return best;
}

/**
 * What is wrong with the invalid bytes at `at` (an offset into `buf`): for UTF-8 input, where they are
 * in the file and what the file looks like; for decoded input, which byte had no character.
 */
export function invalidInputMessage(options: {
  encoding: string;
  buf: Uint8Array;
  at: number;
  /** Offset of `buf[0]` in the input file (UTF-8 input only). */
  fileOffset: number;
  column?: string | undefined;
  /** Where the bytes are when not in a column, e.g. `in the header`. */
  place?: string | undefined;
  /** The encoding the invalid bytes look like (UTF-8 input only). */
  guess?: string | undefined;
}): string {
  const { encoding, buf, at, column, place, guess } = options;
  const where = column !== undefined ? ` (column ${column})` : place !== undefined ? ` ${place}` : '';
  if (encoding === UTF8) {
    const hint = guess === undefined ? '' : `; the file looks like ${guess}: try --encoding ${guess}`;
    return `invalid UTF-8 at byte offset ${options.fileOffset + at}${where}${hint}`;
  }
  if (decoderKind(encoding) === 'single-byte' && buf[at] === MARKER && at + 1 < buf.length) {
    return `byte 0x${buf[at + 1]!.toString(16).padStart(2, '0')} has no character in ${encoding}${where}`;
  }
  return `invalid ${encoding} input${where}: bytes with no character in ${encoding}`;
}

/**
 * Throws BP_ENCODING at the first invalid byte of `bytes[0, end)`: for text that no record can take
 * and set aside (a CSV header), and for the stream stages, which have no rejects. `lineOf` gives the
 * line of an offset into `bytes`.
 */
export function checkText(
  bytes: Buffer,
  end: number,
  where: {
    file: string;
    fileOffset: number;
    encoding: string;
    place?: string;
    lineOf: (at: number) => number;
  },
): void {
  if (isUtf8(bytes.subarray(0, end))) return;
  const at = invalidUtf8Offsets(bytes, 0, end, 1)[0] ?? 0;
  const guess = where.encoding === UTF8 ? guessEncoding(bytes, invalidUtf8Offsets(bytes, 0, end)) : undefined;
  const { encoding, fileOffset, place } = where;
  const message = invalidInputMessage({ encoding, buf: bytes, at, fileOffset, place, guess });
  throw new BatchpipeError(ErrorCodes.ENCODING, message, { file: where.file, line: where.lineOf(at) });
}

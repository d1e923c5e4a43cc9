/**
 * The pre-tokenizers of o200k_base and cl100k_base: where the split regex of each encoding would end the
 * piece that starts at a given index. BPE then runs on each piece alone, so a text's token count is the
 * sum of its pieces' counts, and pieces repeat enough to be counted once and looked up after.
 *
 * The regexes (tiktoken's, as gpt-tokenizer writes them for JavaScript) are:
 *
 *   o200k: [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'s|'t|…)?
 *        | [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'s|'t|…)?
 *        | \p{N}{1,3} | ␠?[^\s\p{L}\p{N}]+[\r\n/]* | \s*[\r\n]+ | \s+(?!\S) | \s+
 *   cl100k: '(?:s|t|…) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,3} | ␠?[^\s\p{L}\p{N}]+[\r\n]*
 *        | \s+$ | \s*[\r\n] | \s+(?!\S) | \s
 *
 * (contractions `'s 't 're 've 'm 'll 'd` in any case). Matching them with the regex engine is two
 * thirds of a count; these hand-written scanners give the same pieces about three times faster. Each
 * branch below follows the regex's own backtracking order; test/cost-tokens.test.ts compares both
 * scanners with the package's regexes on real text and on random strings of every character class.
 */

/** In [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]: may start or lead a word (o200k). */
const UP = 1;
/** In [\p{Ll}\p{Lm}\p{Lo}\p{M}]: may end a word (o200k). */
const LO = 2;
const LETTER = 4;
const NUMBER = 8;
/** `\s` as tiktoken reads it: Unicode White_Space. */
const SPACE = 16;
/** `\r` or `\n`. */
const NEWLINE = 32;
/** Set for every code point, so that 0 means "past the end". */
const CHAR = 64;

/** Character classes by code point, filled on first sight (ASCII up front). */
const classes = new Uint8Array(0x110000);
const UP_RE = /^[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]$/u;
const LO_RE = /^[\p{Ll}\p{Lm}\p{Lo}\p{M}]$/u;
const LETTER_RE = /^\p{L}$/u;
const NUMBER_RE = /^\p{N}$/u;
// tiktoken's regex engine (Rust) reads \s as Unicode White_Space; JavaScript's \s differs on two code
// points (U+FEFF is \s, U+0085 is not). The scanners follow OpenAI's tokenizer, not the JavaScript regex.
const SPACE_RE = /^\p{White_Space}$/u;

function classify(cp: number): number {
  const ch = String.fromCodePoint(cp);
  let c = CHAR;
  if (UP_RE.test(ch)) c |= UP;
  if (LO_RE.test(ch)) c |= LO;
  if (LETTER_RE.test(ch)) c |= LETTER;
  if (NUMBER_RE.test(ch)) c |= NUMBER;
  if (SPACE_RE.test(ch)) c |= SPACE;
  if (cp === 0x0a || cp === 0x0d) c |= NEWLINE;
  classes[cp] = c;
  return c;
}
for (let cp = 0; cp < 0x80; cp++) classify(cp);

/** The class of the code point at `i` (0 at the end of the text). */
function classAt(text: string, i: number): number {
  const u = text.charCodeAt(i);
  if (u < 0x80) return classes[u]!;
  if (i >= text.length) return 0;
  const cp = text.codePointAt(i)!;
  return classes[cp] || classify(cp);
}

/** UTF-16 units of the code point at `i`. */
function widthAt(text: string, i: number): number {
  const u = text.charCodeAt(i);
  if (u < 0xd800 || u > 0xdbff) return 1;
  const low = text.charCodeAt(i + 1);
  return low >= 0xdc00 && low <= 0xdfff ? 2 : 1;
}

/** [^\r\n\p{L}\p{N}]: the one character allowed before a word. */
const isWordPrefix = (c: number) => (c & (CHAR | NEWLINE | LETTER | NUMBER)) === CHAR;
/** [^\s\p{L}\p{N}]: punctuation, symbols, marks, emoji, controls. */
const isSymbol = (c: number) => (c & (CHAR | SPACE | LETTER | NUMBER)) === CHAR;

/** End of a contraction (`'s`, `'T`, `'ll`, `'Ve`, …) starting at `i`, else `i`. */
function contractionEnd(text: string, i: number): number {
  if (text.charCodeAt(i) !== 0x27) return i;
  const a = text.charCodeAt(i + 1) | 0x20;
  if (a === 0x73 || a === 0x74 || a === 0x64 || a === 0x6d) return i + 2; // s t d m
  const b = text.charCodeAt(i + 2) | 0x20;
  if ((a === 0x6c && b === 0x6c) || ((a === 0x76 || a === 0x72) && b === 0x65)) return i + 3; // ll ve re
  return i;
}

/** `\p{N}{1,3}` from `i`, which holds a number. */
function numberEnd(text: string, i: number): number {
  let end = i + widthAt(text, i);
  for (let n = 1; n < 3 && classAt(text, end) & NUMBER; n++) end += widthAt(text, end);
  return end;
}

/** `␠?[^\s\p{L}\p{N}]+` then `[\r\n]*`, or `[\r\n/]*` with `slashes` (o200k). */
function symbolsEnd(text: string, i: number, slashes: boolean): number {
  let end = text.charCodeAt(i) === 0x20 ? i + 1 : i;
  while (isSymbol(classAt(text, end))) end += widthAt(text, end);
  while (classAt(text, end) & NEWLINE || (slashes && text.charCodeAt(end) === 0x2f)) end++;
  return end;
}

/** o200k, first word branch from `k`: `[UP]*[LO]+`, the greedy `[UP]*` giving back to `[LO]+`; -1 if none. */
function o200kLowerWordEnd(text: string, k: number): number {
  let end = k;
  let afterLastBoth = -1;
  let c = classAt(text, end);
  while (c & UP) {
    end += widthAt(text, end);
    if (c & LO) afterLastBoth = end;
    c = classAt(text, end);
  }
  if (c & LO) {
    while (c & LO) {
      end += widthAt(text, end);
      c = classAt(text, end);
    }
  } else if (afterLastBoth >= 0) {
    // Backtracking: [LO]+ takes the last character of the run that is in both classes (Lm, Lo, M).
    end = afterLastBoth;
  } else {
    return -1;
  }
  return contractionEnd(text, end);
}

/** o200k, second word branch from `k`: `[UP]+[LO]*`; -1 if none. */
function o200kUpperWordEnd(text: string, k: number): number {
  let end = k;
  let c = classAt(text, end);
  if (!(c & UP)) return -1;
  while (c & UP) {
    end += widthAt(text, end);
    c = classAt(text, end);
  }
  while (c & LO) {
    end += widthAt(text, end);
    c = classAt(text, end);
  }
  return contractionEnd(text, end);
}

/** The three whitespace branches shared by both encodings, from `i`, which holds whitespace. */
function spaceEnd(text: string, i: number, runToEndIsOnePiece: boolean): number {
  let end = i;
  let afterLastNewline = -1;
  let c = classAt(text, end);
  while (c & SPACE) {
    end++; // every \s character is in the BMP
    if (c & NEWLINE) afterLastNewline = end;
    c = classAt(text, end);
  }
  if (runToEndIsOnePiece && end === text.length) return end; // cl100k: \s+$
  if (afterLastNewline >= 0) return afterLastNewline; // \s*[\r\n]+ (o200k) or \s*[\r\n] (cl100k)
  if (end === text.length) return end; // o200k: \s+(?!\S) at the end
  return end - i >= 2 ? end - 1 : end; // \s+(?!\S) leaves the last space to the next word; else \s+ or \s
}

/** ASCII letters, digits and symbols (neither of those nor whitespace), for the fast paths. */
const isAsciiLower = (u: number) => u >= 0x61 && u <= 0x7a;
const isAsciiUpper = (u: number) => u >= 0x41 && u <= 0x5a;
const isAsciiLetter = (u: number) => isAsciiLower(u) || isAsciiUpper(u);
const isAsciiDigit = (u: number) => u >= 0x30 && u <= 0x39;
const isAsciiSymbol = (u: number) => u < 0x80 && (classes[u]! & (SPACE | LETTER | NUMBER)) === 0;

/**
 * The common pieces of ASCII text without class lookups: a word with at most one character before it
 * (` the`, `,Word`, `HTTP`; o200k ends a word where lower case turns upper, `One|World`, cl100k
 * where the letters end), up to three digits, a run of symbols. -1 when the piece is something else or reaches a non-ASCII character, which may
 * belong to it: the general path decides then.
 */
function asciiPieceEnd(text: string, i: number, o200k: boolean): number {
  const first = text.charCodeAt(i);
  let end = i;
  let u = first;
  if (!isAsciiLetter(u)) {
    if (u >= 0x80 || u === 0x0a || u === 0x0d || isAsciiDigit(u)) {
      if (!isAsciiDigit(u)) return -1;
      do u = text.charCodeAt(++end);
      while (end - i < 3 && isAsciiDigit(u));
      return end - i < 3 && u >= 0x80 ? -1 : end;
    }
    u = text.charCodeAt(++end);
  }
  const letters = end;
  if (o200k) {
    while (isAsciiUpper(u)) u = text.charCodeAt(++end);
    while (isAsciiLower(u)) u = text.charCodeAt(++end);
  } else {
    while (isAsciiLetter(u)) u = text.charCodeAt(++end);
  }
  if (u >= 0x80) return -1;
  if (end > letters) return o200k ? contractionEnd(text, end) : end;
  // Not a word: ␠?[^\s\p{L}\p{N}]+[\r\n(/)]*, the symbols being ASCII up to their end.
  end = first === 0x20 ? i + 1 : i;
  u = text.charCodeAt(end);
  if (!isAsciiSymbol(u)) return -1;
  while (isAsciiSymbol(u)) u = text.charCodeAt(++end);
  if (u >= 0x80) return -1;
  while (u === 0x0a || u === 0x0d || (o200k && u === 0x2f)) u = text.charCodeAt(++end);
  return end;
}

/** Where o200k_base's split regex ends the piece that starts at `i` (`i < text.length`). */
export function o200kPieceEnd(text: string, i: number): number {
  const ascii = asciiPieceEnd(text, i, true);
  if (ascii >= 0) return ascii;
  const c = classAt(text, i);
  if (c & (UP | LO) || isWordPrefix(c)) {
    // Each branch with its optional prefix character first, then without it (a mark can be both).
    const k = isWordPrefix(c) ? i + widthAt(text, i) : -1;
    const letter = (c & (UP | LO)) !== 0;
    let end = k >= 0 ? o200kLowerWordEnd(text, k) : -1;
    if (end < 0 && letter) end = o200kLowerWordEnd(text, i);
    if (end < 0 && k >= 0) end = o200kUpperWordEnd(text, k);
    if (end < 0 && letter) end = o200kUpperWordEnd(text, i);
    if (end >= 0) return end;
  }
  if (c & NUMBER) return numberEnd(text, i);
  if (isSymbol(c) || (text.charCodeAt(i) === 0x20 && isSymbol(classAt(text, i + 1)))) {
    return symbolsEnd(text, i, true);
  }
  return spaceEnd(text, i, false);
}

/** Where cl100k_base's split regex ends the piece that starts at `i` (`i < text.length`). */
export function cl100kPieceEnd(text: string, i: number): number {
  const contraction = contractionEnd(text, i);
  if (contraction > i) return contraction;
  const ascii = asciiPieceEnd(text, i, false);
  if (ascii >= 0) return ascii;
  const c = classAt(text, i);
  let start = -1;
  if (c & LETTER) start = i;
  else if (isWordPrefix(c) && classAt(text, i + widthAt(text, i)) & LETTER) start = i + widthAt(text, i);
  if (start >= 0) {
    let end = start;
    while (classAt(text, end) & LETTER) end += widthAt(text, end);
    return end;
  }
  if (c & NUMBER) return numberEnd(text, i);
  if (isSymbol(c) || (text.charCodeAt(i) === 0x20 && isSymbol(classAt(text, i + 1)))) {
    return symbolsEnd(text, i, false);
  }
  return spaceEnd(text, i, true);
}

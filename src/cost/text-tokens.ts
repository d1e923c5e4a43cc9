/**
 * Token counts of plain text in an encoding, exactly as the tokenizer package counts them, at a
 * fraction of its cost: the text is split with the encoding's own pre-tokenizer (pretokenize.ts) and
 * each piece's count is looked up, the package counting only pieces not seen before. Owns the piece
 * tables of this thread; touches nothing else.
 */
import { cl100kPieceEnd, o200kPieceEnd } from './pretokenize.js';
import { type EncodingName, packageEncoding, packageRanks } from './tokenizer-package.js';

export type { EncodingName } from './tokenizer-package.js';

/** Counts tokens of text in one encoding. */
export interface TokenCounter {
  readonly encoding: EncodingName;
  /** Tokens of `text` (special-token text such as `<|endoftext|>` counts as ordinary text, as the API bills it). */
  count(text: string): number;
  /** The longest start of `text`, ending between two pieces, that is at most `maxTokens` tokens. */
  prefixWithin(text: string, maxTokens: number): string;
  /** The pieces `count` sums, as the encoding's split regex would cut them (for tests and diagnostics). */
  pieces(text: string): string[];
}

const counters = new Map<EncodingName, TokenCounter>();

/**
 * The counter of `encoding` for this thread. The encoding itself is loaded on the first piece the
 * counter has not seen, so creating a counter is free.
 *
 * @example
 * ```ts
 * tokenCounter('o200k_base').count('tiktoken is great!'); // 6
 * ```
 */
export function tokenCounter(encoding: EncodingName): TokenCounter {
  let counter = counters.get(encoding);
  if (!counter) {
    counter = createCounter(encoding);
    counters.set(encoding, counter);
  }
  return counter;
}

/** Texts up to this long are remembered whole, up to this many of them. */
const SHORT_TEXT = 64;
const MAX_SHORT_TEXTS = 4_096;

/** Piece tables start small (they stay in the CPU caches) and double up to this many slots. */
const FIRST_SLOTS = 1 << 12;
const MAX_SLOTS = 1 << 18;

/**
 * Piece → token count, open addressing over a hash the scan computes as it goes: no substring is cut
 * and no string hashed again for a piece seen before, which is most of them (a lookup compares the
 * stored piece with the text in place). Kept at most half full; full at its largest, it starts again.
 */
class PieceTable {
  /** Per slot: the piece's hash, then its token count (-1: empty), side by side for one cache line. */
  private entries = new Int32Array(2 * FIRST_SLOTS).fill(-1);
  private pieces: string[] = new Array<string>(FIRST_SLOTS).fill('');
  private mask = FIRST_SLOTS - 1;
  private size = 0;

  constructor(private readonly countPiece: (piece: string) => number) {}

  /** Tokens of `text[start, end)`, whose hash is `hash`. */
  tokens(text: string, start: number, end: number, hash: number): number {
    const entries = this.entries;
    let slot = spread(hash) & this.mask;
    for (;;) {
      const count = entries[2 * slot + 1]!;
      if (count < 0) break;
      if (entries[2 * slot] === hash) {
        const piece = this.pieces[slot]!;
        if (piece.length === end - start && text.startsWith(piece, start)) return count;
      }
      slot = (slot + 1) & this.mask;
    }
    const piece = text.slice(start, end);
    const count = this.countPiece(piece);
    this.insert(hash, piece, count);
    return count;
  }

  private insert(hash: number, piece: string, count: number): void {
    if (2 * (this.size + 1) > this.mask + 1) {
      const slots = this.mask + 1;
      if (slots < MAX_SLOTS) this.rehash(2 * slots);
      else this.clear();
    }
    let slot = spread(hash) & this.mask;
    while (this.entries[2 * slot + 1]! >= 0) slot = (slot + 1) & this.mask;
    this.entries[2 * slot] = hash;
    this.entries[2 * slot + 1] = count;
    this.pieces[slot] = piece;
    this.size++;
  }

  private rehash(slots: number): void {
    const { entries, pieces } = this;
    this.entries = new Int32Array(2 * slots).fill(-1);
    this.pieces = new Array<string>(slots).fill('');
    this.mask = slots - 1;
    this.size = 0;
    for (let slot = 0; slot < pieces.length; slot++) {
      if (entries[2 * slot + 1]! >= 0) this.insert(entries[2 * slot]!, pieces[slot]!, entries[2 * slot + 1]!);
    }
  }

  private clear(): void {
    this.entries.fill(-1);
    this.pieces.fill('');
    this.size = 0;
  }
}

/** Spreads a piece hash over the slot bits (murmur3's finalizer). */
function spread(hash: number): number {
  let h = hash ^ (hash >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** The hash of pieces: 31·h + UTF-16 unit, in 32 bits. */
const mix = (hash: number, unit: number) => (Math.imul(hash, 31) + unit) | 0;

const isAsciiLower = (u: number) => u >= 0x61 && u <= 0x7a;
const isAsciiUpper = (u: number) => u >= 0x41 && u <= 0x5a;
const isAsciiLetter = (u: number) => isAsciiLower(u) || isAsciiUpper(u);

function createCounter(encoding: EncodingName): TokenCounter {
  const o200k = encoding === 'o200k_base';
  const pieceEnd = o200k ? o200kPieceEnd : cl100kPieceEnd;
  const shortTexts = new Map<string, number>();
  const table = new PieceTable((piece) =>
    piece.includes('\ufeff')
      ? bytePairCount(piece, byteRanks(encoding))
      : packageEncoding(encoding).countTokens(piece),
  );

  /**
   * Calls `visit(start, end, tokens)` for each piece of `text` in order, until it returns false. The
   * most common piece, an ASCII word with at most one ASCII character before it, is scanned and hashed
   * here in one pass (o200k: upper case, then lower case, `One|World`; cl100k: letters); it must end
   * before anything that could extend it (a non-ASCII character, or in o200k an apostrophe that may
   * start a contraction), else the encoding's scanner decides.
   */
  function eachPiece(text: string, visit: (start: number, end: number, tokens: number) => boolean): void {
    const length = text.length;
    let i = 0;
    while (i < length) {
      let u = text.charCodeAt(i);
      let end = i;
      let hash = 0;
      let isWord = false;
      if (u < 0x80 && u !== 0x0a && u !== 0x0d && !(u >= 0x30 && u <= 0x39) && (o200k || u !== 0x27)) {
        if (!isAsciiLetter(u)) {
          hash = u;
          u = text.charCodeAt(++end);
        }
        const letters = end;
        if (o200k) {
          while (isAsciiUpper(u)) {
            hash = mix(hash, u);
            u = text.charCodeAt(++end);
          }
          while (isAsciiLower(u)) {
            hash = mix(hash, u);
            u = text.charCodeAt(++end);
          }
        } else {
          while (isAsciiLetter(u)) {
            hash = mix(hash, u);
            u = text.charCodeAt(++end);
          }
        }
        isWord = end > letters && !(u >= 0x80) && !(o200k && u === 0x27);
      }
      if (!isWord) {
        end = pieceEnd(text, i);
        hash = 0;
        for (let k = i; k < end; k++) hash = mix(hash, text.charCodeAt(k));
      }
      if (!visit(i, end, table.tokens(text, i, end, hash))) return;
      i = end;
    }
  }

  return {
    encoding,
    count(text) {
      // Short strings repeat (roles, a system prompt rendered from a constant): remembered whole.
      if (text.length <= SHORT_TEXT) {
        const known = shortTexts.get(text);
        if (known !== undefined) return known;
      }
      let total = 0;
      eachPiece(text, (_start, _end, tokens) => {
        total += tokens;
        return true;
      });
      if (text.length <= SHORT_TEXT) {
        if (shortTexts.size >= MAX_SHORT_TEXTS) shortTexts.clear();
        shortTexts.set(text, total);
      }
      return total;
    },
    prefixWithin(text, maxTokens) {
      let total = 0;
      let cut = 0;
      eachPiece(text, (_start, end, tokens) => {
        if (total + tokens > maxTokens) return false;
        total += tokens;
        cut = end;
        return true;
      });
      return text.slice(0, cut);
    },
    pieces(text) {
      const pieces: string[] = [];
      eachPiece(text, (start, end) => pieces.push(text.slice(start, end)) > 0);
      return pieces;
    },
  };
}

/*
 * gpt-tokenizer reads the bytes EF BB BF (U+FEFF, the byte order mark) back as an empty string, so it
 * never merges them into the tokens that hold them and counts too many tokens for a piece with a
 * U+FEFF in it (js-tiktoken agrees with OpenAI's tokenizer there). Such pieces, rare in real text, are
 * counted here with tiktoken's own byte-pair merge over the package's ranks, read as bytes.
 */

const byteRankTables = new Map<EncodingName, Map<string, number>>();

/** Rank by token bytes (as a latin1 string), built on first need (~0.1 s, tens of MB). */
function byteRanks(encoding: EncodingName): Map<string, number> {
  let ranks = byteRankTables.get(encoding);
  if (!ranks) {
    ranks = new Map();
    const tokens = packageRanks(encoding);
    for (let rank = 0; rank < tokens.length; rank++) {
      const token = tokens[rank]!;
      const bytes = typeof token === 'string' ? Buffer.from(token, 'utf8') : Buffer.from(token);
      ranks.set(bytes.toString('latin1'), rank);
    }
    byteRankTables.set(encoding, ranks);
  }
  return ranks;
}

/** Tokens of one piece by byte-pair merge: merge the adjacent pair of lowest rank until none has a rank. */
function bytePairCount(piece: string, ranks: Map<string, number>): number {
  const bytes = Buffer.from(piece, 'utf8').toString('latin1');
  if (ranks.has(bytes)) return 1;
  const parts = Array.from({ length: bytes.length + 1 }, (_, i) => i);
  for (;;) {
    let best = -1;
    let bestRank = Number.POSITIVE_INFINITY;
    for (let i = 0; i + 2 < parts.length; i++) {
      const rank = ranks.get(bytes.slice(parts[i], parts[i + 2]));
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        best = i;
      }
    }
    if (best < 0) return parts.length - 1;
    parts.splice(best + 1, 1);
  }
}

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

/** Slots of a piece table (a power of two); it starts again when half full (~8 MB a thread at most). */
const TABLE_SLOTS = 1 << 18;
const MAX_PIECES = TABLE_SLOTS >> 1;

/**
 * Piece → token count, open addressing over a hash the scan computes as it goes: no substring is cut
 * and no string hashed again for a piece seen before, which is most of them (a lookup compares the
 * stored piece with the text in place).
 */
class PieceTable {
  private readonly hashes = new Int32Array(TABLE_SLOTS);
  private readonly counts = new Int32Array(TABLE_SLOTS).fill(-1);
  private readonly pieces: string[] = new Array<string>(TABLE_SLOTS).fill('');
  private size = 0;

  constructor(private readonly countPiece: (piece: string) => number) {}

  /** Tokens of `text[start, end)`, whose hash is `hash`. */
  tokens(text: string, start: number, end: number, hash: number): number {
    const mask = TABLE_SLOTS - 1;
    let slot = hash & mask;
    for (;;) {
      const count = this.counts[slot]!;
      if (count < 0) break;
      if (this.hashes[slot] === hash) {
        const piece = this.pieces[slot]!;
        if (piece.length === end - start && text.startsWith(piece, start)) return count;
      }
      slot = (slot + 1) & mask;
    }
    const piece = text.slice(start, end);
    const count = this.countPiece(piece);
    if (this.size >= MAX_PIECES) {
      this.counts.fill(-1);
      this.pieces.fill('');
      this.size = 0;
      slot = hash & mask;
    }
    this.hashes[slot] = hash;
    this.counts[slot] = count;
    this.pieces[slot] = piece;
    this.size++;
    return count;
  }
}

/** The hash of pieces: 31·h + UTF-16 unit, in 32 bits. */
const mix = (hash: number, unit: number) => (Math.imul(hash, 31) + unit) | 0;

const isAsciiLower = (u: number) => u >= 0x61 && u <= 0x7a;
const isAsciiUpper = (u: number) => u >= 0x41 && u <= 0x5a;
const isAsciiLetter = (u: number) => isAsciiLower(u) || isAsciiUpper(u);

function createCounter(encoding: EncodingName): TokenCounter {
  const o200k = encoding === 'o200k_base';
  const pieceEnd = o200k ? o200kPieceEnd : cl100kPieceEnd;
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
      let total = 0;
      eachPiece(text, (_start, _end, tokens) => {
        total += tokens;
        return true;
      });
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

/**
 * The one module that names the tokenizer package (gpt-tokenizer, see docs/cost.md for the choice).
 * Everything else gets an encoding from here, so switching the package, or its path, is one line.
 *
 * Encodings are loaded on first use, synchronously (the CommonJS build, through `createRequire`): a
 * command that never counts tokens never pays the ~0.2 s and ~25–60 MB an encoding costs a thread.
 */
import { createRequire } from 'node:module';

/** Where `require` finds a module of the package (`encoding/o200k_base`, …): its exports map adds `cjs/` and `.js`. */
const specifier = (module: string) => `gpt-tokenizer/${module}`;

/** The BPE encodings batchpipe counts with. */
export type EncodingName = 'o200k_base' | 'cl100k_base';

/** What batchpipe uses of an encoding: a count of the tokens of a text, special-token text counted as text. */
export interface PackageEncoding {
  countTokens(text: string): number;
}

interface GptTokenizerEncoding {
  countTokens(text: string, options: { disallowedSpecial: Set<string> }): number;
}

const requireFromHere = createRequire(import.meta.url);
const loaded = new Map<EncodingName, PackageEncoding>();
// The API bills `<|endoftext|>` typed by a user as ordinary text; the package would throw on it by default.
const SPECIAL_AS_TEXT = { disallowedSpecial: new Set<string>() };

/** The package's encoding `name`, loaded once per thread. */
export function packageEncoding(name: EncodingName): PackageEncoding {
  let encoding = loaded.get(name);
  if (!encoding) {
    const module = requireFromHere(specifier(`encoding/${name}`)) as GptTokenizerEncoding;
    encoding = { countTokens: (text) => module.countTokens(text, SPECIAL_AS_TEXT) };
    loaded.set(name, encoding);
  }
  return encoding;
}

/**
 * The mergeable tokens of encoding `name` by rank: their text, or their bytes where those are not
 * UTF-8 text on their own (or, a package quirk, start with the bytes of U+FEFF).
 */
export function packageRanks(name: EncodingName): readonly (string | readonly number[])[] {
  const module = requireFromHere(specifier(`bpeRanks/${name}`)) as { default: (string | number[])[] };
  return module.default;
}

/** The package's own split regex of `name`, which pretokenize.ts re-implements (tests compare the two). */
export function packageSplitRegex(name: EncodingName): RegExp {
  const constants = requireFromHere(specifier('encodingParams/constants')) as Record<string, RegExp>;
  return constants[name === 'o200k_base' ? 'O200K_TOKEN_SPLIT_REGEX' : 'CL100K_TOKEN_SPLIT_REGEX']!;
}

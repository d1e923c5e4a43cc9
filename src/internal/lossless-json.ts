/**
 * JSON.parse turns 123456789012345678 into 123456789012345680. A number whose exact text would not
 * survive the round trip (more than 15 significant digits, trailing fraction zeros, exponents) is kept
 * as its exact text instead, so an 18-digit id stays 18 digits in a custom_id or a prompt.
 */
const RISKY_NUMBER = /\d{16}|\.\d*0(?![\d])|\d[eE]/;
// Strings are matched first and left alone; only bare number tokens are captured.
const TOKENS = /"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;

/** Parses JSON, keeping numbers that JSON.parse would alter as exact strings. */
export function parseJsonLossless(text: string): unknown {
  if (!RISKY_NUMBER.test(text)) return JSON.parse(text);
  const quoted = text.replace(TOKENS, (token, number: string | undefined) => {
    if (number === undefined) return token;
    return String(Number(number)) === number ? number : `"${number}"`;
  });
  return JSON.parse(quoted);
}

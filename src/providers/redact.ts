/**
 * How a provider takes its API key out of a text before the text is shown or stored. Owns nothing
 * and touches nothing: a pure function every provider uses for its `redact`.
 */

/**
 * Keys shorter than this are left in: a placeholder key such as `x` or `local` (what a local server
 * accepts) would cut its letters out of every word of every message, and a real key is far longer.
 */
const MIN_SECRET_LENGTH = 8;

/** Replaces every occurrence of `secret` in a text with `[redacted]`. */
export function secretRedactor(secret: string): (text: string) => string {
  if (secret.length < MIN_SECRET_LENGTH) return (text) => text;
  return (text) => text.split(secret).join('[redacted]');
}

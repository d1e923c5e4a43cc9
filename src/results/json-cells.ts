/**
 * The CSV cells of a JSONL input's record, taken from the record's own text: a string value as the
 * string it encodes, `null` as an empty cell, and anything else (numbers, `true`/`false`, objects,
 * arrays) as the exact text the line gives it, whitespace and escapes included. So `1.0`, `1e5`,
 * `-0` and a 21-digit integer keep their digits at any depth, which parsing and printing again
 * (JSON.parse loses digits; lossless parsing turns risky numbers into strings) cannot promise.
 * Pure functions over a string; nothing else is touched.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Each top-level member of a JSON object's text as its cell text (the last one for a repeated
 * key, as JSON.parse keeps), or `undefined` when the text is not a JSON object.
 *
 * @example
 * jsonObjectCells('{"id":"a","n":{"x":1.0}}') // Map { 'id' => 'a', 'n' => '{"x":1.0}' }
 */
export function jsonObjectCells(text: string): Map<string, string> | undefined {
  if (!isJsonObjectText(text)) return undefined;
  // Valid JSON from here on: the scan only has to find where each member's text starts and ends.
  const cells = new Map<string, string>();
  let i = skipSpace(text, skipSpace(text, 0) + 1); // past the `{`
  while (text.charCodeAt(i) === QUOTE) {
    const keyEnd = stringEnd(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    const start = skipSpace(text, skipSpace(text, keyEnd) + 1); // past the `:`
    const end = valueEnd(text, start);
    cells.set(key, cellText(text.slice(start, end)));
    i = skipSpace(text, end);
    if (text[i] === ',') i = skipSpace(text, i + 1);
  }
  return cells;
}

/** True when `text` is valid JSON whose value is an object (so it can be embedded in JSON as it is). */
export function isJsonObjectText(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** A member value's text as its cell. */
function cellText(raw: string): string {
  if (raw.charCodeAt(0) === QUOTE) return JSON.parse(raw) as string;
  return raw === 'null' ? '' : raw;
}

/** JSON's whitespace: space, tab, LF, CR. */
function skipSpace(text: string, at: number): number {
  let i = at;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return i;
    i++;
  }
}

/** The index just past the string token that starts (with its quote) at `at`. */
function stringEnd(text: string, at: number): number {
  let i = at + 1;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) i += 2;
    else if (c === QUOTE) return i + 1;
    else i++;
  }
}

/** The index just past the value that starts at `at`: a string, an object or array, or a literal. */
function valueEnd(text: string, at: number): number {
  const first = text[at];
  if (first === '"') return stringEnd(text, at);
  if (first === '{' || first === '[') {
    let depth = 0;
    let i = at;
    for (;;) {
      const c = text[i];
      if (c === '"') {
        i = stringEnd(text, i);
        continue;
      }
      if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
  }
  // A number, true, false or null: up to the next delimiter.
  let i = at;
  while (i < text.length && !/[\s,}]/.test(text[i]!)) i++;
  return i;
}

/**
 * UTF-8 at the byte level, for the slow paths only (the fast ones use Node's native isUtf8): where a
 * sequence is invalid, and where a buffer ends without cutting a character. Pure functions.
 */

/** Length of the well-formed UTF-8 sequence at `buf[i]` (ending before `end`), or 0. */
function sequenceLength(buf: Uint8Array, i: number, end: number): number {
  const b0 = buf[i]!;
  if (b0 < 0x80) return 1;
  let length: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) length = 2;
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    length = 3;
    if (b0 === 0xe0) lo = 0xa0;
    else if (b0 === 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    length = 4;
    if (b0 === 0xf0) lo = 0x90;
    else if (b0 === 0xf4) hi = 0x8f;
  } else return 0;
  if (i + length > end) return 0;
  const b1 = buf[i + 1]!;
  if (b1 < lo || b1 > hi) return 0;
  for (let k = 2; k < length; k++) {
    const b = buf[i + k]!;
    if (b < 0x80 || b > 0xbf) return 0;
  }
  return length;
}

/** Offsets of the bytes in `buf[from, to)` that start no valid UTF-8 sequence (at most `limit`). */
export function invalidUtf8Offsets(buf: Uint8Array, from: number, to: number, limit = 256): number[] {
  const out: number[] = [];
  for (let i = from; i < to && out.length < limit; ) {
    if (buf[i]! < 0x80) {
      i++;
      continue;
    }
    const length = sequenceLength(buf, i, to);
    if (length === 0) {
      out.push(i);
      i++;
    } else i += length;
  }
  return out;
}

/** Where `buf[0, end)` ends without an incomplete UTF-8 character at its end. */
export function wholeCharactersEnd(buf: Uint8Array, end = buf.length): number {
  let lead = end - 1;
  while (lead >= 0 && end - lead < 4 && (buf[lead]! & 0xc0) === 0x80) lead--;
  if (lead < 0 || buf[lead]! < 0xc2 || buf[lead]! > 0xf4) return end;
  const need = buf[lead]! >= 0xf0 ? 4 : buf[lead]! >= 0xe0 ? 3 : 2;
  return end - lead < need ? lead : end;
}

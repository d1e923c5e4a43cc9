/**
 * Deterministic pseudo-randomness for the responder and the fault injector: the same inputs (and seed)
 * always give the same numbers, across runs and restarts, so tests and rehearsals are reproducible.
 */

/** A 32-bit hash (FNV-1a, then murmur3's finalizer) of the parts, joined with a separator no part can forge. */
export function hash32(...parts: Array<string | number>): number {
  let h = 0x811c9dc5;
  for (let p = 0; p < parts.length; p++) {
    const text = p === 0 ? String(parts[p]) : `\u0000${parts[p]}`;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  }
  // FNV alone barely mixes inputs that differ in one late character; murmur3's finalizer fixes that.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A number in [0, 1) derived from the parts. */
export function unitHash(...parts: Array<string | number>): number {
  return hash32(...parts) / 0x1_0000_0000;
}

/** A seeded random source (mulberry32): `next()` is in [0, 1). */
export interface Rng {
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
}

/** Creates a random source seeded from the parts. */
export function createRng(...parts: Array<string | number>): Rng {
  let state = hash32(...parts);
  const next = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T,
  };
}

/** 32 lowercase hex characters derived from the parts (for ids that must be stable across restarts). */
export function hexHash(...parts: Array<string | number>): string {
  let out = '';
  for (let i = 0; i < 4; i++)
    out += hash32(i, ...parts)
      .toString(16)
      .padStart(8, '0');
  return out;
}

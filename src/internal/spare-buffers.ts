/**
 * Chunk-sized memory handed back once a chunk is done with, for the next chunks' copies: a few large
 * buffers going round instead of a fresh large allocation per chunk, which malloc maps and unmaps
 * each time under the bin's fixed mmap threshold (and the kernel zeroes every page again). Owns the
 * buffers it holds; touches nothing else.
 */
export class SpareBuffers {
  readonly #free: ArrayBuffer[] = [];
  constructor(readonly most: number) {}

  /** Keeps `buffer` for a later `take`, unless `most` are kept already (then it is left to the GC). */
  put(buffer: ArrayBuffer): void {
    if (buffer.byteLength > 0 && this.#free.length < this.most) this.#free.push(buffer);
  }

  /** A spare of at least `size` bytes, or undefined. */
  take(size: number): ArrayBuffer | undefined {
    const i = this.#free.findIndex((b) => b.byteLength >= size);
    return i === -1 ? undefined : this.#free.splice(i, 1)[0];
  }

  /** `bytes` copied into a spare when one is big enough, else into new memory: a view of exactly its size. */
  copy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
    const spare = this.take(bytes.length);
    const copy = spare === undefined ? new Uint8Array(bytes.length) : new Uint8Array(spare, 0, bytes.length);
    copy.set(bytes);
    return copy;
  }
}

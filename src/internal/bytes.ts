/**
 * Byte views. Owns nothing; touches only the views it is given.
 */

/**
 * The same memory as a Buffer, never a copy: a Buffer that crossed threads arrives as a plain
 * Uint8Array, and reads may come as either.
 */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

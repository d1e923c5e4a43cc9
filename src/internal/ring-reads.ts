/**
 * A file's bytes read in chunks into a few buffers that go round, for a consumer that is done with
 * each chunk soon after the next is asked for (an upload's request body). Owns its buffers; reads
 * the descriptor it is given and never closes it.
 *
 * Why: a fresh buffer per chunk stays in memory until V8 collects it, and while a run uploads it
 * allocates little else, so nothing prompts a collection before tens of megabytes of sent chunks
 * have piled up; that pile was the peak of a whole `run`. Buffers that go round keep it at
 * `ring × chunkBytes` however many files are uploaded.
 */
import { read } from 'node:fs';
import { promisify } from 'node:util';

const readAt = promisify(read);

/**
 * The bytes of `fd` from offset 0 to its end. Chunk `k` is read into the memory of chunk
 * `k - ring`: a consumer must be done with a chunk before it asks for the `ring`-th chunk after it
 * (copy what it keeps longer).
 */
export async function* ringReads(fd: number, chunkBytes: number, ring: number): AsyncGenerator<Uint8Array> {
  const buffers: Buffer[] = [];
  let position = 0;
  for (let k = 0; ; k++) {
    // allocUnsafeSlow: memory of its own, never a slice of Node's shared pool.
    if (k < ring) buffers.push(Buffer.allocUnsafeSlow(chunkBytes));
    const buffer = buffers[k % ring]!;
    const { bytesRead } = await readAt(fd, buffer, 0, chunkBytes, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

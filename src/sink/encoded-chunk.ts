/**
 * The chunk the sink writes: one chunk of input records after template → validate → encode, made
 * by prepare's encoder (on any thread) and by the stream stages, written by BatchWriter. A plain
 * data contract: nothing here reads or writes anything.
 */
import type { ChunkReject } from '../types.js';

/**
 * One chunk's records after template → validate → encode, column-wise so it crosses threads as a few
 * transferable buffers instead of thousands of objects. Seqs are not known yet: the writer assigns
 * them in chunk order.
 */
export interface EncodedChunk {
  count: number;
  lines: Int32Array;
  /** The chunk's source bytes: record i is `source[starts[i], ends[i])`, kept byte-exact in the ledger. */
  source: Uint8Array;
  starts: Int32Array;
  ends: Int32Array;
  /** Explicit custom_id per record, or null where it is derived from the seq (and for rejects). */
  ids: (string | null)[];
  /** The model of every request, or per record when the template makes it vary. */
  model: string | null;
  models: (string | null)[] | null;
  /** UTF-8 of each request's tail (the line after its custom_id), concatenated; `tailEnds[i]` ends record i's. */
  tails: Uint8Array;
  tailEnds: Int32Array;
  tokens: Int32Array;
  rejects: ChunkReject[];
}

/**
 * The buffers of a chunk, for postMessage's transfer list. Every one was allocated for this chunk
 * alone (typed arrays, allocUnsafeSlow, the received source), never from Node's shared Buffer pool,
 * so transferring them detaches nothing else.
 */
export function transferablesOf(chunk: EncodedChunk): ArrayBuffer[] {
  const arrays = [
    chunk.lines,
    chunk.source,
    chunk.starts,
    chunk.ends,
    chunk.tails,
    chunk.tailEnds,
    chunk.tokens,
  ];
  return [...new Set(arrays.map((a) => a.buffer as ArrayBuffer))];
}

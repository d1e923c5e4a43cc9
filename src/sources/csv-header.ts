/**
 * The CSV header at the start of an input's first chunk, for `prepare` and the `csvSource` stage
 * alike. Owns the header's checks (size, text, duplicate names); touches only the chunk it is given.
 */
import { BatchpipeError, ErrorCodes } from '../errors.js';
import { type Chunk, countLineBreaks } from './chunker.js';
import { checkText } from './encoding.js';
import { parseCsvHeader } from './parse-chunk.js';

/**
 * The CSV header at the start of the first chunk (which must be valid text and fit `--max-bytes`): its
 * columns, and the chunk's records after it.
 */
export function splitCsvHeader(
  first: Chunk,
  source: string,
  encoding: string,
  maxBytes: number,
): { columns: string[]; body: Chunk } {
  if (first.oversize) {
    throw new BatchpipeError(
      ErrorCodes.PARSE,
      `the CSV header is more than ${maxBytes} bytes (--max-bytes)`,
      {
        file: source,
        line: first.firstLine,
      },
    );
  }
  const header = parseCsvHeader(first, source);
  const linesBefore = (at: number) => countLineBreaks(first.bytes, 'csv', 0, at);
  checkText(first.bytes, header.bodyStart, {
    file: source,
    fileOffset: first.offset,
    encoding,
    place: 'in the header',
    lineOf: (at) => first.firstLine + linesBefore(at),
  });
  const headerLines = linesBefore(header.bodyStart);
  const body: Chunk = {
    ...first,
    bytes: first.bytes.subarray(header.bodyStart),
    firstLine: first.firstLine + headerLines,
    lineBreaks: first.lineBreaks - headerLines,
    offset: first.offset + header.bodyStart,
  };
  return { columns: header.columns, body };
}

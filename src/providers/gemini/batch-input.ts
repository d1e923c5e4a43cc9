/**
 * A request file as the Gemini Batch API takes it: each of batchpipe's lines (`{ custom_id, method,
 * url, body }`, the body a native Gemini request) becomes `{ key, request }`, the `custom_id` as the key
 * (Gemini gives it back on the result line) and the body without its `model` (the batch names the
 * model; one model per batch). Owns the converted copy it writes; reads the request file, touches
 * nothing else.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { LineSplitter } from '../../internal/lines.js';

/** One Gemini input line for one of batchpipe's request lines. */
export function geminiInputLine(line: { custom_id: string; body: Record<string, unknown> }): {
  key: string;
  request: Record<string, unknown>;
} {
  const { model: _model, ...request } = line.body;
  return { key: line.custom_id, request };
}

/**
 * Writes the Gemini form of the request file at `from` to `to`, streamed; returns the requests and
 * bytes written. Blank lines are skipped (prepare writes none).
 */
export async function writeGeminiInput(from: string, to: string): Promise<{ lines: number; bytes: number }> {
  const out = createWriteStream(to);
  let lines = 0;
  let bytes = 0;
  let pending: string[] = [];
  const splitter = new LineSplitter((raw) => {
    const text = raw.bytes.toString('utf8');
    if (text.trim() === '') return;
    const converted = `${JSON.stringify(geminiInputLine(JSON.parse(text)))}\n`;
    pending.push(converted);
    bytes += Buffer.byteLength(converted);
    lines++;
  });
  try {
    for await (const chunk of createReadStream(from)) {
      splitter.push(chunk as Buffer);
      if (pending.length > 0 && !out.write(pending.join(''))) await once(out, 'drain');
      pending = [];
    }
    splitter.end();
    if (pending.length > 0) out.write(pending.join(''));
    out.end();
    await once(out, 'close');
  } catch (err) {
    out.destroy();
    throw err;
  }
  return { lines, bytes };
}

/**
 * Deterministic generator of messy synthetic customer-feedback CSV, for the benchmark and for tests.
 *
 * Same `rows` + `seed` → byte-identical output, on any machine (a seeded PRNG, never Math.random, and no
 * locale- or clock-dependent formatting). Output is streamed in ~64 KB chunks with backpressure; the
 * file is never held in memory.
 *
 * Columns: `id,created_at,customer,channel,rating,text`.
 * - `id`: 18-digit numeric string, unique (checks that ids keep their exact digits).
 * - `customer`, `channel`, `rating`: sometimes empty; customers have accents, apostrophes, commas, quotes.
 * - `text`: never empty; median ~200 characters, ~8% short (< 40), ~2% long (1.5–2.5 KB); quotes,
 *   commas, embedded LF newlines (no CR anywhere: the file is LF-only), emoji (incl. ZWJ sequences,
 *   skin tones, flags), accents, `£`/`€`, curly quotes, tabs, backslashes, and the odd literal
 *   `{{text}}` or `{text}` (placeholder syntax that must be inserted as data, never expanded).
 *
 * @example
 * ```sh
 * node dist/bench/generate.js --rows 1000000 --out /tmp/feedback.csv --seed 1
 * node dist/bench/generate.js --rows 10 | head
 * ```
 */
import { createWriteStream, realpathSync } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** Bump when the output for a given rows+seed changes, so cached bench data is regenerated. */
export const GENERATOR_VERSION = 1;

export const FEEDBACK_COLUMNS = ['id', 'created_at', 'customer', 'channel', 'rating', 'text'] as const;

export interface GenerateOptions {
  /** Number of data rows (the header is extra). */
  rows: number;
  /** Any string or integer; default 1. */
  seed?: number | string;
}

/** A small, fast, well-mixed 32-bit PRNG (mulberry32). Returns floats in [0, 1). */
export function createRng(seed: number | string): () => number {
  let a = seedToUint32(seed);
  return function next(): number {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function seedToUint32(seed: number | string): number {
  // FNV-1a over the seed's canonical text, so 1 and '1' are the same seed.
  const text = String(seed);
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

// biome-ignore format: a word list reads better packed
const FIRST = [
  'Jane', 'José', 'Zoë', 'Björn', 'Siobhán', 'Chloé', 'Mohammed', 'Ana', 'François', 'Łukasz', 'Priya',
  'Søren', 'Tom', 'Aoife', 'Renée', 'Nguyễn', 'Oliver', 'Amélie', 'Raúl', 'Yuki',
];
// biome-ignore format: a word list reads better packed
const LAST = [
  'Smith', "O'Brien", 'Álvarez', 'Müller', 'Núñez', 'Dupont', 'Kowalski', 'Ødegaard', 'Patel', 'Brontë',
  'García', 'Jones', 'Nakamura', 'Ó Súilleabháin', 'Lefèvre', 'Wójcik', 'Taylor', 'Çelik',
];
const CHANNELS = ['email', 'chat', 'phone', 'app', 'web', 'twitter', 'in-store', 'survey'];

// biome-ignore format: a word list reads better packed
const SUBJECTS = [
  'The delivery driver', 'Your support team', 'The app', 'My order', 'The café on the high street',
  'Customer service', 'The refund process', 'The new loyalty scheme', 'Checkout', 'The courier',
  'Your website', 'The agent on the phone', 'The parcel', 'This product', 'The crème brûlée kit',
];
// biome-ignore format: a word list reads better packed
const VERBS = [
  'was', 'has been', 'seemed', 'felt', 'turned out to be', 'is honestly', 'was, frankly,', 'ended up',
];
// biome-ignore format: a word list reads better packed
const ADJECTIVES = [
  'brilliant', 'slow', 'a total mess', 'really helpful', 'confusing', 'late again', 'fine, I suppose',
  'rude', 'fantastic', 'naïve about what customers want', 'over-engineered', 'surprisingly quick',
  'broken on Android', 'worth every penny', 'déjà vu all over again',
];
// biome-ignore format: a word list reads better packed
const TAILS = [
  '', '', '', ' this time', ' for the third week running', ', which I did not expect', ' (again)',
  ' — no idea why', ', to be fair', ' after I paid £49.99', ' despite the €20 surcharge', '…',
  ' in São Paulo and in Düsseldorf', ', I mean it', ' and my jalapeño order was missing',
];
const EXTRAS = [
  'The agent said "we can\'t help with that" and hung up.',
  'It was labelled "next day", but took a week.',
  'Tracking said "delivered" — it wasn\'t.',
  'I was charged £12.50, then £12.50 again, then £3.',
  'Order #A-1042, ref 77/B, postcode SW1A 1AA.',
  'My husband said, and I quote, "never again".',
  'Five stars for Zoë at the front desk, zero for the façade repairs.',
  'Refund of £1,299.00 still pending after 14 days!!!',
  '“Premium” my foot.',
  'It’s not rocket science, is it?',
  'Tried the chat, the email, the phone; nothing.',
  'Copied the error from C:\\Users\\me\\Downloads\\invoice.pdf as asked.',
  'Fields:\tname\tpostcode\tphone — all filled in.',
  'Your template literally said {{text}} in the subject line.',
  'Got an email saying "Hello {first_name}" lol.',
  'Can you fix the "Save" button?',
  'Price went from £9.99 to £14.99, a 50% rise.',
  'Résumé uploaded three times; still "processing".',
  'Half the items were "out of stock", the other half were wrong.',
  'Brilliant service, thank you!',
];
// biome-ignore format: a word list reads better packed
const EMOJI = [
  '😀', '😡', '👍', '👍🏽', '🙄', '❤️', '🇬🇧', '👩‍💻', '🤷‍♀️', '⭐⭐⭐', '😂😂', '🔥', '💩', '🎉', '😤', '🙏🏼',
];
// biome-ignore format: a word list reads better packed
const SHORT = [
  'Great!', 'Terrible 😡', 'ok', 'Where is my refund??', '👍', 'N/A', 'meh', 'Love it ❤️', 'No.',
  'Fine, thanks', '"Meh"', 'Never again.', 'Très bien', '£££', 'Slow, slow, slow', 'Brill 🎉',
  'see attached', 'Quick\nand easy', '10/10', 'Why???',
];

// Rows are written in chunks of about this many characters.
const CHUNK_CHARS = 64 * 1024;

/** Quote a CSV field only when it needs it (RFC 4180): comma, quote, CR or LF. */
function csvField(value: string): string {
  if (/[",\r\n]/.test(value)) return `"${value.replaceAll('"', '""')}"`;
  return value;
}

/**
 * Yields the CSV (header first) as string chunks of ~64 KB. Pure and synchronous: same options → same
 * chunks.
 */
export function* generateFeedbackCsv(options: GenerateOptions): Generator<string, void, undefined> {
  const { rows } = options;
  if (!Number.isSafeInteger(rows) || rows < 0)
    throw new RangeError(`rows must be a non-negative integer, got ${rows}`);
  const rand = createRng(options.seed ?? 1);
  const int = (n: number): number => Math.floor(rand() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)] as T;

  let time = Date.UTC(2024, 0, 1, 8, 0, 0);
  let chunk = `${FEEDBACK_COLUMNS.join(',')}\n`;

  for (let i = 0; i < rows; i++) {
    const id = `91${String(i).padStart(16, '0')}`;
    time += 1000 + int(90_000);
    const createdAt = new Date(time).toISOString();

    const c = rand();
    let customer: string;
    if (c < 0.05) customer = '';
    else if (c < 0.1) customer = `${pick(LAST)}, ${pick(FIRST)}`;
    else if (c < 0.12) customer = `${pick(FIRST)} "${pick(FIRST)}" ${pick(LAST)}`;
    else customer = `${pick(FIRST)} ${pick(LAST)}`;

    const channel = rand() < 0.03 ? '' : pick(CHANNELS);
    const rating = rand() < 0.08 ? '' : String(1 + int(5));

    const t = rand();
    let text: string;
    if (t < 0.08) {
      text = pick(SHORT);
    } else {
      // Triangular 100–300 (median 200) for most rows; 1.5–2.5 KB for ~2%.
      const target = t < 0.1 ? 1500 + int(1000) : 80 + int(100) + int(100);
      text = '';
      while (text.length < target) {
        if (text.length > 0) {
          const s = rand();
          text += s < 0.08 ? '\n' : s < 0.1 ? '\n\n' : ' ';
        }
        const kind = rand();
        if (kind < 0.45) {
          text += `${pick(SUBJECTS)} ${pick(VERBS)} ${pick(ADJECTIVES)}${pick(TAILS)}.`;
        } else if (kind < 0.85) {
          text += pick(EXTRAS);
        } else {
          text += `${pick(SUBJECTS)} ${pick(VERBS)} ${pick(ADJECTIVES)} ${pick(EMOJI)}`;
        }
        if (rand() < 0.12) text += ` ${pick(EMOJI)}`;
      }
    }

    chunk += `${id},${createdAt},${csvField(customer)},${channel},${rating},${csvField(text)}\n`;
    if (chunk.length >= CHUNK_CHARS) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk.length > 0) yield chunk;
}

export interface GenerateResult {
  rows: number;
  bytes: number;
}

/**
 * Streams the CSV to a file path or a Writable (e.g. `process.stdout`), respecting backpressure.
 * A Writable is ended when done, except process.stdout / process.stderr.
 */
export async function writeFeedbackCsv(
  destination: string | Writable,
  options: GenerateOptions,
): Promise<GenerateResult> {
  let bytes = 0;
  const counted = function* (): Generator<string, void, undefined> {
    for (const chunk of generateFeedbackCsv(options)) {
      bytes += Buffer.byteLength(chunk);
      yield chunk;
    }
  };
  const sink = typeof destination === 'string' ? createWriteStream(destination) : destination;
  const isStdio = sink === process.stdout || sink === process.stderr;
  await pipeline(Readable.from(counted(), { objectMode: false }), sink, { end: !isStdio });
  return { rows: options.rows, bytes };
}

async function cli(argv: string[]): Promise<number> {
  const usage = 'usage: node dist/bench/generate.js --rows N [--out FILE|-] [--seed S]\n';
  let values: { rows?: string; out?: string; seed?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        rows: { type: 'string' },
        out: { type: 'string' },
        seed: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`generate: ${(err as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const rows = Number(values.rows);
  if (values.rows === undefined || !Number.isSafeInteger(rows) || rows < 0) {
    process.stderr.write(`generate: --rows must be a non-negative integer\n${usage}`);
    return 2;
  }
  const out = values.out ?? '-';
  const seed = values.seed ?? 1;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
  });
  const started = performance.now();
  const result = await writeFeedbackCsv(out === '-' ? process.stdout : out, { rows, seed });
  const secs = (performance.now() - started) / 1000;
  process.stderr.write(
    `generate: ${result.rows} rows, ${result.bytes} bytes (seed ${seed}) in ${secs.toFixed(2)} s` +
      `${out === '-' ? '' : ` → ${out}`}\n`,
  );
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  cli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`generate: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

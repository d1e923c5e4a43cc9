/**
 * What a `batchpipe serve` really did, read from its own state: every batch (listed through the SDK)
 * and the lines of every output and error file (read from its data dir, so no fault of the server
 * touches the audit). The ground truth the scheduler tests check the ledger against.
 * (Not a test file itself.)
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import type { Batch } from 'openai/resources/batches';
import type { FileObject } from 'openai/resources/files';

export interface ServerAudit {
  batches: Batch[];
  /** Uploaded batch input files. */
  uploads: FileObject[];
  /** custom_id → lines naming it across every batch's output and error files. */
  answers: Map<string, number>;
  /** custom_id → lines answering it with a 2xx response. */
  succeeded: Map<string, number>;
  /** The request lines of a server file (an input file), by its id. */
  inputLines(fileId: string): string[];
}

export async function auditServer(url: string, dataDir: string): Promise<ServerAudit> {
  const client = new OpenAI({ apiKey: 'local', baseURL: url });
  const batches: Batch[] = [];
  for await (const b of client.batches.list({ limit: 100 })) batches.push(b);
  const uploads: FileObject[] = [];
  for await (const f of client.files.list({ purpose: 'batch' })) uploads.push(f);
  const fileLines = (fileId: string): string[] => {
    const file = path.join(dataDir, 'files', fileId);
    return existsSync(file)
      ? readFileSync(file, 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
      : [];
  };
  const answers = new Map<string, number>();
  const succeeded = new Map<string, number>();
  for (const b of batches) {
    for (const fileId of [b.output_file_id, b.error_file_id]) {
      if (!fileId) continue;
      for (const line of fileLines(fileId)) {
        const parsed = JSON.parse(line) as { custom_id: string; response: { status_code: number } | null };
        answers.set(parsed.custom_id, (answers.get(parsed.custom_id) ?? 0) + 1);
        if (parsed.response && parsed.response.status_code < 300)
          succeeded.set(parsed.custom_id, (succeeded.get(parsed.custom_id) ?? 0) + 1);
      }
    }
  }
  return { batches, uploads, answers, succeeded, inputLines: fileLines };
}

/** custom_ids named more than once across the server's output and error files. */
export function answeredTwice(audit: ServerAudit): string[] {
  return [...audit.answers].filter(([, n]) => n > 1).map(([id]) => id);
}

/** A CSV of `n` records `id,text` (ids `r0`…), each text `size` characters long. */
export function csvRecords(n: number, size = 40): string {
  const rows = ['id,text'];
  for (let i = 0; i < n; i++) rows.push(`r${i},${`record ${i} `.padEnd(size, 'x')}`);
  return `${rows.join('\n')}\n`;
}

/** `batchpipe run -` on `csvRecords` input against a Batch API at `url`, polling fast. */
export function runArgs(ledger: string, url: string, ...extra: string[]): string[] {
  return [
    'run',
    '-',
    '--ledger',
    ledger,
    '--base-url',
    url,
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'id',
    '--prompt',
    'Echo {{text}}',
    '--format',
    'jsonl',
    '--poll-interval',
    '0.05',
    ...extra,
  ];
}

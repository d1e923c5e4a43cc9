/**
 * Each request file's real token count, made once when the enqueued-token limit or `--max-usd` needs
 * it (just before the file's batch is created, or when the budget checks the whole run) and kept in
 * the ledger (files.token_count), where the limit, the budget and the cost projection read it. prepare does not count: see docs/cost.md ("Where tokens are counted").
 * Touches the files table only through BatchTables.
 */
import { countRequestFile, type FileTokens } from '../cost/file-tokens.js';
import type { FileRow } from '../ledger/ledger.js';
import type { ScheduledRun } from './scheduled-run.js';

/** The file's token count: the one the ledger keeps, or counted now (streamed from disk) and kept. */
export async function fileTokens(run: ScheduledRun, file: FileRow): Promise<FileTokens> {
  if (file.token_count !== null) return JSON.parse(file.token_count) as FileTokens;
  const tokens = await countRequestFile(file.path);
  const json = JSON.stringify(tokens);
  run.tables.setTokenCount(file.id, json, tokens.inputTokens);
  file.token_count = json;
  file.tokens = tokens.inputTokens;
  return tokens;
}

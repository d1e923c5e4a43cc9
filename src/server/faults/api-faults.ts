import type { BatchError } from '../types.js';

/**
 * Faults of the API itself (not of the requests a batch runs), each on the first N occasions so a
 * test knows exactly what it meets:
 * - `--truncate-downloads N`: a download of a `batch_output` file ends cleanly after half its lines,
 *   as behind a proxy or a dropped connection that happened to cut at a line boundary;
 * - `--lose-create-responses N`: an upload or a batch creation takes effect, then the connection is
 *   reset before the response is sent;
 * - `--null-output-files N`: a completed batch is shown once with `output_file_id: null` while its
 *   `request_counts` already report the successes (the file id appears on the next retrieve).
 */
export interface ApiFaults {
  /** Whether this download of a `batch_output` file is to be cut short. */
  truncateDownload(): boolean;
  /** Whether this create call, already carried out, loses its response. */
  loseCreateResponse(): boolean;
  /** Whether this retrieve of a completed batch hides its output file id. */
  hideOutputFile(batchId: string): boolean;
}

export interface ApiFaultCounts {
  truncateDownloads: number;
  loseCreateResponses: number;
  nullOutputFiles: number;
}

export function createApiFaults(counts: ApiFaultCounts): ApiFaults {
  const firstN = (n: number) => {
    let used = 0;
    return () => {
      if (used >= n) return false;
      used++;
      return true;
    };
  };
  const truncateDownload = firstN(counts.truncateDownloads);
  const loseCreateResponse = firstN(counts.loseCreateResponses);
  const hidden = new Set<string>();
  return {
    truncateDownload,
    loseCreateResponse,
    hideOutputFile(batchId) {
      if (hidden.has(batchId) || hidden.size >= counts.nullOutputFiles) return false;
      hidden.add(batchId);
      return true;
    },
  };
}

/**
 * `--fail-validation-line N`: a batch whose input holds N or more requests fails validation naming
 * line N, as OpenAI reports a line its rules refuse (rules that can differ from the client's own).
 */
export function injectedLineError(requests: number, failLine: number | undefined): BatchError | undefined {
  if (failLine === undefined || requests < failLine) return undefined;
  return {
    code: 'invalid_request',
    message: `Line ${failLine}: the request was refused by the batch's validation (injected by the local server's --fail-validation-line).`,
    param: 'body',
    line: failLine,
  };
}

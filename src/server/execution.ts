/** The contract between the batch engine and whatever answers its requests (built-in, upstream, faults). */

/** One request of a batch, as the engine hands it out. */
export interface ExecRequest {
  batchId: string;
  customId: string;
  url: string;
  body: Record<string, unknown>;
}

/**
 * How a request ended: an HTTP response (2xx goes to the output file, anything else to the error file),
 * or a non-HTTP failure (error file, `response: null`).
 */
export type Outcome =
  | { kind: 'response'; statusCode: number; requestId?: string | undefined; body: unknown }
  | { kind: 'error'; code: string; message: string };

/** Answers one request. Must reject (or resolve late, to be discarded) once `signal` aborts. */
export type Executor = (request: ExecRequest, signal: AbortSignal) => Promise<Outcome>;

/** A 4xx/5xx response with OpenAI's error body. */
export function errorResponse(
  statusCode: number,
  message: string,
  type: string,
  code: string | null = null,
  param: string | null = null,
): Outcome {
  return { kind: 'response', statusCode, body: { error: { message, type, param, code } } };
}

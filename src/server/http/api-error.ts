/** An error the API answers with OpenAI's body `{ error: { message, type, param, code } }`. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
  /** Extra response headers, e.g. `retry-after` on injected faults. */
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    options: {
      type?: string;
      param?: string | null;
      code?: string | null;
      headers?: Record<string, string>;
    } = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = options.type ?? 'invalid_request_error';
    this.param = options.param ?? null;
    this.code = options.code ?? null;
    this.headers = options.headers ?? {};
  }

  toBody(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400 invalid_request_error. */
export function invalidRequest(
  message: string,
  param: string | null = null,
  code: string | null = null,
): ApiError {
  return new ApiError(400, message, { param, code });
}

/** 404 for an object id that is unknown (or shaped so that it could never exist). */
export function noSuchObject(kind: 'File' | 'Batch', id: string, param = 'id'): ApiError {
  return new ApiError(404, `No such ${kind} object: ${id}`, { param });
}

/** 404 for a route the API does not have, worded as OpenAI words it. */
export function invalidUrl(method: string, path: string): ApiError {
  return new ApiError(404, `Invalid URL (${method} ${path})`);
}

/** 500 server_error, for bugs and injected faults. */
export function serverError(
  message = 'The server had an error while processing your request. Sorry about that!',
) {
  return new ApiError(500, message, { type: 'server_error' });
}

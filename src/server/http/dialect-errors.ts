/**
 * Which API a request path belongs to, and an {@link ApiError} in that API's own error body: OpenAI's
 * `{ error: { message, type, param, code } }`, Anthropic's `{ type: 'error', error: { type, message },
 * request_id }`, Google's `{ error: { code, message, status } }`. Handlers throw one ApiError whatever
 * the API; only the rendering differs.
 */
import type { Dialect } from '../types.js';
import type { ApiError } from './api-error.js';

/** The API of a path: `/v1/messages/…` is Anthropic's, `/v1beta/…` and Google's upload and download paths Gemini's. */
export function dialectOfPath(path: string): Dialect {
  if (path === '/v1/messages' || path.startsWith('/v1/messages/')) return 'anthropic';
  if (
    path.startsWith('/v1beta/') ||
    path.startsWith('/upload/v1beta/') ||
    path.startsWith('/download/v1beta/')
  )
    return 'gemini';
  return 'openai';
}

/** Types an ApiError may carry for Anthropic; the rest (`invalid_request_error`, every ApiError's default, included) follow the status. */
const ANTHROPIC_TYPES = new Set([
  'authentication_error',
  'billing_error',
  'permission_error',
  'not_found_error',
  'request_too_large',
  'rate_limit_error',
  'timeout_error',
  'api_error',
  'overloaded_error',
]);

/** Anthropic's error type for an HTTP status. */
export function anthropicErrorType(status: number): string {
  switch (status) {
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 408:
      return 'timeout_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 529:
      return 'overloaded_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

/** Google's canonical status name for an HTTP status (google.rpc.Code, as its JSON errors spell it). */
export function googleStatus(status: number): string {
  switch (status) {
    case 400:
      return 'INVALID_ARGUMENT';
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'PERMISSION_DENIED';
    case 404:
      return 'NOT_FOUND';
    case 408:
    case 504:
      return 'DEADLINE_EXCEEDED';
    case 409:
      return 'ALREADY_EXISTS';
    case 413:
      return 'INVALID_ARGUMENT';
    case 429:
      return 'RESOURCE_EXHAUSTED';
    case 501:
      return 'UNIMPLEMENTED';
    case 503:
      return 'UNAVAILABLE';
    default:
      return status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT';
  }
}

/** google.rpc.Code numbers, for `Status` objects inside results (HTTP bodies carry the HTTP status). */
const RPC_CODES: Record<string, number> = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

/** The google.rpc.Code number of a status name (13, INTERNAL, when unknown). */
export function rpcCode(status: string): number {
  return RPC_CODES[status] ?? 13;
}

/** The body of `err` in `dialect`'s shape. */
export function errorBody(err: ApiError, dialect: Dialect, requestId: string): unknown {
  switch (dialect) {
    case 'anthropic':
      return {
        type: 'error',
        error: {
          type: ANTHROPIC_TYPES.has(err.type) ? err.type : anthropicErrorType(err.status),
          message: err.message,
        },
        request_id: requestId,
      };
    case 'gemini':
      return {
        error: {
          code: err.status,
          message: err.message,
          status: /^[A-Z_]+$/.test(err.type) ? err.type : googleStatus(err.status),
        },
      };
    default:
      return err.toBody();
  }
}

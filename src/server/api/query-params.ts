import { invalidRequest } from '../http/api-error.js';

/** Reads an integer query parameter within [min, max], or the default when absent. */
export function intParam(
  query: URLSearchParams,
  name: string,
  min: number,
  max: number,
  fallback: number,
): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidRequest(
      `Invalid '${name}': expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}.`,
      name,
    );
  }
  return value;
}

/** Reads `order` (`asc` | `desc`). */
export function orderParam(query: URLSearchParams, fallback: 'asc' | 'desc'): 'asc' | 'desc' {
  const raw = query.get('order');
  if (raw === null || raw === '') return fallback;
  if (raw !== 'asc' && raw !== 'desc') {
    throw invalidRequest(`Invalid 'order': expected 'asc' or 'desc', got ${JSON.stringify(raw)}.`, 'order');
  }
  return raw;
}

/** Reads an optional string parameter (absent or empty → undefined). */
export function stringParam(query: URLSearchParams, name: string): string | undefined {
  const raw = query.get(name);
  return raw === null || raw === '' ? undefined : raw;
}

/** The body of a cursor-paginated list, as OpenAI shapes it. */
export function listBody<T extends { id: string }>(data: T[], hasMore: boolean) {
  return {
    object: 'list' as const,
    data,
    first_id: data[0]?.id ?? null,
    last_id: data[data.length - 1]?.id ?? null,
    has_more: hasMore,
  };
}

import { invalidUrl } from './api-error.js';

/** A matched route: its handler and the decoded path segments captured by `:param` parts. */
export interface RouteMatch<H> {
  handler: H;
  params: string[];
}

interface Route<H> {
  method: string;
  parts: string[];
  handler: H;
}

/**
 * A tiny exact-segment router. Paths are split on `/` *before* percent-decoding and are never
 * normalised, so `..` or an encoded `/` inside an id stays one opaque segment for the handler to reject.
 */
export function createRouter<H>(table: Array<[method: string, pattern: string, handler: H]>) {
  const routes: Route<H>[] = table.map(([method, pattern, handler]) => ({
    method,
    parts: pattern.split('/').filter(Boolean),
    handler,
  }));
  return function match(method: string, rawPath: string): RouteMatch<H> {
    const segments = rawPath.split('/').filter((s, i, all) => s !== '' || (i > 0 && i < all.length - 1));
    for (const route of routes) {
      if (route.method !== method || route.parts.length !== segments.length) continue;
      const params: string[] = [];
      let ok = true;
      for (let i = 0; i < route.parts.length && ok; i++) {
        const part = route.parts[i] as string;
        const segment = segments[i] as string;
        if (part.startsWith(':')) params.push(safeDecode(segment));
        else ok = part === segment;
      }
      if (ok) return { handler: route.handler, params };
    }
    throw invalidUrl(method, rawPath);
  };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // Malformed escapes stay as they are and fail the id pattern.
  }
}

import { invalidUrl } from './api-error.js';

/** A matched route: its handler and the decoded path segments captured by `:param` parts. */
export interface RouteMatch<H> {
  handler: H;
  params: string[];
}

interface Route<H> {
  method: string;
  parts: Part[];
  handler: H;
}

/** A pattern segment: a literal, or a captured segment that must end with a literal suffix (`''`: any). */
type Part = { literal: string } | { suffix: string };

/** `files` → a literal; `:id` → a capture; `:name:cancel` → a capture of what comes before `:cancel`. */
function parsePart(part: string): Part {
  if (!part.startsWith(':')) return { literal: part };
  const colon = part.indexOf(':', 1);
  return { suffix: colon === -1 ? '' : part.slice(colon) };
}

/**
 * A tiny exact-segment router. Paths are split on `/` *before* percent-decoding and are never
 * normalised, so `..` or an encoded `/` inside an id stays one opaque segment for the handler to reject.
 * A segment pattern `:name:verb` matches Google's custom methods (`batches/abc:cancel`), capturing `abc`;
 * list such routes before the plain `:name` one of the same method.
 */
export function createRouter<H>(table: Array<[method: string, pattern: string, handler: H]>) {
  const routes: Route<H>[] = table.map(([method, pattern, handler]) => ({
    method,
    parts: pattern.split('/').filter(Boolean).map(parsePart),
    handler,
  }));
  return function match(method: string, rawPath: string): RouteMatch<H> {
    const segments = rawPath.split('/').filter((s, i, all) => s !== '' || (i > 0 && i < all.length - 1));
    for (const route of routes) {
      if (route.method !== method || route.parts.length !== segments.length) continue;
      const params: string[] = [];
      let ok = true;
      for (let i = 0; i < route.parts.length && ok; i++) {
        const part = route.parts[i] as Part;
        const segment = segments[i] as string;
        if ('literal' in part) ok = part.literal === segment;
        else if (
          part.suffix === '' ||
          (segment.endsWith(part.suffix) && segment.length > part.suffix.length)
        ) {
          params.push(safeDecode(segment.slice(0, segment.length - part.suffix.length)));
        } else ok = false;
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

/**
 * What every provider's direct sender shares: the header that names a request's custom_id, the fetch
 * settings of a call, whether an answer's body is JSON (a result line holds it as it is), and the
 * words for one that is not. Pure.
 */

/** The header the direct path names a request's custom_id in (the local server logs it). */
export const CUSTOM_ID_HEADER = 'x-batchpipe-custom-id';

/**
 * Fetch settings of a direct call: an API call is never redirected, and with redirects refused (and no
 * window) fetch sends the request as it is instead of cloning it first (a copy of the request and a
 * tee of its body stream per call, garbage that outlives the call's scavenges).
 */
export const DIRECT_FETCH = { redirect: 'error', window: null } as const;

/** Whether `text` is one JSON value (then a result line can hold it byte for byte). */
export function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** The message for an answer whose body is not JSON (an HTML error page from a proxy, say). */
export function notJsonMessage(status: number, body: string): string {
  return `the API answered ${status} with a body that is not JSON: ${body.slice(0, 500)}`;
}

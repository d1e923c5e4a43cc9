/**
 * What every provider's direct sender shares: the header that names a request's custom_id, whether an
 * answer's body is JSON (a result line holds it as it is), and the words for one that is not. Pure.
 */

/** The header the direct path names a request's custom_id in (the local server logs it). */
export const CUSTOM_ID_HEADER = 'x-batchpipe-custom-id';

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

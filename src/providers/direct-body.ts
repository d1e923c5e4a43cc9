/**
 * What every provider's direct sender checks of an answer's body before it becomes a result line: that
 * it is JSON (a line holds it as it is), and the words for one that is not. Pure.
 */

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

/** True for a JSON object (not null, not an array): what request bodies and their parts must be. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

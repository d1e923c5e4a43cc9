import type { IssueCode } from '../errors.js';

/**
 * What the validators report: issues as data `{ code, path, message }`, never thrown. Codes are stable
 * snake_case strings that users and scripts match on. As in zod, the message does not repeat the path:
 * present an issue with `formatIssue` (`body.messages[1].content: expected string or array, got number`).
 */
export interface ValidationIssue {
  /** One of {@link IssueCodes}. */
  code: IssueCode;
  /** Where in the request line, e.g. `body.messages[1].content`; `''` for the line as a whole or the file. */
  path: string;
  /** What was expected and what came, without the path. */
  message: string;
}

/** An issue with the 1-based line of the file it was found on. */
export interface LineIssue extends ValidationIssue {
  line: number;
}

export function issue(code: IssueCode, path: string, message: string): ValidationIssue {
  return { code, path, message };
}

/**
 * An issue for people: `path: message`, or the message alone for issues about the whole line or file.
 * @example formatIssue({ code: 'missing_field', path: 'body.model', message: 'required, expected string' })
 * // → 'body.model: required, expected string'
 */
export function formatIssue(found: Pick<ValidationIssue, 'path' | 'message'>): string {
  return found.path === '' ? found.message : `${found.path}: ${found.message}`;
}

/** A short, bounded rendering of a JSON value for messages: strings quoted and cut, containers by kind. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? `an array of ${value.length}` : 'an object';
}

/** The JSON type name of a value, as messages say it: `string`, `number`, `array`, `object`, `null`... */
export function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

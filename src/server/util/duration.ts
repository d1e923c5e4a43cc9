const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses a duration like `24h`, `90m`, `5s`, `1d` or a bare number of seconds into seconds.
 * Returns undefined when the text is not a positive duration.
 * @example parseDurationSeconds('24h') // 86400
 */
export function parseDurationSeconds(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/i.exec(text);
  if (!match) return undefined;
  const value = Number(match[1]) * (UNIT_SECONDS[(match[2] || 's').toLowerCase()] ?? 1);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

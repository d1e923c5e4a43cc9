/** The rough token estimate the server uses everywhere (usage, enqueued-token limits): ~4 characters a token. */
export function estimateTokens(text: string): number {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4);
}

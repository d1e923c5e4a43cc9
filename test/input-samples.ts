/**
 * Generated inputs shared by the input tests (not a test file itself).
 */
import { createRng } from '../bench/generate.js';

/** A random CSV mixing every record ending, blank lines, and CR/LF inside quoted fields. */
export function randomCsv(seed: number, records: number): string {
  const random = createRng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const atoms = ['a', 'bc', ' ', ',', '"', '\r', '\n', '\r\n', 'é', '😀'];
  const endings = ['\r', '\n', '\r\n'];
  let text = `id,text,note${pick(endings)}`;
  for (let r = 0; r < records; r++) {
    const fields = [String(r)];
    for (let f = 0; f < 2; f++) {
      let value = '';
      for (let k = Math.floor(random() * 6); k > 0; k--) value += pick(atoms);
      fields.push(/[",\r\n]/.test(value) || random() < 0.2 ? `"${value.replaceAll('"', '""')}"` : value);
    }
    text += fields.join(',') + pick(endings);
    if (random() < 0.1) text += pick(endings); // a blank line
  }
  return random() < 0.5 ? text : text.replace(/[\r\n]+$/, ''); // sometimes no final line break
}

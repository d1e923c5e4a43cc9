/**
 * What the input tests share: the command line they prepare a file with, and generated inputs. (Not a
 * test file itself.)
 */
import path from 'node:path';
import { createRng } from '../bench/generate.js';

/** Every test's template: model `m`, the `id` field as custom_id, `{{text}}` as the prompt. */
export const TEMPLATE_FLAGS = ['--model', 'm', '--id-column', 'id', '--prompt', '{{text}}'];

/** `prepare FILE` with the test template, its ledger (`l.db`) and request files (`out/`) beside the file. */
export function prepareFileArgs(file: string, ...flags: string[]): string[] {
  const dir = path.dirname(file);
  return [
    'prepare',
    file,
    '--ledger',
    path.join(dir, 'l.db'),
    '--out',
    path.join(dir, 'out'),
    ...TEMPLATE_FLAGS,
    ...flags,
  ];
}

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

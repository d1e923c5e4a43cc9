import type { Command } from 'commander';
import { registerIngest } from './ingest.js';
import { registerPrepare } from './prepare.js';
import { registerResults } from './results.js';
import { registerServe } from './serve.js';
import { registerValidate } from './validate.js';

/** Each command registers itself on the program; add new commands to this list. */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [
  registerPrepare,
  registerValidate,
  registerResults,
  registerIngest,
  registerServe,
];

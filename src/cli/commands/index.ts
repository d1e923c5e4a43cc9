import type { Command } from 'commander';
import { registerCancel, registerCollect, registerStatus, registerSubmit } from './batches.js';
import { registerIngest } from './ingest.js';
import { registerPrepare } from './prepare.js';
import { registerResults } from './results.js';
import { registerRun } from './run.js';
import { registerServe } from './serve.js';
import { registerValidate } from './validate.js';

/** Each command registers itself on the program; add new commands to this list. */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [
  registerRun,
  registerPrepare,
  registerValidate,
  registerSubmit,
  registerCollect,
  registerStatus,
  registerCancel,
  registerResults,
  registerIngest,
  registerServe,
];

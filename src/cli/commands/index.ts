import type { Command } from 'commander';

/** Each command registers itself on the program. */
export type RegisterCommand = (program: Command) => void;

/**
 * The commands' modules, each loaded only when one of its commands runs (all of them for help or an
 * unknown command): their imports are most of the CLI's start-up (~0.15 s of `ingest`'s 0.27 s).
 * Add new commands to this list; its order is the help's.
 */
const COMMAND_MODULES: { names: string[]; load: () => Promise<RegisterCommand[]> }[] = [
  { names: ['run'], load: async () => [(await import('./run.js')).registerRun] },
  { names: ['prepare'], load: async () => [(await import('./prepare.js')).registerPrepare] },
  { names: ['estimate'], load: async () => [(await import('./estimate.js')).registerEstimate] },
  { names: ['validate'], load: async () => [(await import('./validate.js')).registerValidate] },
  {
    names: ['submit', 'collect', 'status', 'cancel', 'retry'],
    load: async () => {
      const m = await import('./batches.js');
      return [m.registerSubmit, m.registerCollect, m.registerStatus, m.registerCancel, m.registerRetry];
    },
  },
  { names: ['results'], load: async () => [(await import('./results.js')).registerResults] },
  { names: ['ingest'], load: async () => [(await import('./ingest.js')).registerIngest] },
  { names: ['serve'], load: async () => [(await import('./serve.js')).registerServe] },
];

/** The commands `argv` (user arguments) may run: the one it names, or all of them. */
export async function commandsFor(argv: readonly string[]): Promise<RegisterCommand[]> {
  const named = COMMAND_MODULES.find((m) => argv[0] !== undefined && m.names.includes(argv[0]));
  const modules = named ? [named] : COMMAND_MODULES;
  return (await Promise.all(modules.map((m) => m.load()))).flat();
}

/** Whether `name` is one of the commands (`help NAME` with anything else is a usage error). */
export function isCommand(name: string): boolean {
  return COMMAND_MODULES.some((m) => m.names.includes(name));
}

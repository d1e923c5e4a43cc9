/**
 * Command lines the CLI prints for the user to type next (the resume line after Ctrl-C, the
 * follow-ups of `--no-wait`, the way on after a stop): built from what the user typed, with the
 * real paths and flags, so that a copy and paste works. Pure text; reads nothing.
 */
import { Command } from 'commander';

/** Quotes one argument for a POSIX shell (as is when it needs no quotes). */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_\-./:=@%+,]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** `batchpipe collect --ledger 'my runs/fb.db'`. */
export function formatCommand(args: readonly string[]): string {
  return ['batchpipe', ...args].map(shellQuote).join(' ');
}

/** One option or positional as the user typed it: its tokens, and the option's attribute name. */
interface TypedArg {
  tokens: string[];
  /** The option's attribute name (`maxLines`), or undefined for a positional argument. */
  option: string | undefined;
}

/**
 * The user's arguments to `command` (after its name), grouped: each option with its value, each
 * positional alone. Options are recognised as commander parsed them (`--opt value`, `--opt=value`,
 * `-q`); anything after `--` is positional.
 */
export function typedArgs(command: Command, args: readonly string[]): TypedArg[] {
  const out: TypedArg[] = [];
  for (let i = 0; i < args.length; i++) {
    const token = args[i]!;
    if (token === '--') {
      for (const rest of args.slice(i + 1)) out.push({ tokens: [rest], option: undefined });
      break;
    }
    const flag = token.startsWith('-') && token !== '-' ? token.split('=', 1)[0]! : undefined;
    const option =
      flag === undefined ? undefined : command.options.find((o) => o.long === flag || o.short === flag);
    if (!option) {
      out.push({ tokens: [token], option: undefined });
      continue;
    }
    const takesValue = option.required || option.optional;
    const inline = token.includes('=');
    const tokens = takesValue && !inline && i + 1 < args.length ? [token, args[++i]!] : [token];
    out.push({ tokens, option: option.attributeName() });
  }
  return out;
}

/**
 * The command line that runs `command` again as the user typed it, less the options named in
 * `drop` (attribute names) and, with `dropPositionals`, its positional arguments (the input file).
 * Options that carry a secret are never repeated.
 */
export function repeatCommand(
  command: Command,
  args: readonly string[],
  drop: { options?: readonly string[]; positionals?: boolean } = {},
): string {
  const kept = typedArgs(command, args).filter((a) =>
    a.option === undefined
      ? !drop.positionals
      : !(drop.options ?? []).includes(a.option) && !/apikey/i.test(a.option),
  );
  return formatCommand([command.name(), ...kept.flatMap((a) => a.tokens)]);
}

/** The attribute names of the options `add` puts on a command (`maxLines`, …). */
export function optionNames(add: (cmd: Command) => Command): string[] {
  return add(new Command()).options.map((o) => o.attributeName());
}

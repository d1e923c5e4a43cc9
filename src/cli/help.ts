/**
 * What every command's `--help` shows beyond commander's own: examples, and "(required)" on the
 * options a command cannot go without.
 */
import { type Command, Help, type Option } from 'commander';

/** The `Examples:` block a command adds after its help. */
export function examples(lines: readonly string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

/** Marks mandatory options in every command's help (set on the program before commands are added). */
export function configureHelp(program: Command): Command {
  return program.configureHelp({
    optionDescription(option: Option): string {
      const text = Help.prototype.optionDescription.call(this as Help, option);
      return option.mandatory ? `${text} (required)` : text;
    },
  });
}

import type { HelpConfiguration, Option, OutputConfiguration } from 'commander';
import type { Io } from './context';

/**
 * `--help` as a user reads it: wrapped to the terminal (80 columns when the output is not
 * one), required options marked, choices and defaults shown as typed, and examples.
 */

/** Help wraps at the terminal's width, or at 80 columns when the stream is not a terminal. */
export function helpWidths(
  io: Io,
): Pick<OutputConfiguration, 'getOutHelpWidth' | 'getErrHelpWidth'> {
  return {
    getOutHelpWidth: () => io.stdoutColumns ?? 80,
    getErrHelpWidth: () => io.stderrColumns ?? 80,
  };
}

export const helpConfiguration: HelpConfiguration = {
  optionDescription,
  // commander leaves a description unwrapped when less than 40 columns are left beside
  // the terms (`log`'s subcommands): wrapped it fits, unwrapped it runs past the width.
  minWidthToWrap: 24,
};

/**
 * commander's own shows choices and defaults as JSON (`{"host":"127.0.0.1","port":8080}`)
 * and does not mark required options; this shows what a user would type.
 */
function optionDescription(option: Option): string {
  const notes: string[] = [];
  if (option.mandatory) notes.push('required');
  if (option.argChoices) notes.push(`one of: ${option.argChoices.join(', ')}`);
  // A boolean flag's default (false) says nothing a user needs.
  const shownDefault =
    option.defaultValueDescription ??
    (option.isBoolean() || option.defaultValue === undefined
      ? undefined
      : String(option.defaultValue));
  if (shownDefault !== undefined) notes.push(`default: ${shownDefault}`);
  return notes.length > 0 ? `${option.description} (${notes.join('; ')})` : option.description;
}

/**
 * The "Examples:" section of a command's help (`addHelpText('after', examples(…))`): one
 * to three commands that run as shown, each a line or, when it would not fit in 80
 * columns, its lines (continued with `\`). test/cli/help.test.ts parses every example
 * with the real program, so they cannot drift from the options.
 */
export function examples(...commands: (string | readonly string[])[]): string {
  const lines = commands.map((command) =>
    typeof command === 'string' ? `  ${command}` : `  ${command.join(' \\\n    ')}`,
  );
  return `\nExamples:\n${lines.join('\n')}`;
}

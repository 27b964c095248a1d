import { Command } from 'commander';
import { stringify } from 'yaml';
import { ExitCode } from '../exit';
import type { Act } from '../program';

export function configCommand(act: Act): Command {
  return new Command('config')
    .description(
      'print the effective configuration: defaults, then the config file, then VOUCH_* ' +
        'variables, then flags',
    )
    .action(
      act((ctx) => ({
        exitCode: ExitCode.OK,
        data: ctx.config,
        text: stringify(ctx.config),
      })),
    );
}

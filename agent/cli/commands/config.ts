import { Command } from 'commander';
import type { Act } from '../program';

export function configCommand(act: Act): Command {
  return new Command('config')
    .description(
      'print the effective configuration: defaults, then the config file, then VOUCH_* ' +
        'variables, then flags',
    )
    .action(act(async () => (await import('../actions/config')).config));
}

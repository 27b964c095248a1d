import { Command } from 'commander';
import { examples } from '../help';
import type { Act } from '../program';

export function configCommand(act: Act): Command {
  return new Command('config')
    .description(
      'print the effective configuration: defaults, then the config file, then VOUCH_* ' +
        'variables, then flags',
    )
    .addHelpText('after', examples('vouch config', 'vouch config -o json --config agent.yaml'))
    .action(act(async () => (await import('../actions/config')).config));
}

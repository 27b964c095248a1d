import { Command } from 'commander';
import { examples } from '../help';
import type { Act } from '../program';

export function forkCommand(act: Act): Command {
  const fork = new Command('fork')
    .description('fork evidence kept in the state directory')
    .addHelpText('after', examples('vouch fork clear'));
  fork
    .command('clear')
    .description(
      'remove the saved fork evidence, once an operator has dealt with it (status stops reporting the fork)',
    )
    .addHelpText(
      'after',
      examples('vouch fork clear', 'vouch fork clear --state-dir /mnt/data/vouch'),
    )
    .action(act(async () => (await import('../actions/fork')).forkClear));
  return fork;
}

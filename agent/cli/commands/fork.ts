import { Command } from 'commander';
import type { Act } from '../program';

export function forkCommand(act: Act): Command {
  const fork = new Command('fork').description('fork evidence kept in the state directory');
  fork
    .command('clear')
    .description(
      'remove the saved fork evidence, once an operator has dealt with it (status stops reporting the fork)',
    )
    .action(act(async () => (await import('../actions/fork')).forkClear));
  return fork;
}

import { Command } from 'commander';
import { examples } from '../help';
import type { Act } from '../program';

export function allowCommand(act: Act): Command {
  return new Command('allow')
    .description(
      'let an image run whatever its verdict: an explicit, logged override of enforcement ' +
        "(like the Supervisor's forced install), for that exact image ID",
    )
    .argument('[image]', 'image reference or ID; resolved to its ID through Docker')
    .option('--reason <text>', 'why it may run anyway (required with an image)')
    .option('--list', 'print the allow-list')
    .option('--remove <image>', 'remove the entries for an image (its ID or the name it was given)')
    .addHelpText(
      'after',
      examples(
        "vouch allow ghcr.io/me/app:1.0 --reason 'tested by hand'",
        'vouch allow --list',
        'vouch allow --remove ghcr.io/me/app:1.0',
      ),
    )
    .action(act(async () => (await import('../actions/allow')).allow));
}

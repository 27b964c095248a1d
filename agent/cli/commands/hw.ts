import { Command } from 'commander';
import { examples } from '../help';
import type { Act } from '../program';

export function hwCommand(act: Act): Command {
  return new Command('hw')
    .description('print the hardware profile and the hashing plan derived from it')
    .argument('[paths...]', 'paths whose storage to classify (default: /)')
    .option('--sysroot <dir>', 'read proc/ and sys/ under DIR instead of / (a copied tree)')
    .option('--measure', 'hash the given files with the planned pool and report the rate')
    .addHelpText(
      'after',
      examples(
        'vouch hw /mnt/data',
        'vouch hw --sysroot pi4-copy',
        'vouch hw --measure app.tgz -o json',
      ),
    )
    .action(act(async () => (await import('../actions/hw')).hw));
}

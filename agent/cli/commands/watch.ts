import { Command } from 'commander';
import { examples } from '../help';
import type { Act } from '../program';

export function watchCommand(act: Act): Command {
  return new Command('watch')
    .description(
      'verify Docker images as they arrive and after each sync, and enforce the policy ' +
        '(images.scopes, images.couldNotCheck) on their containers, until stopped',
    )
    .option('--once', 'check every local image and enforce once, then exit with the worst status')
    .addHelpText('after', examples('vouch watch', 'vouch watch --once -o json'))
    .action(act(async () => (await import('../actions/watch')).watch));
}

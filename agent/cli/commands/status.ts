import { Command } from 'commander';
import { examples } from '../help';
import type { Act } from '../program';

export function statusCommand(act: Act): Command {
  return new Command('status')
    .description(
      'show the device trust state: log origin, size, checkpoint time, freshness, last ' +
        'sync attempt and success, per-mirror results, and fork evidence',
    )
    .addHelpText('after', examples('vouch status', 'vouch status -o json'))
    .action(act(async () => (await import('../actions/status')).status));
}

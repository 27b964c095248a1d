import { Command } from 'commander';
import { examples } from '../help';
import { repeatable } from '../options';
import type { Act } from '../program';

const resetExample = 'vouch state reset --root /etc/vouch/root.json';

export function stateCommand(act: Act): Command {
  const state = new Command('state')
    .description('the device trust state (the state directory)')
    .addHelpText('after', examples(resetExample));
  state
    .command('reset')
    .description(
      'reset the trust state when it is damaged beyond repair (no verified checkpoint ' +
        'survives: vouch sync says so): sync again from ROOT as a new device would, ' +
        'replacing the old state. This loses the old checkpoint and with it the rollback and ' +
        'fork protection it gave (whatever the log key signs for ROOT is accepted, even a ' +
        'smaller or another tree), the clock floor and the stored entries; it keeps fork ' +
        'evidence, the allow-list, the remembered mirrors and the sync history. Refused ' +
        'while a verified checkpoint survives (vouch sync repairs the rest), unless --force',
    )
    .requiredOption(
      '--root <root>',
      'the signed root file to trust from now on, as on a new device',
    )
    .option(
      '--mirror <url>',
      'a log mirror: http(s):// or file:// (repeat for failover; default: the configured or ' +
        'remembered mirrors)',
      repeatable,
    )
    .option('--force', 'reset even though a verified checkpoint survives')
    .addHelpText(
      'after',
      examples(resetExample, [
        'vouch state reset --root /etc/vouch/root.json',
        '--mirror https://example.org/log/ --force',
      ]),
    )
    .action(act(async () => (await import('../actions/state')).stateReset));
  return state;
}

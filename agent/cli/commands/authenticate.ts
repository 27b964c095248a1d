import { Command } from 'commander';
import { examples } from '../help';
import type { Act } from '../program';

export function authenticateCommand(act: Act): Command {
  return new Command('authenticate')
    .description(
      'CAS-compatible: the status of a SHA-256 digest from the local trust state, counting ' +
        'only the given signer (no network); exit code = status number',
    )
    .option('--signerID <id>', "only this signer's statements count (root revocations always do)")
    .requiredOption('--hash <hex>', 'the SHA-256 digest: 64 hex, with or without sha256:')
    .option('--silent', 'accepted for CAS compatibility (vouch prints no banner)')
    .addHelpText(
      'after',
      examples([
        'vouch authenticate --signerID notary@home-assistant.io',
        '--output json --silent',
        '--hash 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03',
      ]),
    )
    .action(act(async () => (await import('../actions/authenticate')).authenticate));
}

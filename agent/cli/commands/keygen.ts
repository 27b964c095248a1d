import { Command } from 'commander';
import { examples } from '../help';
import { repeatable } from '../options';
import type { Act } from '../program';

export function keygenCommand(act: Act): Command {
  return new Command('keygen')
    .description(
      'make an Ed25519 key pair: <dir>/<id>.key (PKCS#8 PEM, mode 0600) and <dir>/<id>.pub ' +
        '(SPKI PEM); prints the public key as a verifier string',
    )
    .requiredOption(
      '--signer <id>',
      'the key name: a signer ID, a root key name or a log origin (repeatable: one pair each)',
      repeatable,
    )
    .requiredOption('--out <dir>', 'directory for the two files (created when missing)')
    .addHelpText(
      'after',
      examples(
        'vouch keygen --signer dev@example.org --out keys',
        'vouch keygen --signer root --signer log --out keys',
      ),
    )
    .action(act(async () => (await import('../actions/keygen')).keygen));
}

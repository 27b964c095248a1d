import { Command, Option } from 'commander';
import { examples } from '../help';
import { positiveInteger, repeatable } from '../options';
import type { Act } from '../program';

export function envelopeCommand(act: Act): Command {
  const envelope = new Command('envelope')
    .description('DSSE envelopes holding statements')
    .addHelpText('after', examples('vouch envelope verify --key dev.pub app.json'));
  envelope
    .command('verify')
    .description(
      'check that a statement envelope is signed by the given key(s): exit 0 when valid, ' +
        '1 when not, 65 when the envelope is malformed',
    )
    .argument('<envelope>', 'the envelope file (JSON)')
    .requiredOption(
      '--key <pub>',
      'a public key: verifier string, or a file with one or an SPKI PEM (repeatable)',
      repeatable,
    )
    .addOption(
      new Option('--threshold <n>', 'how many distinct keys must have signed')
        .argParser(positiveInteger)
        .default(1),
    )
    .addHelpText(
      'after',
      examples(
        'vouch envelope verify --key dev.pub app.json',
        'vouch envelope verify --key dev.pub --key ops.pub --threshold 2 app.json',
      ),
    )
    .action(act(async () => (await import('../actions/envelope')).envelopeVerify));
  return envelope;
}

import { Command, Option } from 'commander';
import { examples } from '../help';
import { positiveInteger, repeatable, utcDate } from '../options';
import type { Act } from '../program';

const keyHelp = 'verifier string, or a file with one or an SPKI PEM';

const initExample = [
  'vouch root init --out root.json --threshold 1 --root-key root.pub',
  '--log-origin example.org/log --log-key log.pub --expires 365',
  '--signer dev@example.org=dev.pub --sign root.key',
];
const addSignerExample = 'vouch root add-signer root.json --id dev@example.org --key dev.pub';

export function rootCommand(act: Act): Command {
  const root = new Command('root')
    .description('the signed trust root: root keys, the log, witnesses, signers and their scopes')
    .addHelpText(
      'after',
      examples(initExample, addSignerExample, 'vouch root sign root.json --key root.key'),
    );

  root
    .command('init')
    .description('write a new, unsigned trust root (then: add-signer, sign)')
    .requiredOption('--out <file>', 'the root file to create (never replaced)')
    .requiredOption(
      '--threshold <n>',
      'root signatures needed for this root and its successor',
      positiveInteger,
    )
    .requiredOption(
      '--root-key <pub...>',
      `root keys (${keyHelp}; a PEM is named by its file name)`,
    )
    .requiredOption(
      '--log-origin <origin>',
      'the log’s checkpoint origin, e.g. log.example.org/vouch',
    )
    .requiredOption(
      '--log-key <pub>',
      `the log’s checkpoint key (${keyHelp}; a PEM is named by the origin)`,
    )
    .option('--witness <pub...>', `witness cosignature keys (${keyHelp}; type 0x04)`)
    .option('--witness-quorum <q>', 'how many witnesses must cosign a checkpoint', positiveInteger)
    .addOption(
      new Option('--version <v>', 'the root version (a rotation makes version N+1)')
        .argParser(positiveInteger)
        .default(1),
    )
    .requiredOption('--expires <days>', 'days from now until the root expires', positiveInteger)
    .option(
      '--signer <id=pub>',
      `a signer who may sign any name: its ID and key (${keyHelp}; repeatable; add-signer for scopes)`,
      repeatable,
    )
    .option(
      '--sign <key>',
      'sign the new root with this root private key (repeatable; else: vouch root sign)',
      repeatable,
    )
    .addHelpText(
      'after',
      examples(initExample, [
        'vouch root init --out root.json --threshold 2 --expires 365',
        '--root-key r1.pub r2.pub r3.pub --log-origin example.org/log',
        '--log-key log.pub --witness w1.pub w2.pub --witness-quorum 1',
      ]),
    )
    .action(act(async () => (await import('../actions/root')).rootInit));

  root
    .command('add-signer')
    .description(
      'add a signer to an unsigned or signed root (its signatures are removed: sign again)',
    )
    .argument('<root>', 'the root file, changed in place')
    .requiredOption('--id <id>', 'the signer ID, e.g. notary@home-assistant.io')
    .requiredOption(
      '--key <pub>',
      `a key of the signer (${keyHelp}; a PEM is named by the ID; repeatable)`,
      repeatable,
    )
    .option(
      '--scope <glob>',
      'subject names it may sign: * within a /-segment, ** across (repeatable; default ** = any name)',
      repeatable,
    )
    .option(
      '--valid-from <date>',
      'earliest issuedAt it may sign (2025-01-31 or RFC 3339 UTC)',
      utcDate,
    )
    .option('--valid-until <date>', 'latest issuedAt it may sign', utcDate)
    .addHelpText(
      'after',
      examples(addSignerExample, [
        'vouch root add-signer root.json --id notary@home-assistant.io',
        "--key notary.pub --scope 'ghcr.io/home-assistant/**' --valid-from 2025-01-01",
      ]),
    )
    .action(act(async () => (await import('../actions/root')).rootAddSigner));

  root
    .command('remove-signer')
    .description(
      'remove a signer (its statements stop counting); its signatures are removed: sign again',
    )
    .argument('<root>', 'the root file, changed in place')
    .requiredOption('--id <id>', 'the signer ID')
    .addHelpText('after', examples('vouch root remove-signer root.json --id dev@example.org'))
    .action(act(async () => (await import('../actions/root')).rootRemoveSigner));

  root
    .command('bump')
    .description(
      'start the next version of a root (a rotation): same content, version + 1, unsigned; ' +
        'it needs signatures by a threshold of the old root keys and of the new ones',
    )
    .argument('<root>', 'the current root file')
    .requiredOption('--out <file>', 'the new root file to create (never replaced)')
    .requiredOption('--expires <days>', 'days from now until the new root expires', positiveInteger)
    .option('--threshold <n>', 'a new root-key threshold', positiveInteger)
    .option(
      '--root-key <pub>',
      `a new root key; the given ones replace the old set (${keyHelp}; repeatable)`,
      repeatable,
    )
    .option(
      '--witness <pub>',
      `a witness cosignature key; the given ones replace the old set (${keyHelp}; type 0x04; repeatable; needs --witness-quorum)`,
      repeatable,
    )
    .option(
      '--witness-quorum <q>',
      'how many witnesses must cosign a checkpoint (alone: a new quorum for the old witnesses)',
      positiveInteger,
    )
    .addHelpText(
      'after',
      examples(
        'vouch root bump root.json --out root-v2.json --expires 365',
        'vouch root bump root.json --out root-v2.json --expires 365 --root-key new.pub',
        [
          'vouch root bump root.json --out root-v2.json --expires 365',
          '--witness w1.pub --witness w2.pub --witness-quorum 1',
        ],
      ),
    )
    .action(act(async () => (await import('../actions/root')).rootBump));

  root
    .command('sign')
    .description('add one signature to a root (run once per root key holder)')
    .argument('<root>', 'the root file, changed in place')
    .requiredOption('--key <file>', 'a root private key (PKCS#8 PEM, mode 0600)')
    .option(
      '--trusted <root>',
      'the previous root, when signing a rotation: a key of that root may sign too',
    )
    .addHelpText(
      'after',
      examples(
        'vouch root sign root.json --key root.key',
        'vouch root sign root-v2.json --key old-root.key --trusted root.json',
      ),
    )
    .action(act(async () => (await import('../actions/root')).rootSign));

  root
    .command('verify')
    .description(
      'check a root: signed by a threshold of its root keys and not expired; with --trusted, ' +
        'also a valid rotation from that root (exit 0 when valid, 65 with the reason when not)',
    )
    .argument('<root>', 'the root file')
    .option('--trusted <root>', 'the previous root, already trusted')
    .addHelpText(
      'after',
      examples('vouch root verify root.json', 'vouch root verify root-v2.json --trusted root.json'),
    )
    .action(act(async () => (await import('../actions/root')).rootVerify));

  root
    .command('show')
    .description('print a root’s content and who has signed it (nothing is verified)')
    .argument('<root>', 'the root file')
    .addHelpText(
      'after',
      examples('vouch root show root.json', 'vouch root show root.json -o json'),
    )
    .action(act(async () => (await import('../actions/root')).rootShow));

  return root;
}

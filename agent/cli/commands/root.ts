import { Command, Option } from 'commander';
import { positiveInteger, repeatable, utcDate } from '../options';
import type { Act } from '../program';

const keyHelp = 'verifier string, or a file with one or an SPKI PEM';

export function rootCommand(act: Act): Command {
  const root = new Command('root').description(
    'the signed trust root: root keys, the log, witnesses, signers and their scopes',
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
    .action(act(async () => (await import('../actions/root')).rootAddSigner));

  root
    .command('remove-signer')
    .description(
      'remove a signer (its statements stop counting); its signatures are removed: sign again',
    )
    .argument('<root>', 'the root file, changed in place')
    .requiredOption('--id <id>', 'the signer ID')
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
    .action(act(async () => (await import('../actions/root')).rootSign));

  root
    .command('verify')
    .description(
      'check a root: signed by a threshold of its root keys and not expired; with --trusted, ' +
        'also a valid rotation from that root (exit 0 when valid, 65 with the reason when not)',
    )
    .argument('<root>', 'the root file')
    .option('--trusted <root>', 'the previous root, already trusted')
    .action(act(async () => (await import('../actions/root')).rootVerify));

  root
    .command('show')
    .description('print a root’s content and who has signed it (nothing is verified)')
    .argument('<root>', 'the root file')
    .action(act(async () => (await import('../actions/root')).rootShow));

  return root;
}

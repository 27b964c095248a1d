import { Command } from 'commander';
import { examples } from '../help';
import type { Act } from '../program';

export function snapshotCommand(act: Act): Command {
  const snapshot = new Command('snapshot')
    .description(
      'one-file snapshots of the log for air-gapped devices (a tar of a checkpoint and its entries)',
    )
    .addHelpText(
      'after',
      examples(
        'vouch snapshot export --out log.tar',
        'vouch snapshot import log.tar --root root.json',
      ),
    );
  snapshot
    .command('export')
    .description('write a snapshot from the device state, or from a publisher log directory')
    .requiredOption('--out <file>', 'the snapshot file to write (replaced atomically)')
    .option('--log <dir>', "a publisher's log directory (its published files) instead of the state")
    .addHelpText(
      'after',
      examples(
        'vouch snapshot export --out log.tar',
        'vouch snapshot export --out log.tar --log log',
      ),
    )
    .action(act(async () => (await import('../actions/snapshot')).snapshotExport));
  snapshot
    .command('import')
    .description('verify a snapshot fully and apply it like a sync (no network)')
    .argument('<file>', 'the snapshot file')
    .option(
      '--root <root>',
      'the first trusted root (signed root file), for a device without state',
    )
    .addHelpText(
      'after',
      examples('vouch snapshot import log.tar --root root.json', 'vouch snapshot import log.tar'),
    )
    .action(act(async () => (await import('../actions/snapshot')).snapshotImport));
  return snapshot;
}

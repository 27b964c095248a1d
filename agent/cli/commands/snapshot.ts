import { Command } from 'commander';
import { exportSnapshot, importSnapshot } from '../../device';
import { ExitCode } from '../exit';
import type { Act } from '../program';
import { describeApplied } from './sync';

export function snapshotCommand(act: Act): Command {
  const snapshot = new Command('snapshot').description(
    'one-file snapshots of the log for air-gapped devices (a tar of a checkpoint and its entries)',
  );
  snapshot
    .command('export')
    .description('write a snapshot from the device state, or from a publisher log directory')
    .requiredOption('--out <file>', 'the snapshot file to write (replaced atomically)')
    .option('--log <dir>', "a publisher's log directory (its published files) instead of the state")
    .action(
      act(async (ctx, options: { out: string; log?: string }) => {
        const result = await exportSnapshot({
          out: options.out,
          stateDir: ctx.config.stateDir,
          logDir: options.log,
          maxBytes: ctx.config.snapshot.maxBytes,
          maxBundleBytes: ctx.config.sync.maxBundleBytes,
        });
        return {
          exitCode: ExitCode.OK,
          data: result,
          text: `${result.out}: ${result.origin} size ${result.size}, ${result.roots} root(s), ${result.bytes} bytes`,
        };
      }),
    );
  snapshot
    .command('import')
    .description('verify a snapshot fully and apply it like a sync (no network)')
    .argument('<file>', 'the snapshot file')
    .option(
      '--root <root>',
      'the first trusted root (signed root file), for a device without state',
    )
    .action(
      act(async (ctx, file: string, options: { root?: string }) => {
        const applied = await importSnapshot({
          file,
          stateDir: ctx.config.stateDir,
          rootPath: options.root ?? ctx.config.root,
          maxBytes: ctx.config.snapshot.maxBytes,
          maxBundleBytes: ctx.config.sync.maxBundleBytes,
          logger: ctx.logger,
        });
        return { exitCode: ExitCode.OK, data: applied, text: describeApplied(applied) };
      }),
    );
  return snapshot;
}

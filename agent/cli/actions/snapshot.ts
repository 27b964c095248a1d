import { ExitCode } from '../../core/exit-codes';
import { safe } from '../../core/text';
import { exportSnapshot, importSnapshot } from '../../device';
import { exportLogSnapshot } from '../../ledger';
import type { Context } from '../context';
import { describeApplied } from './sync';

export async function snapshotExport(ctx: Context, options: { out: string; log?: string }) {
  const { out } = options;
  const maxBytes = ctx.config.snapshot.maxBytes;
  const result = options.log
    ? await exportLogSnapshot({
        out,
        logDir: options.log,
        maxBytes,
        maxBundleBytes: ctx.config.sync.maxBundleBytes,
      })
    : await exportSnapshot({ out, stateDir: ctx.config.stateDir, maxBytes });
  return {
    exitCode: ExitCode.OK,
    data: result,
    text: safe`${result.out}: ${result.origin} size ${result.size}, ${result.roots} root(s), ${result.bytes} bytes`,
  };
}

export async function snapshotImport(ctx: Context, file: string, options: { root?: string }) {
  const applied = await importSnapshot({
    file,
    stateDir: ctx.config.stateDir,
    rootPath: options.root ?? ctx.config.root,
    maxBytes: ctx.config.snapshot.maxBytes,
    maxBundleBytes: ctx.config.sync.maxBundleBytes,
    logger: await ctx.logger(),
  });
  return { exitCode: ExitCode.OK, data: applied, text: describeApplied(applied) };
}

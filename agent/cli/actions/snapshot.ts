import { safe } from '../../core/text';
import { exportSnapshot, importSnapshot } from '../../device';
import type { Context } from '../context';
import { ExitCode } from '../exit';
import { describeApplied } from './sync';

export async function snapshotExport(ctx: Context, options: { out: string; log?: string }) {
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

import { safe } from '../../core/text';
import { syncFromMirrors, watchSync } from '../../device';
import type { Applied } from '../../device/sync/apply';
import type { Context } from '../context';
import { ExitCode } from '../exit';

interface SyncFlags {
  readonly root?: string;
  readonly mirror?: string[];
  readonly watch?: boolean;
}

/** One line about an applied sync or import, shared by `sync` and `snapshot import`. */
export function describeApplied(applied: Applied & { readonly source: string }): string {
  const what =
    applied.added > 0
      ? `added ${applied.added} entries (${applied.indexed} records indexed${applied.skipped.length > 0 ? `, ${applied.skipped.length} entries not valid statements under the root, not indexed` : ''})`
      : 'up to date';
  return safe`${applied.origin}: size ${applied.previousSize} → ${applied.size}, ${what}; root v${applied.rootVersion}; from ${applied.source}`;
}

async function syncOptions(ctx: Context, flags: SyncFlags) {
  return {
    stateDir: ctx.config.stateDir,
    mirrors: flags.mirror ?? ctx.config.mirrors,
    rootPath: flags.root ?? ctx.config.root,
    timeoutMs: ctx.config.sync.timeout,
    connectTimeoutMs: ctx.config.sync.connectTimeout,
    maxBundleBytes: ctx.config.sync.maxBundleBytes,
    logger: await ctx.logger(),
  };
}

export async function sync(ctx: Context, flags: SyncFlags) {
  if (!flags.watch) {
    const report = await syncFromMirrors(await syncOptions(ctx, flags));
    return { exitCode: ExitCode.OK, data: report, text: describeApplied(report) };
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const runs = await watchSync({
      ...(await syncOptions(ctx, flags)),
      schedule: ctx.config.sync.schedule,
      jitterMs: ctx.config.sync.jitter,
      signal: stop.signal,
    });
    return { exitCode: ExitCode.OK, data: { runs }, text: `stopped after ${runs} syncs` };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

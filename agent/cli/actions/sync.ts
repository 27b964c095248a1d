import { ExitCode } from '../../core/exit-codes';
import { safe } from '../../core/text';
import {
  type Applied,
  chooseMirrors,
  noMirror,
  type Repaired,
  syncFromMirrors,
  watchSync,
} from '../../device';
import type { Context } from '../context';

interface SyncFlags {
  readonly root?: string;
  readonly mirror?: string[];
  readonly watch?: boolean;
}

/** One line about an applied sync or import, shared by `sync` and `snapshot import`. */
export function describeApplied(applied: Repaired<Applied & { readonly source: string }>): string {
  const what =
    applied.added > 0
      ? `added ${applied.added} entries (${applied.indexed} records indexed${applied.skipped.length > 0 ? `, ${applied.skipped.length} entries not valid statements under the root, not indexed` : ''})`
      : 'up to date';
  const repaired = applied.repaired.length > 0 ? `; repaired ${applied.repaired.join(', ')}` : '';
  // \u2192 is →: a tagged template keeps its characters as written in the bundle, and one
  // character outside ASCII makes V8 hold all of the CLI's source at two bytes a character.
  return safe`${applied.origin}: size ${applied.previousSize} \u2192 ${applied.size}, ${what}; root v${applied.rootVersion}; from ${applied.source}${repaired}`;
}

/**
 * What a sync needs from the command line and the configuration. Mirrors: `--mirror`, else
 * the configuration's, else those the state directory remembers; `--mirror` ones are
 * remembered once a sync from them succeeds.
 */
export async function syncOptions(ctx: Context, flags: SyncFlags) {
  const stateDir = ctx.config.stateDir;
  const choice = await chooseMirrors(stateDir, flags.mirror, ctx.config.mirrors);
  if (choice.mirrors.length === 0) throw noMirror(stateDir, choice.damaged);
  return {
    stateDir,
    mirrors: choice.mirrors,
    rememberMirrors: choice.from === 'flags',
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

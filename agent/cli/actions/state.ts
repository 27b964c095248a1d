import { ExitCode } from '../../core/exit-codes';
import { syncFromMirrors } from '../../device';
import type { Context } from '../context';
import { describeApplied, syncOptions } from './sync';

interface ResetFlags {
  readonly root: string;
  readonly mirror?: string[];
  readonly force?: boolean;
}

/** `vouch state reset`: a first sync from `--root` that replaces the state (see its help). */
export async function stateReset(ctx: Context, flags: ResetFlags) {
  const report = await syncFromMirrors({
    ...(await syncOptions(ctx, flags)),
    reset: { force: flags.force === true },
  });
  return { exitCode: ExitCode.OK, data: report, text: `reset: ${describeApplied(report)}` };
}

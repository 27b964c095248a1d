import { join } from 'node:path';
import { ExitCode } from '../../core/exit-codes';
import { clearForkEvidence, stateFiles } from '../../device';
import { withLock } from '../../lock';
import type { Context } from '../context';

export async function forkClear(ctx: Context) {
  const dir = ctx.config.stateDir;
  const cleared = await withLock(join(dir, stateFiles.lock), { code: 'STATE_LOCKED' }, () =>
    clearForkEvidence(dir),
  );
  return {
    exitCode: ExitCode.OK,
    data: { cleared },
    text:
      cleared === 'damaged'
        ? 'removed the damaged fork evidence file'
        : cleared > 0
          ? `cleared ${cleared} fork evidence item(s)`
          : 'no fork evidence',
  };
}

import { join } from 'node:path';
import { Command } from 'commander';
import { clearForkEvidence, stateFiles } from '../../device';
import { withLock } from '../../lock';
import { ExitCode } from '../exit';
import type { Act } from '../program';

export function forkCommand(act: Act): Command {
  const fork = new Command('fork').description('fork evidence kept in the state directory');
  fork
    .command('clear')
    .description(
      'remove the saved fork evidence, once an operator has dealt with it (status stops reporting the fork)',
    )
    .action(
      act(async (ctx) => {
        const dir = ctx.config.stateDir;
        const cleared = await withLock(join(dir, stateFiles.lock), { code: 'STATE_LOCKED' }, () =>
          clearForkEvidence(dir),
        );
        return {
          exitCode: ExitCode.OK,
          data: { cleared },
          text: cleared > 0 ? `cleared ${cleared} fork evidence item(s)` : 'no fork evidence',
        };
      }),
    );
  return fork;
}

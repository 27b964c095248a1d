/**
 * Cold start (issue 18): `vouch verify digest` against a synced state, the whole command,
 * against `node -e 0` in the same run — `node dist/vouch.cjs` on this Node, and the single
 * executable dist/vouch-linux-<arch> (`npm run build:sea -- --arch x64`) against the Node
 * it is built from, when it is there.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeBinary } from '../sea/node';
import { isArch } from '../sea/targets';
import { type Case, type Figure, rounds, runSuite } from './harness';
import { benchLog, cliPath, exec, syncedState } from './world';

const group = 'start';
const target = { on: 'ratio', op: '≤', bound: 1.5, note: 'issue 18' } as const;

export async function startBench(benchDir: string): Promise<Figure[]> {
  const log = await benchLog(await mkdtemp(join(benchDir, 'start-')));
  const sha256 = createHash('sha256').update('cold start').digest('hex');
  await log.add([{ name: 'cold-start', sha256 }]);
  const stateDir = await syncedState(benchDir, log);
  const args = ['verify', 'digest', `sha256:${sha256}`, '--state-dir', stateDir];
  const verify = async (file: string, ...prefix: string[]) => {
    // Exit 0: TRUSTED, so the runs measured the whole lookup.
    await exec(file, [...prefix, ...args]);
  };
  const count = rounds(21);
  const figures = await runSuite(group, {
    rounds: count,
    cases: [
      {
        name: `node -e 0 (Node ${process.version})`,
        run: () => exec(process.execPath, ['-e', '0']),
      },
      {
        name: 'node dist/vouch.cjs verify digest (synced state)',
        run: () => verify(process.execPath, cliPath),
        target,
        note: 'the whole command: Node, the bundle from its code cache, the configuration, the state',
      },
    ],
  });
  const arch = process.arch;
  const sea = join(cliPath, '..', `vouch-linux-${arch}`);
  if (isArch(arch) && existsSync(sea)) {
    // The executable's Node is the pinned one (scripts/sea/node-binaries.json), not ours.
    const node = await nodeBinary(arch);
    const cases: Case[] = [
      {
        name: `node -e 0 (Node ${node.version}, the executable's)`,
        run: () => exec(node.path, ['-e', '0']),
      },
      { name: `dist/vouch-linux-${arch} verify digest`, run: () => verify(sea), target },
    ];
    figures.push(...(await runSuite(group, { rounds: count, cases })));
  }
  return figures;
}

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadState, stateFiles } from '../../../agent/device';
import { publicDir } from '../../../agent/ledger';
import { acquireLock } from '../../../agent/lock';
import { runCli } from '../../helpers/cli';
import { cliBundle, grow, testWorld, type World } from '../../helpers/device';

/**
 * kill -9 of `vouch sync` (the built bundle, in its own process) at moments spread evenly
 * over an uninterrupted sync: the state must always load and verify, and be exactly the old
 * commit or the new one; the next sync must work. Which of the two a kill leaves depends on
 * the machine's speed, so only what must hold either way is asserted. A sync while another
 * process holds the state lock is refused and changes nothing.
 */

let world: World;
let oldMirror: string;
let base: string;
const runs = 50;

function startSync(stateDir: string): ChildProcess {
  return spawn(
    process.execPath,
    [cliBundle, 'sync', '--state-dir', stateDir, '--mirror', world.mirror, '--log-level', 'silent'],
    { stdio: 'ignore' },
  );
}

async function copyOf(dir: string): Promise<string> {
  const copy = await mkdtemp(join(tmpdir(), 'vouch-crash-'));
  await cp(dir, copy, { recursive: true });
  return copy;
}

beforeAll(async () => {
  world = await testWorld();
  await grow(world, 300);
  const old = await mkdtemp(join(tmpdir(), 'vouch-old-mirror-'));
  await cp(publicDir(world.logDir), old, { recursive: true });
  oldMirror = pathToFileURL(old).href;
  base = await mkdtemp(join(tmpdir(), 'vouch-crash-base-'));
  const first = await runCli([
    'sync',
    '--state-dir',
    base,
    '--root',
    world.rootPath,
    '--mirror',
    oldMirror,
  ]);
  expect(first.exitCode, first.stderr).toBe(0);
  await grow(world, 600);
}, 120_000);

describe('crash safety', () => {
  it(`keeps the old state or the new one when killed at ${runs} moments of a sync`, async () => {
    // How long an uninterrupted sync takes, process start included.
    const timing = await copyOf(base);
    const started = performance.now();
    const [code] = await once(startSync(timing), 'exit');
    expect(code).toBe(0);
    const duration = performance.now() - started;
    console.log(`crash test: an uninterrupted sync takes ${duration.toFixed(0)} ms`);
    expect((await loadState(timing))?.checkpoint.checkpoint.size).toBe(900);

    const outcomes = { old: 0, new: 0 };
    for (let run = 0; run < runs; run++) {
      const dir = await copyOf(base);
      const child = startSync(dir);
      const exited = once(child, 'exit');
      // From process start to a little past the uninterrupted sync's end.
      const killAt = ((run + 0.5) / runs) * duration * 1.3;
      await new Promise((resolve) => setTimeout(resolve, killAt));
      child.kill('SIGKILL');
      await exited;
      const state = await loadState(dir);
      const size = state?.checkpoint.checkpoint.size;
      expect([300, 900], `run ${run}, killed at ${killAt.toFixed(0)} ms`).toContain(size);
      expect(state?.index.rows).toBe(size);
      outcomes[size === 900 ? 'new' : 'old']++;
      if (run % 10 === 0) {
        const next = await runCli(['sync', '--state-dir', dir, '--mirror', world.mirror]);
        expect(next.exitCode, next.stderr).toBe(0);
        expect((await loadState(dir))?.checkpoint.checkpoint.size).toBe(900);
      }
      await rm(dir, { recursive: true });
    }
    console.log(`crash test: ${outcomes.old} runs left the old state, ${outcomes.new} the new`);
  }, 240_000);

  it('never runs two syncs on one state at once, across processes', async () => {
    const dir = await copyOf(base);
    // This process holds the state lock, as a sync in progress does.
    const lock = await acquireLock(join(dir, stateFiles.lock), { code: 'STATE_LOCKED' });
    const [refused] = await once(startSync(dir), 'exit');
    expect(refused).toBe(69);
    expect((await loadState(dir))?.checkpoint.checkpoint.size).toBe(300);
    await lock.release();
    const [code] = await once(startSync(dir), 'exit');
    expect(code).toBe(0);
    expect((await loadState(dir))?.checkpoint.checkpoint.size).toBe(900);
  });
});

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../scripts/lib/services';
import { runCli } from '../../helpers/cli';
import { grow, stateOf, syncedDevice, testWorld, type World } from '../../helpers/device';

/**
 * Issue #13 item 9: after one `vouch sync --root R --mirror M`, a plain `vouch sync` works.
 * Mirrors come from --mirror, else the configuration, else the state directory, which
 * remembers those of the last --mirror sync that succeeded.
 */

let world: World;
let unreachable: string;

async function syncMirrors(dir: string, ...argv: string[]) {
  const status = await runCli(['status', '--state-dir', dir, ...argv, '-o', 'json']);
  expect(status.exitCode, status.stderr).toBe(0);
  return JSON.parse(status.stdout).syncMirrors;
}

beforeAll(async () => {
  world = await testWorld();
  await grow(world, 20);
  unreachable = pathToFileURL(join(await mkdtemp(join(tmpdir(), 'vouch-empty-')), 'none')).href;
});

describe('vouch sync remembers its mirrors', () => {
  it('a plain vouch sync uses the mirrors of the first one; vouch status says where from', async () => {
    const dir = await syncedDevice(world);
    expect(await syncMirrors(dir)).toMatchObject({ urls: [world.mirror], from: 'remembered' });
    const text = await runCli(['status', '--state-dir', dir]);
    expect(text.stdout).toMatch(
      /mirrors for vouch sync: \S+ \(remembered from vouch sync --mirror at \d{4}-/,
    );
    await grow(world, 5);
    const plain = await runCli(['sync', '--state-dir', dir]);
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect((await stateOf(dir)).checkpoint.checkpoint.size).toBe(world.size);
  });

  it('remembers only mirrors a sync succeeded with, as given (the failover list)', async () => {
    const dir = await syncedDevice(world);
    const failed = await runCli(['sync', '--state-dir', dir, '--mirror', unreachable]);
    expect(failed.exitCode).toBe(69);
    expect(await syncMirrors(dir)).toMatchObject({ urls: [world.mirror] });

    const bad = await runCli(['sync', '--state-dir', dir, '--mirror', 'example.org/log']);
    expect(bad.exitCode).toBe(64);
    expect(bad.stderr).toMatch(/--mirror example\.org\/log: expected an http:\/\/, https:\/\//);

    const listed = await runCli([
      'sync',
      '--state-dir',
      dir,
      '--mirror',
      unreachable,
      '--mirror',
      world.mirror,
    ]);
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(await syncMirrors(dir)).toMatchObject({ urls: [unreachable, world.mirror] });
  });

  it('flags win over the configuration, which wins over the remembered mirrors', async () => {
    const dir = await syncedDevice(world);
    const config = join(dir, 'agent.yaml');
    await writeFile(config, `mirrors: ['${unreachable}']\n`);
    expect(await syncMirrors(dir, '--config', config)).toEqual({
      urls: [unreachable],
      from: 'config',
    });
    const configured = await runCli(['sync', '--state-dir', dir, '--config', config]);
    expect(configured.exitCode).toBe(69);
    expect(configured.stderr).toContain(unreachable);

    const flagged = await runCli([
      'sync',
      '--state-dir',
      dir,
      '--config',
      config,
      '--mirror',
      world.mirror,
    ]);
    expect(flagged.exitCode, flagged.stderr).toBe(0);
  });

  it('vouch sync --watch uses them too', async () => {
    const dir = await syncedDevice(world);
    const config = join(dir, 'agent.yaml');
    await writeFile(config, "sync:\n  schedule: '* * * * * *'\n  jitter: 0\n");
    await grow(world, 3);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'agent/cli/main.ts', 'sync', '--watch', '--state-dir', dir],
      {
        cwd: join(__dirname, '../../..'),
        env: { ...process.env, VOUCH_CONFIG: config, VOUCH_LOG_LEVEL: 'silent' },
        stdio: 'ignore',
      },
    );
    try {
      await waitFor(
        'the watch to sync',
        async () => (await stateOf(dir)).checkpoint.checkpoint.size === world.size,
        30_000,
        () => (child.exitCode === null ? undefined : new Error(`exited ${child.exitCode}`)),
      );
    } finally {
      const exited = child.exitCode === null ? once(child, 'exit') : Promise.resolve([0]);
      child.kill('SIGTERM');
      expect((await exited)[0]).toBe(0);
    }
  }, 40_000);

  it('with no mirror anywhere, says what to give', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vouch-sync-cli-'));
    const none = await runCli(['sync', '--state-dir', dir]);
    expect(none.exitCode).toBe(64);
    expect(none.stderr).toMatch(/no mirror: give --mirror URL or set mirrors in the configuration/);
    expect(await syncMirrors(dir)).toEqual({ urls: [], from: null });
    const remembered = await readFile(join(await syncedDevice(world), 'mirrors.json'), 'utf8');
    expect(JSON.parse(remembered)).toMatchObject({ mirrors: [world.mirror] });
  });
});

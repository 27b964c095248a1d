import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stateFiles } from '../../../agent/device/store/state';
import { buildScratchImage, type Dockerd, startDockerd } from '../../../scripts/lib/dockerd';
import { runCli } from '../../helpers/cli';
import { describeWith } from '../../helpers/services';

const noDocker = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
const fullId = `sha256:${'ab'.repeat(32)}`;
const tempState = async () => join(await mkdtemp(join(tmpdir(), 'vouch-allow-cli-')), 'state');

async function allow(stateDir: string, args: readonly string[], env: NodeJS.ProcessEnv = noDocker) {
  const result = await runCli(
    ['allow', ...args, '--state-dir', stateDir, '-o', 'json', '--log-level', 'silent'],
    env,
  );
  return { ...result, data: result.stdout ? JSON.parse(result.stdout) : undefined };
}

describe('vouch allow', () => {
  it('requires --reason with an image (exit 64), and one of IMAGE, --list, --remove', async () => {
    const dir = await tempState();
    for (const args of [
      [fullId],
      [fullId, '--reason', '   '],
      [],
      [fullId, '--reason', 'x', '--list'],
      ['--list', '--remove', fullId],
      ['--list', '--reason', 'x'],
      [fullId, '--reason', 'x'.repeat(4097)],
    ]) {
      const result = await allow(dir, args);
      expect(result.exitCode, args.join(' ')).toBe(64);
      expect(result.data.error.code).toBe('USAGE');
    }
    expect((await allow(dir, ['--list'])).data).toEqual({ entries: [] });
  });

  it('without Docker: a full image ID as given, a name as a name entry, a short ID refused', async () => {
    const dir = await tempState();
    const byId = await allow(dir, [fullId.slice('sha256:'.length), '--reason', 'hotfix build']);
    expect(byId.exitCode).toBe(0);
    expect(byId.data.added).toMatchObject({
      image: fullId,
      name: null,
      reason: 'hotfix build',
      by: userInfo().username,
    });
    expect(byId.data.added.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const byName = await allow(dir, ['tool:2', '--reason', 'not here yet']);
    expect(byName.data.added).toMatchObject({ image: null, name: 'docker.io/library/tool:2' });
    expect((await allow(dir, ['0123456789ab', '--reason', 'short'])).exitCode).toBe(64);
    const list = await allow(dir, ['--list']);
    expect(list.data.entries).toEqual([byId.data.added, byName.data.added]);
    // Durable: the file holds exactly what was listed.
    const file = JSON.parse(await readFile(join(dir, stateFiles.allow), 'utf8'));
    expect(file).toEqual({ format: 'vouch-allow/v1', entries: list.data.entries });
    const text = await runCli(['allow', '--list', '--state-dir', dir], noDocker);
    expect(text.stdout).toBe(
      `${fullId}, by ${byId.data.added.by} at ${byId.data.added.at}: hotfix build\n` +
        `docker.io/library/tool:2 (by name: any image under this name), by ${byName.data.added.by} at ${byName.data.added.at}: not here yet\n`,
    );
  });

  it('--remove takes an entry out; a second time is ALLOW_NOT_FOUND (exit 64)', async () => {
    const dir = await tempState();
    await allow(dir, [fullId, '--reason', 'a']);
    await allow(dir, ['tool:2', '--reason', 'b']);
    const removed = await allow(dir, ['--remove', 'tool:2']);
    expect(removed.exitCode).toBe(0);
    expect(removed.data.removed).toMatchObject([{ name: 'docker.io/library/tool:2' }]);
    const again = await allow(dir, ['--remove', 'docker.io/library/tool:2']);
    expect(again.exitCode).toBe(64);
    expect(again.data.error.code).toBe('ALLOW_NOT_FOUND');
    expect((await allow(dir, ['--list'])).data.entries).toMatchObject([{ image: fullId }]);
  });
});

describeWith('docker', 'vouch allow with Docker', () => {
  let daemon: Dockerd;
  beforeAll(async () => {
    daemon = await startDockerd();
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('resolves a name (or a short ID) to the exact image ID; --remove by the name finds it after the tag moved', async () => {
    const dir = await tempState();
    const env = { DOCKER_HOST: daemon.dockerHost };
    const first = await buildScratchImage(daemon.docker, 'ghcr.io/example/app:1', { a: '1' });
    const added = await allow(dir, ['ghcr.io/example/app:1', '--reason', 'needed'], env);
    expect(added.exitCode, added.stderr).toBe(0);
    expect(added.data.added).toMatchObject({ image: first, name: 'ghcr.io/example/app:1' });
    const short = await allow(dir, [first.slice(7, 19), '--reason', 'again'], env);
    expect(short.data).toMatchObject({
      added: { image: first, name: null },
      replaced: [added.data.added],
    });
    const named = await allow(dir, ['ghcr.io/example/app:1', '--reason', 'named'], env);
    expect(named.data.replaced).toEqual([short.data.added]);
    // The tag now names another image: the entry is found by its name all the same.
    const second = await buildScratchImage(daemon.docker, 'ghcr.io/example/app:1', { a: '2' });
    expect(second).not.toBe(first);
    const removed = await allow(dir, ['--remove', 'ghcr.io/example/app:1'], env);
    expect(removed.data.removed).toEqual([named.data.added]);
    expect((await allow(dir, ['--list'], env)).data.entries).toEqual([]);
  });
});

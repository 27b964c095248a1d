import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { syncFromMirrors } from '../../../agent/device';
import { stateFiles } from '../../../agent/device/store/state';
import { StateWatcher } from '../../../agent/device/store/state-watcher';
import { writeFileDurably } from '../../../agent/files';
import { waitFor } from '../../../scripts/lib/services';
import { grow, testWorld, type World } from '../../helpers/device';

/**
 * The trust-state watcher on temp state directories: commits by a real sync, durable
 * replaces, files it does not watch, a directory that appears later, and stop().
 */

/** Long enough for fs.watch and its settling delay to have reported a change. */
const quietMs = 300;

let world: World;

beforeAll(async () => {
  world = await testWorld();
  await grow(world, 3);
});

async function sync(stateDir: string): Promise<void> {
  await syncFromMirrors({
    stateDir,
    mirrors: [world.mirror],
    rootPath: world.rootPath,
    timeoutMs: 5000,
    maxBundleBytes: 1 << 24,
    logger: pino({ level: 'silent' }),
  });
}

/** A watcher of the commit point (and what else `files` says), with the changes it reported. */
function watcherOn(stateDir: string, options: { files?: string[]; pollMs?: number } = {}) {
  let changes = 0;
  const watcher = new StateWatcher({
    stateDir,
    files: options.files ?? [stateFiles.commit],
    // A long poll unless asked: changes must then be seen through fs.watch.
    pollMs: options.pollMs ?? 600_000,
    onChange: () => {
      changes++;
    },
  });
  const changed = () => changes;
  const until = (what: string, probe: () => boolean) => waitFor(what, async () => probe(), 10_000);
  return { watcher, changed, until };
}

describe('StateWatcher', () => {
  it('notices a commit by a sync, and each commit after the one marked seen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vouch-state-watch-'));
    await sync(dir);
    const w = watcherOn(dir);
    await w.watcher.markSeen();
    w.watcher.start();
    try {
      await sleep(quietMs);
      expect(w.changed()).toBe(0);
      await grow(world, 2);
      await sync(dir);
      await w.until('the commit', () => w.changed() > 0);
      // Until marked seen, the commit is still news; after, the next commit is.
      await w.watcher.markSeen();
      const seen = w.changed();
      await sleep(quietMs);
      expect(w.changed()).toBe(seen);
      await grow(world, 1);
      await sync(dir);
      await w.until('the next commit', () => w.changed() > seen);
    } finally {
      w.watcher.stop();
    }
  });

  it('notices a durable replace of any file it watches, and nothing of others', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vouch-state-watch-'));
    const w = watcherOn(dir, { files: [stateFiles.commit, stateFiles.allow] });
    await w.watcher.markSeen();
    w.watcher.start();
    try {
      await writeFileDurably(join(dir, stateFiles.status), '{}');
      await writeFile(join(dir, 'unrelated'), 'x');
      await sleep(quietMs);
      expect(w.changed()).toBe(0);
      await writeFileDurably(join(dir, stateFiles.allow), '{}');
      await w.until('the allow-list', () => w.changed() > 0);
    } finally {
      w.watcher.stop();
    }
  });

  it('picks up a state dir that appears later through its poll', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'vouch-state-watch-')), 'state');
    const w = watcherOn(dir, { pollMs: 100 });
    await w.watcher.markSeen();
    w.watcher.start();
    try {
      await mkdir(dir);
      await sleep(quietMs); // the poll watches the new directory
      await writeFileDurably(join(dir, stateFiles.commit), '{}');
      await w.until('the first commit', () => w.changed() > 0);
    } finally {
      w.watcher.stop();
    }
  });

  it('says nothing after stop()', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vouch-state-watch-'));
    const w = watcherOn(dir, { pollMs: 50 });
    await w.watcher.markSeen();
    w.watcher.start();
    w.watcher.stop();
    await writeFileDurably(join(dir, stateFiles.commit), '{}');
    await sleep(quietMs);
    expect(w.changed()).toBe(0);
  });
});

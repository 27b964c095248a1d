import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { addEnvelopes, publicDir } from '../../agent/ledger';
import { runCli } from '../helpers/cli';
import { grow, statement, syncedDevice, testWorld, type World } from '../helpers/device';
import { verifyPublished } from '../helpers/log';
import { copyOf, count, expectOneOf, random } from './chaos';

/**
 * A full disk during a sync and a log publish: the state (or the log) on a small tmpfs,
 * filled by a filler file up to a random amount of space left (seeded), less than the run
 * needs. The run fails with exit code 74 (EX_IOERR) and a message that says the file system
 * is full; the old state (the old published checkpoint) is intact; once the filler is
 * deleted the next run succeeds. Needs root (mount); every mount is undone in `finally`.
 */

const draw = random('disk full');
const rounds = count(1, 5);
const full =
  /: the file system holding it is full \(ENOSPC\): free some space there, then try again\n$/;
let world: World;
/** A device at 300 entries; the world has 900. */
let device: string;
/** The log's directory as published at 300 entries, and the world's entries after those. */
let logAt300: string;
let more: Uint8Array[];

/** Runs `body` with a tmpfs of `size` mounted on a new directory, unmounted after. */
async function onTmpfs(size: string, body: (mount: string) => Promise<void>): Promise<void> {
  const mount = await mkdtemp(join(tmpdir(), 'vouch-chaos-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', mount]);
  try {
    await body(mount);
  } finally {
    execFileSync('umount', [mount]);
    await rm(mount, { recursive: true });
  }
}

/**
 * Fills `mount` up to `left` bytes of space, by default a random amount below 80% of
 * `needs`; the filler's path, and the space really left.
 */
async function fill(
  mount: string,
  needs: number,
  wanted = Math.floor(draw() * needs * 0.8),
): Promise<{ filler: string; left: number }> {
  const free = async () => {
    const info = await statfs(mount);
    return info.bavail * info.bsize;
  };
  const filler = join(mount, 'filler');
  await writeFile(filler, Buffer.alloc(Math.max(0, (await free()) - wanted)));
  return { filler, left: await free() };
}

/** Bytes in the files under `dir`. */
function bytesUnder(dir: string): number {
  return Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);
}

beforeAll(async () => {
  world = await testWorld();
  await grow(world, 300);
  device = await syncedDevice(world);
  logAt300 = await copyOf(world.logDir);
  more = Array.from({ length: 600 }, (_, i) => statement(world, 300 + i));
  await grow(world, 600, more);
}, 120_000);

describe('a full disk', () => {
  it(`during a sync: a clear error, the old state intact, the next sync succeeds (${rounds} rounds)`, async () => {
    const grown = await copyOf(device);
    expect((await runCli(['sync', '--state-dir', grown, '--mirror', world.mirror])).exitCode).toBe(
      0,
    );
    // What the state grows by: less than the sync needs at its peak (the old index stays
    // until the commit).
    const needs = bytesUnder(grown) - bytesUnder(device);
    await rm(grown, { recursive: true });
    await onTmpfs('4m', async (mount) => {
      for (let round = 0; round < rounds; round++) {
        const state = join(mount, 'state');
        await cp(device, state, { recursive: true });
        // Round 0: 64 KiB, room for the lock and the report but not the entries (their
        // append failing was once a crash, exit code 70); then at random.
        const { filler, left } = await fill(mount, needs, round === 0 ? 64 * 1024 : undefined);
        const what = `round ${round}, ${left} bytes left`;
        const failed = await runCli(['sync', '--state-dir', state, '--mirror', world.mirror]);
        expect(failed.exitCode, `${what}: ${failed.stderr}`).toBe(74);
        expect(failed.stderr, what).toMatch(full);
        await expectOneOf(state, [300], what);
        await rm(filler);
        const next = await runCli(['sync', '--state-dir', state, '--mirror', world.mirror]);
        expect(next.exitCode, `${what}: ${next.stderr}`).toBe(0);
        await expectOneOf(state, [900], `${what}, then with space`);
        await rm(state, { recursive: true });
      }
    });
  }, 300_000);

  it(`during a log publish: a clear error, the old checkpoint served, the next publish succeeds (${rounds} rounds)`, async () => {
    // What publishing 600 more entries writes: tiles, bundles, the checkpoint.
    const needs = bytesUnder(publicDir(world.logDir)) - bytesUnder(publicDir(logAt300));
    await onTmpfs('8m', async (mount) => {
      for (let round = 0; round < rounds; round++) {
        const log = join(mount, 'log');
        await cp(logAt300, log, { recursive: true });
        // The world's 600 later entries appended (not published) before the disk fills.
        await addEnvelopes(log, world.root, more, new Date());
        const { filler, left } = await fill(mount, needs);
        const what = `round ${round}, ${left} bytes left`;
        const failed = await runCli(['log', 'publish', log]);
        expect(failed.exitCode, `${what}: ${failed.stderr}`).toBe(74);
        expect(failed.stderr, what).toMatch(full);
        expect((await verifyPublished(log)).size, what).toBe(300);
        await rm(filler);
        const next = await runCli(['log', 'publish', log]);
        expect(next.exitCode, `${what}: ${next.stderr}`).toBe(0);
        expect((await verifyPublished(log)).size, what).toBe(900);
        // A new device syncs it whole.
        const fresh = await mkdtemp(join(tmpdir(), 'vouch-chaos-fresh-'));
        const synced = await runCli([
          'sync',
          '--state-dir',
          fresh,
          '--root',
          world.rootPath,
          '--mirror',
          pathToFileURL(publicDir(log)).href,
        ]);
        expect(synced.exitCode, `${what}: ${synced.stderr}`).toBe(0);
        await expectOneOf(fresh, [900], `${what}: a new device`);
        await rm(fresh, { recursive: true });
        await rm(log, { recursive: true });
      }
    });
  }, 300_000);
});

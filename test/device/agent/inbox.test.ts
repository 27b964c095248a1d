import { execFileSync } from 'node:child_process';
import { existsSync, watch } from 'node:fs';
import {
  appendFile,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { VouchError } from '../../../agent/core/errors';
import { importSnapshot, stateFiles } from '../../../agent/device';
import { Inbox, type InboxOptions, type SnapshotImport } from '../../../agent/device/agent/inbox';
import { exportLogSnapshot } from '../../../agent/ledger';
import { acquireLock } from '../../../agent/lock';
import { waitFor } from '../../../scripts/lib/services';
import { grow, stateOf, testWorld, type World } from '../../helpers/device';

/**
 * The agent's inbox with real snapshots of a test log: imports into a device's state,
 * refusals moved aside with their reason, files still being copied, FIFOs, the state lock
 * held by another sync, an inbox that cannot be used until it is fixed (or whose parent,
 * a medium's mount point, is missing), and stop() during an import.
 */

const logger = pino({ level: 'silent' });
const maxBytes = 1 << 30;
const maxBundleBytes = 256 * (2 + 65_535);
const tmp = (prefix: string) => mkdtemp(join(tmpdir(), prefix));

let world: World;
/** Snapshots of the log at 5 and at 12 entries. */
let older: string;
let newer: string;

beforeAll(async () => {
  world = await testWorld();
  const dir = await tmp('vouch-inbox-snaps-');
  await grow(world, 5);
  older = join(dir, 'older.tar');
  await exportLogSnapshot({ out: older, logDir: world.logDir, maxBytes, maxBundleBytes });
  await grow(world, 7);
  newer = join(dir, 'newer.tar');
  await exportLogSnapshot({ out: newer, logDir: world.logDir, maxBytes, maxBundleBytes });
});

/** A device whose state holds `snapshot` (imported). */
async function device(snapshot: string): Promise<string> {
  const stateDir = await tmp('vouch-inbox-device-');
  await importSnapshot({
    file: snapshot,
    stateDir,
    rootPath: world.rootPath,
    maxBytes,
    maxBundleBytes,
    logger,
  });
  return stateDir;
}

const sizeOf = async (stateDir: string) => (await stateOf(stateDir)).checkpoint.checkpoint.size;
const commitOf = (stateDir: string) => readFile(join(stateDir, stateFiles.commit));
const list = (dir: string) => readdir(dir).catch(() => [] as string[]);
const until = (what: string, probe: () => boolean | Promise<boolean>) =>
  waitFor(what, async () => probe(), 10_000);

const running: Inbox[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((inbox) => inbox.stop()));
});

/** An inbox on `stateDir` (its default place unless `dir` says), with what it reported. */
function inboxOn(stateDir: string, options: Partial<InboxOptions> = {}) {
  const imported: { report: SnapshotImport; file: string }[] = [];
  const rejected: { file: string; error: VouchError }[] = [];
  const inbox = new Inbox({
    dir: join(stateDir, 'inbox'),
    stateDir,
    maxBytes,
    maxBundleBytes,
    logger,
    settleMs: 100,
    pollMs: 200,
    onImported: (report, file) => imported.push({ report, file }),
    onRejected: (file, error) => rejected.push({ file, error }),
    ...options,
  });
  running.push(inbox);
  const dir = options.dir ?? join(stateDir, 'inbox');
  return { inbox, dir, imported, rejected };
}

describe('Inbox', () => {
  it('imports a snapshot dropped in and moves it to done/', async () => {
    const stateDir = await device(older);
    const { inbox, dir, imported } = inboxOn(stateDir);
    await inbox.start();
    expect(inbox.health).toMatchObject({
      state: 'ok',
      reason: expect.stringMatching(/^watching /),
    });
    expect((await stat(join(dir, 'done'))).mode & 0o777).toBe(0o750);
    await copyFile(newer, join(dir, 'update.tar'));
    await until('the import', () => imported.length > 0);
    expect(await sizeOf(stateDir)).toBe(12);
    expect(imported[0]).toMatchObject({
      report: { previousSize: 5, size: 12, added: 7 },
      file: join(dir, 'done', 'update.tar'),
    });
    expect(await readFile(join(dir, 'done', 'update.tar'))).toEqual(await readFile(newer));
    expect(await list(dir)).not.toContain('update.tar');
    expect(inbox.health).toMatchObject({
      state: 'ok',
      reason: `watching ${dir}; last: imported update.tar (size 12, 7 added)`,
    });
  });

  it('processes files there at start, leaves hidden, partial and directory entries, and never replaces a file in done/', async () => {
    const stateDir = await device(older);
    const dir = join(stateDir, 'inbox');
    await mkdir(join(dir, 'done'), { recursive: true });
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'done', 'snap.tar'), 'an earlier file of that name');
    for (const name of ['snap.tar', '.hidden.tar', 'copying.tar.part', 'copying.tar.tmp']) {
      await copyFile(newer, join(dir, name));
    }
    const { inbox, imported, rejected } = inboxOn(stateDir, {
      clock: () => Date.UTC(2025, 5, 1, 12),
    });
    await inbox.start();
    await until('the import', () => imported.length > 0);
    expect(await sizeOf(stateDir)).toBe(12);
    const suffixed = join(dir, 'done', 'snap.tar.20250601T120000Z');
    expect(imported[0]?.file).toBe(suffixed);
    expect(await readFile(suffixed)).toEqual(await readFile(newer));
    expect(await readFile(join(dir, 'done', 'snap.tar'), 'utf8')).toBe(
      'an earlier file of that name',
    );
    // A few more passes: the others stay where they are.
    await sleep(500);
    expect((await list(dir)).sort()).toEqual(
      ['.hidden.tar', 'copying.tar.part', 'copying.tar.tmp', 'done', 'rejected', 'sub'].sort(),
    );
    expect(rejected).toEqual([]);
  });

  it('rejects a rolled-back snapshot with its reason, the state intact, degraded until the next import', async () => {
    const stateDir = await device(newer);
    const { inbox, dir, imported, rejected } = inboxOn(stateDir);
    await inbox.start();
    const commit = await commitOf(stateDir);
    await copyFile(older, join(dir, 'old.tar'));
    await until('the rejection', () => rejected.length > 0);
    expect(rejected[0]?.error.code).toBe('LOG_ROLLBACK');
    expect(rejected[0]?.file).toBe(join(dir, 'rejected', 'old.tar'));
    const reason = await readFile(join(dir, 'rejected', 'old.tar.reason'), 'utf8');
    expect(reason).toMatch(/^LOG_ROLLBACK: .*tree of 5 entries; this device has verified 12/);
    expect(await commitOf(stateDir)).toEqual(commit);
    expect(await sizeOf(stateDir)).toBe(12);
    expect(inbox.health.state).toBe('degraded');
    expect(inbox.health.reason).toMatch(/^rejected old\.tar: LOG_ROLLBACK: /);

    // The same tree again is "up to date": an import that succeeds.
    await copyFile(newer, join(dir, 'same.tar'));
    await until('the import', () => imported.length > 0);
    expect(imported[0]?.report).toMatchObject({ size: 12, added: 0 });
    expect(inbox.health.state).toBe('ok');
  });

  it('rejects a file that is no snapshot, the state intact; the same name again gets a suffix', async () => {
    const stateDir = await device(older);
    const { inbox, dir, rejected } = inboxOn(stateDir);
    await inbox.start();
    const commit = await commitOf(stateDir);
    await writeFile(join(dir, 'notes.txt'), 'not a snapshot\n'.repeat(100));
    await until('the rejection', () => rejected.length > 0);
    expect(rejected[0]?.error.code).toBe('SNAPSHOT_INVALID');
    expect(await readFile(join(dir, 'rejected', 'notes.txt.reason'), 'utf8')).toMatch(
      /^SNAPSHOT_INVALID: .*notes\.txt is not a vouch snapshot: not a tar file\n$/,
    );
    await writeFile(join(dir, 'notes.txt'), 'again\n'.repeat(200));
    await until('the second rejection', () => rejected.length > 1);
    const second = rejected[1]?.file ?? '';
    expect(second).toMatch(/\/rejected\/notes\.txt\.\d{8}T\d{6}Z$/);
    expect(await readFile(second, 'utf8')).toBe('again\n'.repeat(200));
    expect(await readFile(`${second}.reason`, 'utf8')).toMatch(/^SNAPSHOT_INVALID: /);
    expect(await readFile(join(dir, 'rejected', 'notes.txt'), 'utf8')).toBe(
      'not a snapshot\n'.repeat(100),
    );
    expect(await commitOf(stateDir)).toEqual(commit);
  });

  it('waits for a file being copied to settle before importing it', async () => {
    const stateDir = await device(older);
    const { inbox, dir, imported, rejected } = inboxOn(stateDir, { settleMs: 1500 });
    await inbox.start();
    const bytes = await readFile(newer);
    const path = join(dir, 'slow.tar');
    // The first half alone is a truncated snapshot: imported now, it would be rejected.
    await writeFile(path, bytes.subarray(0, bytes.length >> 1));
    await sleep(400);
    await appendFile(path, bytes.subarray(bytes.length >> 1));
    await sleep(400);
    // 800 ms after the first write, 400 after the last: not yet.
    expect(await list(dir)).toContain('slow.tar');
    expect(imported).toEqual([]);
    await until('the import', () => imported.length > 0);
    expect(rejected).toEqual([]);
    expect(await sizeOf(stateDir)).toBe(12);
    expect(await list(join(dir, 'done'))).toEqual(['slow.tar']);
  });

  it('moves a FIFO aside unread and imports the next file', async () => {
    const stateDir = await device(older);
    const dir = join(stateDir, 'inbox');
    await mkdir(dir);
    execFileSync('mkfifo', [join(dir, 'a.fifo')]);
    await copyFile(newer, join(dir, 'b.tar'));
    const { inbox, imported, rejected } = inboxOn(stateDir);
    await inbox.start();
    await until('the import', () => imported.length > 0);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.file).toBe(join(dir, 'rejected', 'a.fifo'));
    expect((await stat(join(dir, 'rejected', 'a.fifo'))).isFIFO()).toBe(true);
    expect(await readFile(join(dir, 'rejected', 'a.fifo.reason'), 'utf8')).toMatch(
      /^SNAPSHOT_INVALID: .*a\.fifo is a FIFO, not a regular file/,
    );
    expect(await sizeOf(stateDir)).toBe(12);
  });

  it('keeps a snapshot while a sync holds the state lock, and imports it once released', async () => {
    const stateDir = await device(older);
    const lock = await acquireLock(join(stateDir, stateFiles.lock), { code: 'STATE_LOCKED' });
    const { inbox, dir, imported, rejected } = inboxOn(stateDir);
    try {
      await inbox.start();
      await copyFile(newer, join(dir, 'update.tar'));
      await until('the wait for the lock', () =>
        /waits for the state lock/.test(inbox.health.reason),
      );
      // Several polls: tried again, never rejected.
      await sleep(800);
      expect(inbox.health.state).toBe('ok');
      expect(rejected).toEqual([]);
      expect(imported).toEqual([]);
      expect(await list(dir)).toContain('update.tar');
      expect(await sizeOf(stateDir)).toBe(5);
    } finally {
      await lock.release();
    }
    await until('the import', () => imported.length > 0);
    expect(await sizeOf(stateDir)).toBe(12);
    expect(await list(join(dir, 'done'))).toEqual(['update.tar']);
  });

  it('is failed while the inbox cannot be made, and recovers once it can', async () => {
    const stateDir = await device(older);
    const dir = join(stateDir, 'inbox');
    await writeFile(dir, 'a file where the inbox belongs');
    const { inbox, imported } = inboxOn(stateDir);
    await inbox.start();
    expect(inbox.health.state).toBe('failed');
    expect(inbox.health.reason).toMatch(/inbox is a regular file, not a directory/);
    await rm(dir);
    await until('the recovery', () => inbox.health.state === 'ok');
    expect(await list(dir)).toEqual(['done', 'rejected']);
    // Watched from then on.
    await copyFile(newer, join(dir, 'update.tar'));
    await until('the import', () => imported.length > 0);
    expect(await sizeOf(stateDir)).toBe(12);
  });

  it('refuses an inbox reached through a symbolic link, or whose rejected/ is one: nothing there is moved or written', async () => {
    const stateDir = await device(older);
    const victim = await tmp('vouch-inbox-victim-');
    await writeFile(join(victim, 'passwd'), 'not the inbox’s to move');
    const dir = join(stateDir, 'inbox');
    await symlink(victim, dir);
    const linked = inboxOn(stateDir).inbox;
    await linked.start();
    expect(linked.health.state).toBe('failed');
    expect(linked.health.reason).toMatch(/reached through a symbolic link .*give its real path/);
    expect(await list(victim)).toEqual(['passwd']);
    await linked.stop();

    // A real inbox whose rejected/ points elsewhere.
    await rm(dir);
    const elsewhere = await tmp('vouch-inbox-elsewhere-');
    await mkdir(join(dir, 'done'), { recursive: true });
    await symlink(elsewhere, join(dir, 'rejected'));
    await writeFile(join(dir, 'garbage.tar'), 'not a snapshot');
    const { inbox } = inboxOn(stateDir);
    await inbox.start();
    expect(inbox.health.state).toBe('failed');
    expect(inbox.health.reason).toMatch(/rejected\/ is a symbolic link, not a directory/);
    expect(await list(elsewhere)).toEqual([]);
    expect(await list(dir)).toContain('garbage.tar');
  });

  it('makes the inbox but not its parent: a medium that is not mounted gets nothing', async () => {
    const stateDir = await device(older);
    const medium = join(await tmp('vouch-inbox-mnt-'), 'usb');
    const { inbox, dir, imported } = inboxOn(stateDir, { dir: join(medium, 'vouch') });
    await inbox.start();
    expect(inbox.health.state).toBe('failed');
    expect(inbox.health.reason).toMatch(/usb: ENOENT/);
    await sleep(400);
    expect(await list(medium)).toEqual([]);
    await mkdir(medium);
    await until('the recovery', () => inbox.health.state === 'ok');
    await copyFile(newer, join(dir, 'update.tar'));
    await until('the import', () => imported.length > 0);
    expect(await sizeOf(stateDir)).toBe(12);
  });

  it('waits in stop() for the import under way, and looks at nothing after', async () => {
    const stateDir = await device(older);
    const { inbox, dir, imported } = inboxOn(stateDir);
    await inbox.start();
    // The import holds the state lock while it runs: stop() is called then.
    let stopped: Promise<number> | undefined;
    let importing = false;
    const watcher = watch(stateDir, (_, name) => {
      if (name !== stateFiles.lock || stopped) return;
      importing = existsSync(join(stateDir, stateFiles.lock));
      stopped = inbox.stop().then(() => imported.length);
    });
    try {
      await copyFile(newer, join(dir, 'update.tar'));
      await until('stop() called', () => stopped !== undefined);
      // Resolved once the import and the move are done.
      expect(await stopped).toBe(1);
    } finally {
      watcher.close();
    }
    expect(importing).toBe(true);
    expect(await list(join(dir, 'done'))).toEqual(['update.tar']);
    await copyFile(newer, join(dir, 'later.tar'));
    await sleep(500);
    expect(await list(dir)).toContain('later.tar');
    expect(imported).toHaveLength(1);
  });
});

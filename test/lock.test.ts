import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VouchError } from '../agent/core/errors';
import { acquireLock, withLock } from '../agent/lock';
import { rejectsWith } from './helpers/errors';

const options = { code: 'STATE_LOCKED' } as const;

describe('the lock of a state or log dir', () => {
  it('is held by one owner at a time, and released', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'vouch-lock-')), 'lock');
    const lock = await acquireLock(path, options);
    expect((await readFile(path, 'utf8')).split(' ')[0]).toBe(String(process.pid));
    const second = await acquireLock(path, options).catch((error: unknown) => error);
    expect(second).toBeInstanceOf(VouchError);
    expect((second as VouchError).code).toBe('STATE_LOCKED');
    // A waiter gets it once the owner lets go.
    const waiting = acquireLock(path, { ...options, waitMs: 5000 });
    await lock.release();
    await (await waiting).release();
  });

  it('is taken over when its owner died (kill -9, power cut)', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'vouch-lock-')), 'lock');
    // A process that has exited: its pid is free (or reused, with another start time).
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], {
      encoding: 'utf8',
    });
    await writeFile(path, `${dead.stdout.trim()} 1\n`);
    const lock = await acquireLock(path, options);
    expect((await readFile(path, 'utf8')).split(' ')[0]).toBe(String(process.pid));
    await lock.release();
    // Our own pid with another start time is a recycled pid: taken over too.
    await writeFile(path, `${process.pid} 1\n`);
    await (await acquireLock(path, options)).release();
  });

  it('runs a body under the lock and releases it, even when the body fails', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'vouch-lock-')), 'lock');
    const busy = { code: 'LOG_LOCKED' } as const;
    const inner = await withLock(path, busy, () =>
      acquireLock(path, busy).catch((error: unknown) => (error as VouchError).code),
    );
    expect(inner).toBe('LOG_LOCKED');
    await expect(withLock(path, busy, () => Promise.reject(new Error('boom')))).rejects.toThrow(
      'boom',
    );
    await (await acquireLock(path, busy)).release();
  });

  it.each([
    [
      'a directory',
      (path: string) => mkdirSync(path),
      /lock .* is a directory, not a regular file; remove it/,
    ],
    [
      'a FIFO',
      (path: string) => execFileSync('mkfifo', [path]),
      /lock .* is a FIFO, not a regular file; remove it/,
    ],
    [
      'a dangling symbolic link',
      (path: string) => symlinkSync('/nonexistent', path),
      /lock .* is a symbolic link to nothing; remove it/,
    ],
  ])(
    'is refused, not waited on, when %s is in its place (it spun or blocked for ever)',
    { timeout: 10_000 },
    async (_what, make, message) => {
      const path = join(mkdtempSync(join(tmpdir(), 'vouch-lock-')), 'lock');
      make(path);
      const error = await rejectsWith(acquireLock(path, { code: 'STATE_LOCKED' }), 'IO');
      expect(error.message).toMatch(message);
    },
  );
});

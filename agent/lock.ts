import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, lstat, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ErrorCode, VouchError } from './core/errors';
import { fsPath, ioError, readFileCapped } from './files';

/**
 * A cross-process lock that survives crashes, for the device state dir and the
 * publisher's log dir: a file holding the owner's PID and process
 * start time, created atomically (a hard link of a complete temp file, so it is never seen
 * half-written). A lock whose owner is gone (killed, power cut) is taken over; comparing the
 * start time too keeps a recycled PID from looking like the old owner.
 */

export interface Lock {
  release(): Promise<void>;
}

/** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot; '-' off Linux. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

function ownerText(): string {
  return `${process.pid} ${startTimeOf(process.pid) ?? '-'}\n`;
}

function isAlive(owner: string): boolean {
  const [pidText = '', started = ''] = owner.trim().split(' ');
  const pid = Number(pidText);
  if (!/^[1-9][0-9]{0,9}$/.test(pidText)) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: the process exists but is not ours to signal.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = startTimeOf(pid);
  return started === '-' || now === undefined || now === started;
}

export interface LockOptions {
  /** The error when a live owner holds the lock: which resource is busy. */
  readonly code: Extract<ErrorCode, 'STATE_LOCKED' | 'LOG_LOCKED'>;
  /** How long to wait for a live owner to release it (ms); 0 fails at once. */
  readonly waitMs?: number;
}

/**
 * Takes the lock at `path`, waiting up to `waitMs` for a live owner to release it. The
 * same process may not take it twice (a second `acquire` waits too).
 */
export async function acquireLock(path: string, options: LockOptions): Promise<Lock> {
  const mine = ownerText();
  const deadline = Date.now() + (options.waitMs ?? 0);
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(fsPath(temp), mine, { mode: 0o644 }).catch((error: unknown) => {
    throw ioError('create lock', path, error);
  });
  try {
    for (;;) {
      try {
        await link(fsPath(temp), fsPath(path));
        return { release: () => releaseLock(path, mine) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw ioError('create lock', path, error);
        }
      }
      const owner = await readOwner(path);
      if (owner === undefined) continue; // released in between: try again
      if (!isAlive(owner)) {
        await takeOver(path, owner);
        continue;
      }
      if (Date.now() >= deadline) {
        throw new VouchError(
          options.code,
          `${path} is held by another vouch process (pid ${owner.split(' ')[0]}); ` +
            'it is removed by itself when that process is gone',
        );
      }
      await sleep(50);
    }
  } finally {
    await unlink(fsPath(temp)).catch(() => {});
  }
}

/** A lock holds a PID and a start time: a few bytes. */
const maxOwnerBytes = 1024;

/**
 * What the lock at `path` says, or undefined when it is gone. Anything but a regular file
 * there (a directory, a FIFO, a dangling symbolic link) is an error that says so: it is no
 * lock to wait for or take over, and reading a FIFO would block.
 */
async function readOwner(path: string): Promise<string | undefined> {
  const fix = '; remove it (a vouch lock is a small regular file, made and removed by vouch)';
  const bytes = await readFileCapped(path, maxOwnerBytes, 'lock').catch((error: unknown) => {
    if (!(error instanceof VouchError)) throw error;
    throw new VouchError(error.code, `${error.message}${fix}`, { cause: error });
  });
  if (bytes !== undefined) return Buffer.from(bytes).toString('utf8');
  const link = await lstat(fsPath(path)).catch(() => undefined);
  if (link?.isSymbolicLink()) {
    throw new VouchError('IO', `lock ${path} is a symbolic link to nothing${fix}`);
  }
  return undefined;
}

/**
 * Removes a dead owner's lock. Renaming it aside first and checking what was moved keeps
 * two processes that both saw the dead owner from removing each other's fresh lock.
 */
async function takeOver(path: string, deadOwner: string): Promise<void> {
  const aside = `${path}.${randomBytes(6).toString('hex')}.stale`;
  try {
    await rename(fsPath(path), fsPath(aside));
  } catch {
    return; // someone else moved it first
  }
  const moved = await readFile(fsPath(aside), 'utf8').catch(() => undefined);
  if (moved !== deadOwner) {
    // A live lock was created in between: put it back.
    await link(fsPath(aside), fsPath(path)).catch(() => {});
  }
  await unlink(fsPath(aside)).catch(() => {});
}

/** Runs `body` holding the lock at `path`. */
export async function withLock<T>(
  path: string,
  options: LockOptions,
  body: () => Promise<T>,
): Promise<T> {
  const lock = await acquireLock(path, options);
  try {
    return await body();
  } finally {
    await lock.release();
  }
}

async function releaseLock(path: string, mine: string): Promise<void> {
  const owner = await readFile(fsPath(path), 'utf8').catch(() => undefined);
  if (owner === mine) await unlink(fsPath(path)).catch(() => {});
}

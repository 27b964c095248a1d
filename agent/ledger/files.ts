import { randomBytes } from 'node:crypto';
import { link, unlink, writeFile } from 'node:fs/promises';
import { VouchError } from '../core/errors';
import { ioError, readFileCapped } from '../files';

/** A file of the log directory that must be there, of at most `maxBytes`. */
export async function readRequired(
  path: string,
  maxBytes: number,
  what: string,
): Promise<Uint8Array> {
  const bytes = await readFileCapped(path, maxBytes, what);
  if (bytes === undefined) throw new VouchError('LOG_INVALID', `${what} ${path} is missing`);
  return bytes;
}

/**
 * Runs `body` holding the lock file `path`, which names the holder's pid. The lock is
 * created whole (a temp file hard-linked into place), so nobody sees it without its pid.
 * A lock left by a process that no longer runs (killed, crashed) is taken over.
 */
export async function withLock<T>(path: string, body: () => Promise<T>): Promise<T> {
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}`;
  try {
    await writeFile(temp, `${process.pid}\n`);
    for (let attempt = 0; ; attempt++) {
      try {
        await link(temp, path);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('lock', path, error);
        const holder = Number(
          Buffer.from((await readFileCapped(path, 64, 'lock')) ?? []).toString(),
        );
        if (attempt > 0 || isRunning(holder)) {
          throw new VouchError(
            'LOG_LOCKED',
            `${path} is held by process ${holder}; if no vouch command is running, remove it`,
          );
        }
        await unlink(path).catch(() => {});
      }
    }
  } finally {
    await unlink(temp).catch(() => {});
  }
  try {
    return await body();
  } finally {
    await unlink(path).catch(() => {});
  }
}

function isRunning(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

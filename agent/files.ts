import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { type FileHandle, link, mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type ErrorCode, VouchError } from './core/errors';

/**
 * Durable file operations shared by the device state, the publisher and the CLI. A file
 * is replaced by writing a temp file, fsyncing it, renaming it over the target and
 * fsyncing the directory, so after a crash (kill -9, power cut) the path holds the old
 * content or the new, never a mix, and a later write never reaches the disk before an
 * earlier one.
 */

export function ioError(action: string, path: string, error: unknown): VouchError {
  return new VouchError('IO', `cannot ${action} ${path}: ${(error as Error).message}`, {
    cause: error,
  });
}

/** fsync a directory, so that the names created, renamed or removed in it survive a crash. */
export async function syncDirectory(path: string): Promise<void> {
  try {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw ioError('sync', path, error);
  }
}

/** Creates `path` and missing parents, then fsyncs every directory whose entries changed. */
export async function makeDirectory(path: string): Promise<void> {
  let first: string | undefined;
  try {
    first = await mkdir(path, { recursive: true });
  } catch (error) {
    throw ioError('create', path, error);
  }
  if (first === undefined) return;
  for (let dir = path; ; dir = dirname(dir)) {
    await syncDirectory(dirname(dir));
    if (dir === first) break;
  }
}

/**
 * Writes `data` to `path` durably and atomically; syncs the directory unless told not to.
 * With `exclusive`, the temp file is hard-linked into place instead of renamed, which
 * fails with FILE_EXISTS when `path` exists (keys and new roots never replace a file).
 */
export async function writeFileDurably(
  path: string,
  data: Uint8Array | string,
  options: {
    readonly syncDirectory?: boolean;
    readonly mode?: number;
    readonly exclusive?: boolean;
  } = {},
): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', options.mode ?? 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.exclusive) await link(temp, path);
    else await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new VouchError('FILE_EXISTS', `${path} exists; not replacing it`, { cause: error });
    }
    throw ioError('write', path, error);
  }
  if (options.exclusive) await unlink(temp).catch(() => {});
  if (options.syncDirectory ?? true) await syncDirectory(dirname(path));
}

/** Fails with FILE_EXISTS when any of `paths` exists (before writing a set of files). */
export function requireAbsent(paths: readonly string[]): void {
  const present = paths.find((path) => existsSync(path));
  if (present !== undefined) {
    throw new VouchError('FILE_EXISTS', `${present} exists; not replacing it`);
  }
}

/**
 * A whole file of at most `maxBytes` (PAYLOAD_TOO_LARGE beyond), or undefined when it
 * does not exist.
 */
export async function readFileCapped(
  path: string,
  maxBytes: number,
  what: string,
): Promise<Uint8Array | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(`read ${what}`, path, error);
  }
  try {
    return await readOpenFileCapped(handle, path, maxBytes, what);
  } finally {
    await handle.close();
  }
}

/** Like {@link readFileCapped}, but a missing file is an error with `code` (IO by default). */
export async function readExistingFile(
  path: string,
  maxBytes: number,
  what: string,
  code: ErrorCode = 'IO',
): Promise<Uint8Array> {
  const bytes = await readFileCapped(path, maxBytes, what);
  if (bytes === undefined) throw new VouchError(code, `${what} ${path} does not exist`);
  return bytes;
}

/** One read call reads at most this much (fs.read takes at most 2 GiB − 1 bytes). */
const maxReadBytes = 64 * 2 ** 20;

/**
 * The rest of an open file, of at most `maxBytes`: read into one buffer of the size the stat
 * gives (no chunks to join: a state's index is megabytes), plus a byte to see the end;
 * counted while reading too, as a file can grow after the stat.
 */
export async function readOpenFileCapped(
  handle: FileHandle,
  path: string,
  maxBytes: number,
  what: string,
): Promise<Uint8Array> {
  const tooLarge = () =>
    new VouchError('PAYLOAD_TOO_LARGE', `${what} ${path} is larger than ${maxBytes} bytes`);
  try {
    const size = (await handle.stat()).size;
    if (size > maxBytes) throw tooLarge();
    let buffer = Buffer.allocUnsafe(size + 1);
    let total = 0;
    for (;;) {
      if (total === buffer.length) {
        // It grew since the stat: read on, in a larger buffer, up to the cap.
        const larger = Buffer.allocUnsafe(Math.min(buffer.length * 2, maxBytes + 1));
        buffer.copy(larger);
        buffer = larger;
      }
      const length = Math.min(buffer.length - total, maxReadBytes);
      const { bytesRead } = await handle.read(buffer, total, length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) throw tooLarge();
      // A short read of a regular file is its end: no further read (each is a thread hop).
      if (bytesRead < length && total >= size) break;
    }
    return new Uint8Array(buffer.buffer, buffer.byteOffset, total);
  } catch (error) {
    if (error instanceof VouchError) throw error;
    throw ioError(`read ${what}`, path, error);
  }
}

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  openSync,
  type Stats,
  statfsSync,
  statSync,
} from 'node:fs';
import { type FileHandle, link, mkdir, open, rename, stat, statfs, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type ErrorCode, VouchError } from './core/errors';
import { encodeSurrogateEscape, hasEscapedBytes } from './core/surrogate-escape';

/**
 * File operations shared by the device state, the publisher and the CLI; every path they
 * are given goes through fsPath, so a name that is not UTF-8 reaches the system as its bytes.
 *
 * Inputs are regular files only (openRegularFile): a device, FIFO or socket may block or
 * never end. Directories are made one component at a time (makeDirectory).
 *
 * Durable writes: a file is replaced by writing a temp file, fsyncing it, renaming it over
 * the target and fsyncing the directory, so after a crash (kill -9, power cut) the path
 * holds the old content or the new, never a mix, and a later write never reaches the disk
 * before an earlier one.
 */

export function ioError(action: string, path: string, error: unknown): VouchError {
  const code = (error as NodeJS.ErrnoException).code;
  // Node's own words for these ("no space left on device, write") name neither the file
  // system nor what to do.
  const why =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? `the file system holding it is full (${code === 'EDQUOT' ? 'EDQUOT, a quota' : code}): free some space there, then try again`
      : (error as Error).message;
  return new VouchError('IO', `cannot ${action} ${path}: ${why}`, { cause: error });
}

/**
 * What node:fs takes for `path`: the string, or its bytes when it carries bytes that are not
 * UTF-8 (core/surrogate-escape.ts; agent/cli/main.ts reads the arguments so). As a string,
 * such a name would reach the system re-encoded, with U+FFFD for those bytes: another name.
 */
export function fsPath(path: string): string | Buffer {
  return hasEscapedBytes(path) ? encodeSurrogateEscape(path) : path;
}

/** What a file is, as an error message says it ("… is a FIFO, not a regular file"). */
export function kindOf(stats: Stats): string {
  if (stats.isFile()) return 'a regular file';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  if (stats.isSymbolicLink()) return 'a symbolic link';
  return 'a special file';
}

/**
 * Kernel interfaces mounted as file systems, by statfs f_type (linux/magic.h): their files
 * are made as they are read, and some block or never end (/proc/kmsg, tracefs trace_pipe).
 * Neither an input nor a place for files.
 */
const kernelFileSystems = new Map([
  [0x9fa0, 'procfs'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x62656570, 'configfs'],
  [0x27e0eb, 'cgroupfs'],
  [0x63677270, 'cgroup2fs'],
  [0xcafe4a11, 'bpffs'],
]);

/**
 * What a path must be, and is not: an input (`what`, e.g. "trust root") a regular file, a
 * place to make files in a directory. The kind of error is IO (exit 74), as for a file that
 * cannot be read: the path may come from a flag, the configuration or a state directory.
 */
type Expected = 'file' | 'directory';

/**
 * A path that is there but is not what was expected (a directory where a file should be, a
 * FIFO…): an I/O error, of a kind a reader of its own files (the device state) may take for
 * damage of that file rather than of the device.
 */
export class WrongFileType extends VouchError {}

function notWhatExpected(expected: Expected, what: string, path: string, is: string): VouchError {
  const wanted = expected === 'file' ? 'a regular file' : 'a directory';
  return new WrongFileType('IO', `${what ? `${what} ` : ''}${path} is ${is}, not ${wanted}`);
}

function requireKind(stats: Stats, expected: Expected, what: string, path: string): void {
  if (expected === 'file' ? !stats.isFile() : !stats.isDirectory()) {
    throw notWhatExpected(expected, what, path, kindOf(stats));
  }
}

function requireDataFileSystem(type: number, expected: Expected, what: string, path: string) {
  const kernel = kernelFileSystems.get(type);
  if (kernel !== undefined) {
    throw notWhatExpected(expected, what, path, `on ${kernel}, a kernel interface`);
  }
}

const readFlags = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

/**
 * Opens `path` for reading when it is a regular file on a file system that holds data, and
 * fails saying what it is otherwise; undefined when nothing is there. Its type is checked
 * before the open, as opening a FIFO blocks until a writer comes, and opening a device may
 * act (/dev/watchdog arms a timer); then again on the descriptor, opened non-blocking, in
 * case the path changed in between. O_NONBLOCK does nothing to a regular file (open(2)).
 */
export async function openRegularFile(path: string, what: string): Promise<FileHandle | undefined> {
  const target = fsPath(path);
  try {
    requireKind(await stat(target), 'file', what, path);
    requireDataFileSystem((await statfs(target)).type, 'file', what, path);
    const handle = await open(target, readFlags);
    try {
      requireKind(await handle.stat(), 'file', what, path);
      return handle;
    } catch (error) {
      await handle.close();
      throw error;
    }
  } catch (error) {
    if (error instanceof VouchError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(`read ${what}`, path, error);
  }
}

/** {@link openRegularFile} for a caller that cannot wait (the configuration): a descriptor. */
export function openRegularFileSync(path: string, what: string): number | undefined {
  const target = fsPath(path);
  try {
    requireKind(statSync(target), 'file', what, path);
    requireDataFileSystem(statfsSync(target).type, 'file', what, path);
    const fd = openSync(target, readFlags);
    try {
      requireKind(fstatSync(fd), 'file', what, path);
      return fd;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  } catch (error) {
    if (error instanceof VouchError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(`read ${what}`, path, error);
  }
}

/** {@link openRegularFile}, where a missing file is an error with `code` (IO by default). */
export async function openExistingFile(
  path: string,
  what: string,
  code: ErrorCode = 'IO',
): Promise<FileHandle> {
  const handle = await openRegularFile(path, what);
  if (handle === undefined) throw missingFile(path, what, code);
  return handle;
}

function missingFile(path: string, what: string, code: ErrorCode): VouchError {
  return new VouchError(code, `${what} ${path} does not exist`);
}

/** fsync a directory, so that the names created, renamed or removed in it survive a crash. */
export async function syncDirectory(path: string): Promise<void> {
  try {
    const handle = await open(fsPath(path), 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw ioError('sync', path, error);
  }
}

/**
 * Makes `path` a directory, creating it and its missing parents one at a time, each checked
 * to be a directory on a file system for files; then fsyncs every directory whose entries
 * changed. Not mkdir's `recursive`: on procfs it loops forever (mkdir says ENOENT, finds
 * the parent there, and tries again); here each component is tried once. Those it creates
 * get `mode` (less the umask), when given.
 */
export async function makeDirectory(path: string, mode?: number): Promise<void> {
  const missing: string[] = [];
  let existing = path;
  let found = await statIfPresent(existing);
  while (found === undefined) {
    const parent = dirname(existing);
    if (parent === existing) throw new VouchError('IO', `cannot create ${path}: ${parent} is gone`);
    missing.unshift(existing);
    existing = parent;
    found = await statIfPresent(existing);
  }
  requireKind(found, 'directory', '', existing);
  requireDataFileSystem(
    (await statfs(fsPath(existing)).catch(failed('create', path))).type,
    'directory',
    '',
    existing,
  );
  for (const dir of missing) {
    try {
      await mkdir(fsPath(dir), mode);
    } catch (error) {
      // Made meanwhile by another process: fine, if it is a directory.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('create', dir, error);
      requireKind(await stat(fsPath(dir)).catch(failed('create', dir)), 'directory', '', dir);
    }
    await syncDirectory(dirname(dir));
  }
}

/** What stat says of `path`; undefined when it (or a parent directory) is not there. */
async function statIfPresent(path: string): Promise<Stats | undefined> {
  try {
    return await stat(fsPath(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // ENOTDIR: a parent is not a directory; the walk up finds it and says what it is.
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw ioError('read', path, error);
  }
}

function failed(action: string, path: string): (error: unknown) => never {
  return (error) => {
    throw ioError(action, path, error);
  };
}

/**
 * Writes `data` to `path` durably and atomically; syncs the directory unless told not to.
 * With `exclusive`, the temp file is hard-linked into place instead of renamed, which
 * fails with FILE_EXISTS when `path` exists (keys and new roots never replace a file).
 * Only a regular file is replaced: renamed over, a device (`--out /dev/null` as root)
 * would be gone from /dev.
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
  if (!options.exclusive) await requireReplaceable(path);
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(fsPath(temp), 'wx', options.mode ?? 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.exclusive) await link(fsPath(temp), fsPath(path));
    else await rename(fsPath(temp), fsPath(path));
  } catch (error) {
    await unlink(fsPath(temp)).catch(() => {});
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new VouchError('FILE_EXISTS', `${path} exists; not replacing it`, { cause: error });
    }
    throw await writeFailure(path, error);
  }
  if (options.exclusive) await unlink(fsPath(temp)).catch(() => {});
  if (options.syncDirectory ?? true) await syncDirectory(dirname(path));
}

/**
 * Why writing `path` failed, said of its directory where that is the cause: missing, or on
 * a kernel file system (procfs answers ENOENT for any new name, which would read as if the
 * temp file's name were the problem).
 */
export async function writeFailure(path: string, error: unknown): Promise<VouchError> {
  const dir = dirname(path);
  const kernel = await statfs(fsPath(dir)).then(
    (info) => kernelFileSystems.get(info.type),
    () => undefined,
  );
  if (kernel !== undefined) {
    return notWhatExpected('directory', '', dir, `on ${kernel}, a kernel interface`);
  }
  if (
    (error as NodeJS.ErrnoException).code === 'ENOENT' &&
    (await statIfPresent(dir)) === undefined
  ) {
    return new VouchError('IO', `cannot write ${path}: no directory ${dir} (ENOENT)`, {
      cause: error,
    });
  }
  return ioError('write', path, error);
}

/** Fails with FILE_EXISTS when `path` is there and is not a regular file (a device, a directory). */
export async function requireReplaceable(path: string): Promise<void> {
  const found = await statIfPresent(path);
  if (found && !found.isFile()) {
    throw new VouchError('FILE_EXISTS', `${path} is ${kindOf(found)}; not replacing it`);
  }
}

/** Fails with FILE_EXISTS when any of `paths` exists (before writing a set of files). */
export function requireAbsent(paths: readonly string[]): void {
  const present = paths.find((path) => existsSync(fsPath(path)));
  if (present !== undefined) {
    throw new VouchError('FILE_EXISTS', `${present} exists; not replacing it`);
  }
}

/**
 * A whole regular file (openRegularFile) of at most `maxBytes` (PAYLOAD_TOO_LARGE beyond),
 * or undefined when it does not exist.
 */
export async function readFileCapped(
  path: string,
  maxBytes: number,
  what: string,
): Promise<Uint8Array | undefined> {
  const handle = await openRegularFile(path, what);
  if (handle === undefined) return undefined;
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
  if (bytes === undefined) throw missingFile(path, what, code);
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

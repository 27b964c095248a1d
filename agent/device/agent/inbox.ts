import { type FSWatcher, watch } from 'node:fs';
import { lstat, readdir, realpath, rename, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { asVouchError, VouchError } from '../../core/errors';
import { decodeSurrogateEscape } from '../../core/surrogate-escape';
import { formatUtcTime } from '../../core/time';
import { fsPath, ioError, kindOf, makeDirectory, writeFileDurably } from '../../files';
import type { Logger } from '../../logger';
import { importSnapshot } from '../sync/snapshot-import';
import { localErrors } from '../sync/sync';
import { type Health, HealthCell, type HealthState, type Service } from './health';

/**
 * The agent's inbox for air-gapped updates (config snapshot.inbox): a snapshot file dropped
 * in the directory (a USB stick, a network share) is imported like `vouch snapshot import`
 * and moved to done/, or to rejected/ beside a `<name>.reason` file. fs.watch on the
 * directory, with a poll behind it that also watches again when the directory comes back.
 *
 * Crash-safe by order: the import commits first, the move comes after; an import of a
 * snapshot the state already holds is "up to date", so a file whose move was lost is
 * imported again, harmlessly, and moved then.
 */

/** What importSnapshot reports. */
export type SnapshotImport = Awaited<ReturnType<typeof importSnapshot>>;

export interface InboxOptions {
  /** The inbox (config snapshot.inbox, default `<stateDir>/inbox`); its parent must exist. */
  readonly dir: string;
  readonly stateDir: string;
  /** The first root, for a device with no trust state yet. */
  readonly rootPath?: string | undefined;
  /** Config snapshot.maxBytes. */
  readonly maxBytes: number;
  /** Config sync.maxBundleBytes. */
  readonly maxBundleBytes: number;
  readonly logger: Logger;
  /**
   * A snapshot imported (or one the state already held); `file` is where it is now: in
   * done/, or still in the inbox when it could not be moved.
   */
  readonly onImported?: (report: SnapshotImport, file: string, seconds: number) => void;
  /**
   * A file refused; `file` is where it is now, its `.reason` beside it in rejected/.
   * `seconds`: spent importing it, 0 for a file refused unread (not a regular file).
   */
  readonly onRejected?: (file: string, error: VouchError, seconds: number) => void;
  /** A file is imported once its size and mtime have not changed for this long (ms). */
  readonly settleMs?: number;
  /** How often the directory is looked at besides fs.watch (ms); also the retry delay. */
  readonly pollMs?: number;
  readonly clock?: () => number;
  readonly onHealth?: (health: Health) => void;
}

const defaultSettleMs = 2000;
const defaultPollMs = 10_000;
/** A copy under way is a stream of fs.watch events: one look once they pause (ms). */
const eventDelayMs = 50;
const doneDir = 'done';
const rejectedDir = 'rejected';
/** Made with the inbox: the agent's user writes, its group may look at what came and why. */
const dirMode = 0o750;

/** Left alone: hidden files, and copies under way that are renamed when complete. */
function ignored(name: string): boolean {
  return name.startsWith('.') || name.endsWith('.part') || name.endsWith('.tmp');
}

export class Inbox implements Service {
  readonly name = 'inbox';
  readonly #options: InboxOptions;
  readonly #settleMs: number;
  readonly #pollMs: number;
  readonly #clock: () => number;
  readonly #health: HealthCell;
  /** Files as last seen (inode, size, mtime), and since when (monotonic ms) unchanged. */
  readonly #seen = new Map<string, { readonly key: string; readonly since: number }>();
  /** Files that could not be moved out: skipped, while they stay as they are. */
  readonly #unmovable = new Map<string, { readonly key: string; readonly problem: string }>();
  /**
   * The file whose import failed for the device's own reason (the state locked by a sync, a
   * write failing): it stays, and nothing after it in name order is imported before it.
   */
  #held:
    | {
        readonly name: string;
        readonly until: number;
        readonly state: HealthState;
        readonly text: string;
      }
    | undefined;
  /** Why the directory cannot be used. */
  #unusable: string | undefined;
  /** The last rejection, until an import succeeds. */
  #rejected: string | undefined;
  #last: string | undefined;
  #stopped = true;
  #running: Promise<void> | undefined;
  #again = false;
  #watcher: FSWatcher | undefined;
  #watchedIno: number | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #wakeTimer: NodeJS.Timeout | undefined;
  #eventTimer: NodeJS.Timeout | undefined;

  constructor(options: InboxOptions) {
    this.#options = options;
    this.#settleMs = options.settleMs ?? defaultSettleMs;
    this.#pollMs = options.pollMs ?? defaultPollMs;
    this.#clock = options.clock ?? Date.now;
    this.#health = new HealthCell('ok', 'not started', this.#clock, options.onHealth);
  }

  get health(): Health {
    return this.#health.value;
  }

  /** Makes the directories and starts watching; what is there is then imported in the background. */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#pollTimer = setInterval(() => this.#kick(), this.#pollMs);
    this.#pollTimer.unref();
    await this.#prepare();
    this.#updateHealth();
    this.#kick();
  }

  /**
   * Stops watching and waits for the import under way. An import is crash-safe (it commits
   * last, and is repeated harmlessly), so the agent may exit without waiting when it takes
   * too long.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#pollTimer);
    clearTimeout(this.#wakeTimer);
    clearTimeout(this.#eventTimer);
    this.#unwatch();
    await this.#running;
  }

  /** One pass at a time; a reason to look again during one gives another after it. */
  #kick(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#pass();
      } while (this.#again && !this.#stopped);
    })()
      .catch((error: unknown) => {
        this.#options.logger.error({ err: error }, `inbox ${this.#options.dir}: ${error}`);
      })
      .finally(() => {
        this.#running = undefined;
      });
  }

  /** The files in name order, each imported or refused, until one must wait. */
  async #pass(): Promise<void> {
    const files = await this.#prepare();
    if (files === undefined) {
      this.#updateHealth();
      return;
    }
    const present = new Set(files.map((file) => file.name));
    for (const name of this.#seen.keys()) if (!present.has(name)) this.#seen.delete(name);
    for (const name of this.#unmovable.keys()) if (!present.has(name)) this.#unmovable.delete(name);
    if (this.#held && !present.has(this.#held.name)) this.#held = undefined;
    for (const { name, key, kind } of files) {
      if (this.#stopped) break;
      if (this.#unmovable.get(name)?.key === key) continue;
      this.#unmovable.delete(name);
      if (kind !== undefined) {
        // Never opened: a FIFO would block the read, a device never end.
        const path = join(this.#options.dir, name);
        await this.#reject(
          name,
          key,
          new VouchError(
            'SNAPSHOT_INVALID',
            `${path} is ${kind}, not a regular file: not a snapshot`,
          ),
          0,
        );
        continue;
      }
      const unsettled = this.#unsettledFor(name, key);
      if (unsettled > 0) {
        this.#wakeIn(unsettled);
        break;
      }
      const held = this.#held?.name === name ? this.#held.until - performance.now() : 0;
      if (held > 0) {
        this.#wakeIn(held);
        break;
      }
      if (!(await this.#import(name, key))) break;
    }
    this.#updateHealth();
  }

  /**
   * Makes the inbox, done/ and rejected/ when missing, watches the inbox, and lists it: the
   * entries that are not directories nor ignored, with what they are when not regular
   * files. Only the inbox is made, not its parent: a medium that is not mounted must not
   * get a directory in its mount point. Undefined, with the reason kept, when unusable.
   */
  async #prepare(): Promise<
    { readonly name: string; readonly key: string; readonly kind?: string }[] | undefined
  > {
    const dir = this.#options.dir;
    try {
      const parent = await stat(fsPath(dirname(dir))).catch((error: unknown) => {
        throw ioError('use the inbox in', dirname(dir), error);
      });
      if (!parent.isDirectory()) {
        throw new VouchError('IO', `cannot use the inbox in ${dirname(dir)}: not a directory`);
      }
      await makeDirectory(dir, dirMode);
      // Before anything is made in it.
      await requireRealDirectories(dir, []);
      await makeDirectory(join(dir, doneDir), dirMode);
      await makeDirectory(join(dir, rejectedDir), dirMode);
      await requireRealDirectories(dir);
      this.#watch((await stat(fsPath(dir))).ino);
      const names = await readdir(fsPath(dir), { encoding: 'buffer' }).catch((error: unknown) => {
        throw ioError('read', dir, error);
      });
      const files = [];
      for (const name of names.sort(Buffer.compare).map(decodeSurrogateEscape)) {
        if (ignored(name)) continue;
        // Gone meanwhile: nothing to do.
        const info = await lstat(fsPath(join(dir, name))).catch(() => undefined);
        if (info === undefined || info.isDirectory()) continue;
        const key = `${info.ino}:${info.size}:${info.mtimeMs}`;
        files.push(info.isFile() ? { name, key } : { name, key, kind: kindOf(info) });
      }
      this.#unusable = undefined;
      return files;
    } catch (error) {
      const failure = asVouchError(error);
      if (this.#unusable !== failure.message) {
        this.#options.logger.error({ dir, code: failure.code }, `inbox: ${failure.message}`);
      }
      this.#unusable = failure.message;
      // Watched again once it is back, perhaps as another directory.
      this.#unwatch();
      return undefined;
    }
  }

  /** How long (ms) `name` must stay as `key` before it is taken as completely written. */
  #unsettledFor(name: string, key: string): number {
    // Monotonic: a Pi without a clock battery jumps in time when it first reaches NTP.
    const now = performance.now();
    const seen = this.#seen.get(name);
    if (seen?.key !== key) {
      this.#seen.set(name, { key, since: now });
      return this.#settleMs;
    }
    return seen.since + this.#settleMs - now;
  }

  /** Imports `name`; false when it must be tried again later, and the pass stop. */
  async #import(name: string, key: string): Promise<boolean> {
    const { dir, logger } = this.#options;
    const path = join(dir, name);
    const started = performance.now();
    let report: SnapshotImport;
    try {
      report = await importSnapshot({
        file: path,
        stateDir: this.#options.stateDir,
        rootPath: this.#options.rootPath,
        maxBytes: this.#options.maxBytes,
        maxBundleBytes: this.#options.maxBundleBytes,
        logger,
        clock: this.#clock,
      });
    } catch (error) {
      const failure = asVouchError(error);
      const seconds = (performance.now() - started) / 1000;
      if (!localErrors.has(failure.code)) {
        await this.#reject(name, key, failure, seconds);
        return true;
      }
      // The device's trouble, not the snapshot's: kept, and tried again after a poll.
      const locked = failure.code === 'STATE_LOCKED';
      const text = locked
        ? `${name} waits for the state lock (a sync is running)`
        : `cannot import ${name} now: ${failure.code}: ${failure.message}; trying again`;
      if (this.#held?.text !== text) {
        logger[locked ? 'info' : 'warn']({ file: path, code: failure.code }, `inbox: ${text}`);
      }
      this.#held = {
        name,
        until: performance.now() + this.#pollMs,
        state: locked ? 'ok' : 'degraded',
        text,
      };
      return false;
    }
    const seconds = (performance.now() - started) / 1000;
    if (this.#held?.name === name) this.#held = undefined;
    this.#rejected = undefined;
    this.#last = `last: imported ${name} (size ${report.size}, ${report.added} added)`;
    logger.info(
      { file: path, size: report.size, added: report.added },
      'imported a snapshot from the inbox',
    );
    const moved = await this.#move(name, key, doneDir);
    this.#tell(() => this.#options.onImported?.(report, moved, seconds));
    return true;
  }

  async #reject(name: string, key: string, error: VouchError, seconds: number): Promise<void> {
    if (this.#held?.name === name) this.#held = undefined;
    this.#rejected = `rejected ${name}: ${error.code}: ${error.message}`;
    this.#options.logger.warn(
      { file: join(this.#options.dir, name), code: error.code },
      `inbox: ${this.#rejected}`,
    );
    const moved = await this.#move(name, key, rejectedDir, `${error.code}: ${error.message}\n`);
    this.#tell(() => this.#options.onRejected?.(moved, error, seconds));
  }

  /**
   * Moves `name` into the subdirectory `to` (a rename: the same file system), under a name
   * no file there has yet, its `.reason` (when given) written first so that it is never
   * missing. Where it is now; still in the inbox, skipped from then on, when that fails.
   */
  async #move(name: string, key: string, to: string, reason?: string): Promise<string> {
    const from = join(this.#options.dir, name);
    try {
      // Again now: the medium may have changed since the inbox was listed.
      await requireRealDirectories(this.#options.dir);
      const target = await this.#freeName(join(this.#options.dir, to), name);
      if (reason !== undefined) await writeFileDurably(`${target}.reason`, reason);
      await rename(fsPath(from), fsPath(target)).catch((error: unknown) => {
        throw ioError(`move ${from} to`, target, error);
      });
      this.#seen.delete(name);
      return target;
    } catch (error) {
      const problem = asVouchError(error).message;
      this.#options.logger.warn({ file: from }, `inbox: ${problem}; leaving it there`);
      this.#unmovable.set(name, { key, problem });
      return from;
    }
  }

  /**
   * `name` in `dir`, or with the time (and a count) added when that name or its `.reason`
   * is taken: a file there is never replaced. Only the agent moves files in, one at a time.
   */
  async #freeName(dir: string, name: string): Promise<string> {
    const taken = (path: string) =>
      lstat(fsPath(path)).then(
        () => true,
        (error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return false;
          throw ioError('read', path, error);
        },
      );
    // Without ':' and '-': names on a FAT stick or an SMB share cannot hold ':'.
    const stamp = formatUtcTime(this.#clock()).replace(/[-:]/g, '');
    for (let n = 0; ; n++) {
      const candidate = join(dir, n === 0 ? name : `${name}.${stamp}${n > 1 ? `.${n}` : ''}`);
      if (!(await taken(candidate)) && !(await taken(`${candidate}.reason`))) return candidate;
    }
  }

  /** A callback's failure is the caller's: logged, the inbox carries on. */
  #tell(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.#options.logger.error({ err: error }, `inbox: a listener failed: ${error}`);
    }
  }

  #updateHealth(): void {
    const dir = this.#options.dir;
    if (this.#unusable !== undefined) {
      this.#health.set('failed', `cannot use the inbox: ${this.#unusable}`);
      return;
    }
    const stuck = this.#unmovable.values().next().value?.problem;
    const trouble = this.#held?.state === 'degraded' ? this.#held.text : (stuck ?? this.#rejected);
    if (trouble !== undefined) {
      this.#health.set('degraded', trouble);
      return;
    }
    const note = this.#held?.text ?? this.#last ?? 'nothing imported yet';
    this.#health.set('ok', `watching ${dir}; ${note}`);
  }

  #wakeIn(ms: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#wakeTimer);
    this.#wakeTimer = setTimeout(() => this.#kick(), ms);
  }

  /** fs.watch on the inbox `ino`; when it fails, the next pass (the poll) tries again. */
  #watch(ino: number): void {
    if (this.#stopped || (this.#watcher && this.#watchedIno === ino)) return;
    this.#unwatch();
    try {
      this.#watcher = watch(fsPath(this.#options.dir), { persistent: false }, (_, name) => {
        if (name !== null && ignored(name.toString())) return;
        clearTimeout(this.#eventTimer);
        this.#eventTimer = setTimeout(() => this.#kick(), eventDelayMs);
      });
      this.#watcher.on('error', () => this.#unwatch());
      this.#watchedIno = ino;
    } catch {
      this.#watcher = undefined;
    }
  }

  #unwatch(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#watchedIno = undefined;
  }
}

/**
 * The inbox, done/ and rejected/ must be directories reached through no symbolic link: the
 * inbox is often on a medium anyone may have written (a USB stick), and a link there would
 * make the agent move files out of, and write .reason files into, wherever it points.
 */
async function requireRealDirectories(
  dir: string,
  subs: readonly string[] = [doneDir, rejectedDir],
): Promise<void> {
  const real = await realpath(fsPath(dir), { encoding: 'buffer' }).catch((error: unknown) => {
    throw ioError('use the inbox', dir, error);
  });
  if (decodeSurrogateEscape(real) !== resolve(dir)) {
    throw new VouchError(
      'IO',
      `cannot use the inbox ${dir}: it is reached through a symbolic link (to ${decodeSurrogateEscape(real)}); give its real path`,
    );
  }
  for (const sub of subs) {
    const info = await lstat(fsPath(join(dir, sub))).catch((error: unknown) => {
      throw ioError('use', join(dir, sub), error);
    });
    if (!info.isDirectory()) {
      throw new VouchError(
        'IO',
        `cannot use the inbox ${dir}: its ${sub}/ is ${kindOf(info)}, not a directory`,
      );
    }
  }
}

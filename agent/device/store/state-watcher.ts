import { type FSWatcher, watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fsPath } from '../../files';

/**
 * Notices when files of a state directory change: the commit point a sync or import in any
 * process writes last (stateFiles.commit), the allow-list. fs.watch on the directory, with
 * a slow poll behind it, which also watches again when the directory appears later or the
 * watch failed. A file is known by its inode, size and mtime: a durable replace (temp file,
 * fsync, rename) changes the inode.
 */

export interface StateWatcherOptions {
  readonly stateDir: string;
  /** Names in the state directory to watch (stateFiles). */
  readonly files: readonly string[];
  /** How often the directory is polled besides fs.watch (ms). */
  readonly pollMs?: number;
  /** One of the files differs from when markSeen() last looked; may come again until then. */
  readonly onChange: () => void;
}

const defaultPollMs = 30_000;
/** A sync replaces several files: look once things settle (ms). */
const settleMs = 50;

/** Files of a state directory as they are now: the inode, size and mtime of each. */
export async function filesKey(stateDir: string, files: readonly string[]): Promise<string> {
  const keys = await Promise.all(
    files.map((name) =>
      stat(fsPath(join(stateDir, name))).then(
        (info) => `${info.ino}:${info.size}:${info.mtimeMs}`,
        () => '-',
      ),
    ),
  );
  return keys.join(' ');
}

export class StateWatcher {
  /** The files as last seen (inode, size, mtime of each). */
  private seen = '';
  private stopped = false;
  private fsWatcher: FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: StateWatcherOptions) {}

  /** Takes the files as they are now as seen: call it just before reading them. */
  async markSeen(): Promise<void> {
    this.seen = await this.filesKey();
  }

  start(): void {
    this.watchDir();
    this.pollTimer = setInterval(() => {
      this.watchDir();
      void this.check();
    }, this.options.pollMs ?? defaultPollMs);
    this.pollTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.settleTimer);
    this.fsWatcher?.close();
  }

  private async check(): Promise<void> {
    if (this.stopped) return;
    const key = await this.filesKey();
    if (key !== this.seen && !this.stopped) this.options.onChange();
  }

  private filesKey(): Promise<string> {
    return filesKey(this.options.stateDir, this.options.files);
  }

  /** fs.watch on the directory; when it does not exist yet (or the watch fails), the poll retries. */
  private watchDir(): void {
    if (this.fsWatcher || this.stopped) return;
    const names = new Set(this.options.files);
    try {
      this.fsWatcher = watch(fsPath(this.options.stateDir), { persistent: false }, (_, name) => {
        if (name !== null && !names.has(name.toString())) return;
        clearTimeout(this.settleTimer);
        this.settleTimer = setTimeout(() => void this.check(), settleMs);
      });
      this.fsWatcher.on('error', () => {
        this.fsWatcher?.close();
        this.fsWatcher = undefined;
      });
    } catch {
      this.fsWatcher = undefined;
    }
  }
}

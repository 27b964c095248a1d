import type { Logger } from '../../logger';
import { stateFiles } from '../store/state';
import { filesKey, StateWatcher } from '../store/state-watcher';
import {
  type ForkEvidence,
  readForkEvidence,
  readSyncStatus,
  type SyncStatus,
} from '../store/status';
import { type LoadedTrust, loadTrust, type OpenedTrust, trustAt } from '../verify/verify';
import { type Health, HealthCell, type Service } from './health';

/**
 * The trust state the agent answers from, loaded once and held: every answer is computed
 * from it at the time of asking (verify.ts trustAt), never a stored verdict. It is loaded
 * again when the commit point (stateFiles.commit, written last by a sync or import in any
 * process) changes: noticed by a watcher, and checked by `current()` so that nobody is
 * answered from a state older than the last commit.
 */

export interface TrustOptions {
  readonly stateDir: string;
  /** `sync.maxAge` as now configured (ms). */
  readonly maxAge: () => number;
  readonly logger: Logger;
  readonly clock?: () => number;
  /** A new commit was loaded (a sync, import or repair, here or in another process). */
  readonly onChange?: (trust: LoadedTrust) => void;
  readonly onHealth?: (health: Health) => void;
}

const reportFiles = [stateFiles.status, stateFiles.fork];

export class TrustService implements Service {
  readonly name = 'trust';
  #loaded: LoadedTrust = { state: undefined, error: undefined, lastMirrorSync: undefined };
  /** The sync history (status.json) and fork evidence (fork.json), read as they change. */
  #history: SyncStatus | undefined;
  #fork: readonly ForkEvidence[] = [];
  /** Those two files as they were when read. */
  #reportsKey = '';
  #clockTimer: NodeJS.Timeout | undefined;
  /** The commit point as it was when #loaded was read. */
  #key = '';
  #loading: Promise<LoadedTrust> | undefined;
  readonly #watcher: StateWatcher;
  readonly #health: HealthCell;

  constructor(private readonly options: TrustOptions) {
    this.#health = new HealthCell('failed', 'not loaded yet', options.clock, options.onHealth);
    this.#watcher = new StateWatcher({
      stateDir: options.stateDir,
      // The sync history and fork evidence too: a sync that found nothing new, or found a
      // fork, commits nothing, but is news for freshness (a log without signed times), the
      // last success and the health; and `vouch fork clear` ends a fork's degraded health.
      files: [stateFiles.commit, ...reportFiles],
      onChange: () => {
        this.#refresh().catch((error: unknown) => {
          options.logger.error({ error: String(error) }, 'cannot load the trust state again');
        });
      },
    });
  }

  async start(): Promise<void> {
    await this.current();
    this.#watcher.start();
    // Staleness comes with time, not with an event: looked at each minute, so that it is
    // logged and told when it comes.
    this.#clockTimer = setInterval(() => void this.health, 60_000);
    this.#clockTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#clockTimer);
    this.#watcher.stop();
    await this.#loading;
  }

  /** The state as of the last commit: loaded again first when the commit point moved. */
  async current(): Promise<LoadedTrust> {
    const { stateDir } = this.options;
    while ((await filesKey(stateDir, [stateFiles.commit])) !== this.#key) {
      this.#loading ??= this.#load().finally(() => {
        this.#loading = undefined;
      });
      await this.#loading;
    }
    return this.#loaded;
  }

  /** The held state as answers use it now. */
  now(): OpenedTrust {
    return trustAt(this.options.stateDir, this.#loaded, this.options.maxAge(), this.options.clock);
  }

  /** When the last sync or import that succeeded, by any process, ended (ms). */
  get lastSuccess(): number | undefined {
    return this.#history?.lastSuccess?.at;
  }

  get loaded(): LoadedTrust {
    return this.#loaded;
  }

  get fork(): readonly ForkEvidence[] {
    return this.#fork;
  }

  get health(): Health {
    const { state, error } = this.#loaded;
    if (!state) this.#health.set('failed', error?.message ?? 'no trust state');
    else if (this.#fork.length > 0) {
      this.#health.set('degraded', `fork detected: ${this.#fork[0]?.reason}; see vouch status`);
    } else {
      const { summary } = this.now();
      const { origin, size } = state.checkpoint.checkpoint;
      const held = `${origin} size ${size}, root v${state.root.version}`;
      if (summary.stale) {
        this.#health.set(
          'degraded',
          `stale (fresh since ${summary.freshSince ?? 'never'}): ${held}`,
        );
      } else this.#health.set('ok', held);
    }
    return this.#health.value;
  }

  /** A commit: the state loaded again; else the sync history and fork evidence read again. */
  async #refresh(): Promise<void> {
    const { stateDir } = this.options;
    if ((await filesKey(stateDir, [stateFiles.commit])) !== this.#key) {
      await this.current();
      return;
    }
    await this.#watcher.markSeen();
    await this.#readReports();
    const lastMirrorSync = this.#history?.lastMirrorSuccess?.at;
    if (lastMirrorSync !== this.#loaded.lastMirrorSync && this.#loaded.state) {
      this.#loaded = { ...this.#loaded, lastMirrorSync };
    }
    void this.health;
  }

  /**
   * The sync history and fork evidence as they are now: read again only when their files
   * changed since (the watcher may not have told of a change yet).
   */
  async reports(): Promise<{
    readonly history: SyncStatus | undefined;
    readonly fork: readonly ForkEvidence[];
  }> {
    if ((await filesKey(this.options.stateDir, reportFiles)) !== this.#reportsKey) {
      await this.#readReports();
    }
    return { history: this.#history, fork: this.#fork };
  }

  /** Reports, not trust data: one that cannot be read is no history, no evidence. */
  async #readReports(): Promise<void> {
    const { stateDir } = this.options;
    // The key first: a change after it is seen by the next reports().
    this.#reportsKey = await filesKey(stateDir, reportFiles);
    this.#history = await readSyncStatus(stateDir).catch(() => undefined);
    this.#fork = await readForkEvidence(stateDir).catch(() => []);
  }

  async #load(): Promise<LoadedTrust> {
    const { stateDir, logger } = this.options;
    // Read the key first: a commit after it is seen by the next current().
    const key = await filesKey(stateDir, [stateFiles.commit]);
    await this.#watcher.markSeen();
    const first = this.#key === '';
    const loaded = await loadTrust(stateDir);
    await this.#readReports();
    this.#loaded = loaded;
    this.#key = key;
    const checkpoint = loaded.state?.checkpoint.checkpoint;
    logger.info(
      {
        size: checkpoint?.size ?? null,
        rootVersion: loaded.state?.root.version ?? null,
        ...(loaded.error && { code: loaded.error.code }),
      },
      loaded.error ? `no usable trust state: ${loaded.error.message}` : 'trust state loaded',
    );
    if (!first) this.options.onChange?.(loaded);
    void this.health; // tells onHealth of a change
    return loaded;
  }
}

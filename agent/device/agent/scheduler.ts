import { createTask, type ScheduledTask } from 'node-cron';
import { asVouchError, type VouchError } from '../../core/errors';
import { formatUtcTime } from '../../core/time';
import type { Logger } from '../../logger';
import { type MirrorResult, readSyncStatus } from '../store/status';
import { type SyncOptions, type SyncReport, syncFromMirrors } from '../sync/sync';
import { type Health, HealthCell, type Service } from './health';

/**
 * The agent's syncs: one at start when the state is stale or absent, then one per tick of
 * `sync.schedule` after a random delay of up to `sync.jitter` (devices spread out), and on
 * request (`POST /v1/sync`, MQTT), which joins a sync under way. Syncs take the state
 * lock, so they never overlap a `vouch sync` in another process either (sync.ts). A failed
 * sync leaves the service degraded and the state as it was; the next tick tries again.
 */

/** How a sync ended, and how long it took. */
export type SyncOutcome =
  | { readonly ok: true; readonly report: SyncReport; readonly seconds: number }
  | {
      readonly ok: false;
      readonly error: VouchError;
      readonly mirrors: readonly MirrorResult[];
      readonly seconds: number;
    };

export interface SchedulerOptions {
  /** What a sync needs, as configured now (the mirrors, the root, timeouts). */
  readonly syncOptions: () => Promise<SyncOptions>;
  /** The schedule and jitter as configured now (SIGHUP changes them: reschedule()). */
  readonly schedule: () => { readonly cron: string; readonly jitterMs: number };
  /** Whether the held state is stale or absent: then a sync runs at start. */
  readonly needsSync: () => boolean;
  readonly logger: Logger;
  readonly clock?: () => number;
  /** After each sync: its report, or its error with each mirror's result. */
  readonly onSync?: (outcome: SyncOutcome) => void;
  readonly onHealth?: (health: Health) => void;
}

const noop = () => {};

export class SyncScheduler implements Service {
  readonly name = 'sync';
  readonly #health: HealthCell;
  #task: ScheduledTask | undefined;
  #running: Promise<SyncReport> | undefined;
  #stopped = false;

  constructor(private readonly options: SchedulerOptions) {
    this.#health = new HealthCell('ok', 'no sync yet', options.clock, options.onHealth);
  }

  get health(): Health {
    return this.#health.value;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    if (this.options.needsSync()) {
      // Not awaited: the agent serves from its local state while the first sync runs.
      this.syncNow().catch(() => {});
    }
    await this.#schedule();
  }

  /** Takes the configured schedule again (after SIGHUP). */
  async reschedule(): Promise<void> {
    await this.#task?.destroy();
    this.#task = undefined;
    if (!this.#stopped) await this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#task?.destroy();
    this.#task = undefined;
    // A sync commits atomically or not at all (state.ts): the agent may exit before it ends.
    await this.#running?.catch(() => {});
  }

  /** A sync now, or the one under way. */
  syncNow(): Promise<SyncReport> {
    this.#running ??= this.#sync().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #schedule(): Promise<void> {
    const { cron, jitterMs } = this.options.schedule();
    // A failed sync is logged by #sync: node-cron must not log it again, in its own format.
    this.#task = createTask(cron, () => this.syncNow().then(noop, noop), {
      name: 'vouch-agent-sync',
      noOverlap: true,
      maxRandomDelay: jitterMs,
    });
    await this.#task.start();
  }

  async #sync(): Promise<SyncReport> {
    const { logger, onSync } = this.options;
    const clock = this.options.clock ?? Date.now;
    const started = performance.now();
    const startedAt = clock();
    const seconds = () => (performance.now() - started) / 1000;
    let options: SyncOptions | undefined;
    try {
      options = await this.options.syncOptions();
      logger.info({ mirrors: options.mirrors }, 'syncing');
      const report = await syncFromMirrors(options);
      logger.info(
        { mirror: report.source, size: report.size, added: report.added },
        `synced: size ${report.previousSize} → ${report.size}`,
      );
      this.#health.set('ok', `synced at ${formatUtcTime(clock())} from ${report.source}`);
      onSync?.({ ok: true, report, seconds: seconds() });
      return report;
    } catch (error) {
      const failure = asVouchError(error);
      logger.error({ code: failure.code }, `sync failed: ${failure.message}`);
      this.#health.set('degraded', `sync failed: ${failure.message}`);
      // This sync's results only: the status file keeps earlier ones, and a sync refused
      // before it reached a mirror (the state locked) tried none.
      const recorded = options && (await readSyncStatus(options.stateDir).catch(() => undefined));
      const mirrors = (recorded?.mirrors ?? []).filter((mirror) => mirror.at >= startedAt);
      onSync?.({ ok: false, error: failure, mirrors, seconds: seconds() });
      throw failure;
    }
  }
}

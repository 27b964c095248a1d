import { once } from 'node:events';
import { createTask } from 'node-cron';
import { asVouchError } from '../../core/errors';
import { type SyncOptions, type SyncReport, syncFromMirrors } from './sync';

export interface WatchOptions extends SyncOptions {
  /** node-cron expression (config sync.schedule). */
  readonly schedule: string;
  /** Random delay before each scheduled run, at most (ms): devices do not all come at once. */
  readonly jitterMs: number;
  /** Stops watching; a sync in progress finishes first. */
  readonly signal: AbortSignal;
  /** Told about every run. */
  readonly onRun?: (outcome: SyncReport | Error) => void;
}

/**
 * `vouch sync --watch` (and the daemon): one sync now, then one per tick of the schedule
 * until `signal` aborts. Runs never overlap (node-cron noOverlap, and the state lock
 * across processes); a failed run is logged and the next tick tries again.
 */
export async function watchSync(options: WatchOptions): Promise<number> {
  let runs = 0;
  let running: Promise<void> = Promise.resolve();
  const syncOnce = async () => {
    runs++;
    try {
      // Not inside `onRun?.(…)`: without a listener that would skip the sync itself.
      const report = await syncFromMirrors(options);
      // A one-shot `vouch sync` prints its report; a watch has only its log to say it.
      options.logger.info(
        { mirror: report.source, size: report.size, added: report.added },
        'synced',
      );
      options.onRun?.(report);
    } catch (error) {
      const failure = asVouchError(error);
      options.logger.error({ code: failure.code }, `sync failed: ${failure.message}`);
      options.onRun?.(failure);
    }
  };
  const run = () => {
    running = syncOnce();
    return running;
  };
  if (options.signal.aborted) return runs;
  await run();
  const task = createTask(options.schedule, run, {
    name: 'vouch-sync',
    noOverlap: true,
    maxRandomDelay: options.jitterMs,
  });
  await task.start();
  if (!options.signal.aborted) await once(options.signal, 'abort');
  await task.destroy();
  await running;
  return runs;
}

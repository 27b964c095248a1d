import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../../config';
import { asVouchError } from '../../core/errors';
import { Agent, type AgentOptions } from './agent';
import { SystemdNotifier } from './notify';

/**
 * The agent in the foreground (systemd, s6, a container) until SIGTERM or SIGINT: started,
 * READY=1 told to systemd, SIGHUP reloading the configuration, then stopped within
 * `stopMs` — what does not finish by then is abandoned, which is safe: every commit of the
 * state is atomic (docs/architecture.md "Crash safety").
 */

export interface RunOptions extends AgentOptions {
  /** The configuration read again (SIGHUP); throws CONFIG_INVALID for a bad one. */
  readonly reloadConfig: () => Config;
  /** How long stopping may take before the rest is abandoned (ms). */
  readonly stopMs?: number;
}

export async function runAgent(options: RunOptions): Promise<{ readonly signal: string }> {
  const { logger, env } = options;
  const agent = new Agent(options);
  const systemd = new SystemdNotifier({ logger, env });
  let onSignal: (signal: NodeJS.Signals) => void = () => {};
  const stopping = new Promise<string>((resolve) => {
    onSignal = resolve;
  });
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const reload = () => {
    let config: Config;
    try {
      config = options.reloadConfig();
    } catch (error) {
      logger.error(
        { code: asVouchError(error).code },
        `configuration not reloaded, the one before stays: ${asVouchError(error).message}`,
      );
      return;
    }
    agent.reload(config).catch((error: unknown) => {
      logger.error({ error: asVouchError(error).message }, 'reloading the configuration failed');
    });
  };
  process.on('SIGHUP', reload);
  try {
    // A signal while starting (Docker's first check may take a while) stops it at once.
    const started = agent.start().then(() => undefined);
    const early = await Promise.race([started, stopping]).catch(async (error: unknown) => {
      // The services that did start stop again: nothing is left running.
      await agent.stop().catch(() => {});
      throw error;
    });
    if (early === undefined) {
      logger.info({ version: options.version }, 'ready');
      await systemd.notify('READY=1', 'STATUS=serving');
    }
    const signal = await stopping;
    logger.info({ signal }, 'stopping');
    // Not awaited: systemd-notify may wait for systemd's answer, and the stop has its bound.
    void systemd.notify('STOPPING=1');
    const stopped = await Promise.race([
      agent.stop().then(() => true),
      sleep(options.stopMs ?? 2000).then(() => false),
    ]);
    if (!stopped) logger.warn('stopping took too long: the rest is abandoned');
    return { signal };
  } finally {
    process.off('SIGHUP', reload);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

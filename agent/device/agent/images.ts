import type Docker from 'dockerode';
import type { ImagePolicy } from '../../config';
import type { VouchError } from '../../core/errors';
import type { Logger } from '../../logger';
import type { StopContainer } from '../docker/stop';
import { ImageWatcher, type VerdictEvent } from '../docker/watch';
import type { TrustState } from '../store/state';
import type { AgentEvents } from './events';
import { type Health, HealthCell, type Service } from './health';

/**
 * The agent's Docker watcher: what `vouch watch` does (docker/watch.ts), from the agent's
 * held trust state. It verifies each image as it arrives, checks all of them again after a
 * commit, applies enforcement, and reconnects with backoff while dockerd is down; a device
 * without Docker has this service degraded and everything else working.
 */

export interface ImagesOptions {
  readonly docker: Docker;
  readonly stateDir: string;
  readonly policy: ImagePolicy;
  readonly trust: () => Promise<{
    readonly state: TrustState | undefined;
    readonly error: VouchError | undefined;
  }>;
  readonly events: AgentEvents;
  readonly logger: Logger;
  /** How enforcement stops a container: through the Supervisor in an add-on (docker/stop.ts). */
  readonly stop: StopContainer;
  readonly clock?: () => number;
  readonly onHealth?: (health: Health) => void;
}

export class ImagesService implements Service {
  readonly name = 'docker';
  readonly watcher: ImageWatcher;
  readonly #health: HealthCell;

  constructor(options: ImagesOptions) {
    this.#health = new HealthCell('degraded', 'not connected yet', options.clock, options.onHealth);
    this.watcher = new ImageWatcher({
      docker: options.docker,
      stateDir: options.stateDir,
      policy: options.policy,
      logger: options.logger,
      stop: options.stop,
      trust: options.trust,
      ...(options.clock && { clock: options.clock }),
    });
    const { events } = options;
    this.watcher.on('connected', () => this.#health.set('ok', 'connected'));
    this.watcher.on('disconnected', ({ error, retryInMs }) =>
      this.#health.set(
        'degraded',
        `Docker unreachable (${error.message}); trying again in ${Math.ceil(retryInMs / 1000)} s`,
      ),
    );
    this.watcher.on('verdict', ({ result, changed, previousStatus }) => {
      if (!changed) return;
      events.publish({
        type: 'verdict',
        subject: result.id ?? result.ref,
        kind: 'image',
        name: result.names[0] ?? null,
        status: result.status,
        previous: previousStatus ?? null,
        reason: result.error?.message ?? result.reason,
      });
    });
    this.watcher.on('action', (action) => events.publish({ type: 'action', action }));
  }

  get health(): Health {
    return this.#health.value;
  }

  /** The latest verdict of each local image, with what enforcement decided. */
  verdicts(): readonly VerdictEvent[] {
    return [...this.watcher.latest.values()];
  }

  async start(): Promise<void> {
    await this.watcher.start();
  }

  async stop(): Promise<void> {
    await this.watcher.stop();
  }
}

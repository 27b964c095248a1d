import { EventEmitter } from 'node:events';
import type Docker from 'dockerode';
import type { ImagePolicy } from '../../config';
import { unavailable } from '../../content/docker';
import { asVouchError, VouchError } from '../../core/errors';
import type { StatusName } from '../../core/status';
import type { Logger } from '../../logger';
import { trustedNow } from '../status';
import { loadState, stateFiles, type TrustState } from '../store/state';
import { StateWatcher } from '../store/state-watcher';
import { type AllowEntry, readAllowList } from './allow';
import {
  type ContainerRef,
  containerName,
  type Decision,
  decide,
  type EnforcementAction,
  enforce,
} from './enforce';
import { type Backoff, type DockerEvent, DockerEventFollower } from './events';
import { type ImageResult, verifyImage } from './image';
import { dockerStopper, type StopContainer } from './stop';

/**
 * The Docker watcher (`vouch watch`, and the daemon): verifies images as they arrive and
 * applies enforcement (enforce.ts). It follows the Engine's event stream (image pull, load,
 * tag, untag, import, delete; container create, start), keeps the latest verdict per image
 * ID, and checks every local image again
 *   - when it (re)connects, since events may have been missed while it was not connected;
 *   - after each commit of the trust state (checkpoint.json, written last by a sync in any
 *     process) or change of the allow-list (store/state-watcher.ts), so a revocation takes
 *     effect without a restart.
 * When dockerd restarts or its socket goes away, it reconnects with backoff (events.ts).
 * Everything runs one task at a time, so verdicts and actions come in a well-defined order.
 */

/** What caused a check: the watcher starting, reconnecting, a state change, or an event. */
export type Trigger =
  | 'startup'
  | 'reconnect'
  | 'state'
  | 'once'
  | `image ${string}`
  | `container ${string}`;

export interface VerdictEvent {
  readonly result: ImageResult;
  readonly decision: Decision;
  readonly trigger: Trigger;
  /** The first verdict for this image, or its status, error or override differs from the last. */
  readonly changed: boolean;
  /** The status of the verdict before (null: could not check); absent for the first. */
  readonly previousStatus?: StatusName | null;
  /** The container whose start caused the check. */
  readonly container?: ContainerRef;
}

export interface Checked {
  readonly verdicts: readonly VerdictEvent[];
  readonly actions: readonly EnforcementAction[];
}

export interface WatcherEvents {
  verdict: [VerdictEvent];
  action: [EnforcementAction];
  /** An image ID that is gone from Docker; its verdict is forgotten. */
  removed: [string];
  connected: [];
  disconnected: [{ readonly error: VouchError; readonly retryInMs: number }];
  /** The trust state was (re)loaded: its size and root version, or why there is none. */
  state: [
    { readonly size: number | null; readonly rootVersion: number | null; readonly error?: string },
  ];
}

export interface ImageWatcherOptions {
  readonly docker: Docker;
  readonly stateDir: string;
  readonly policy: ImagePolicy;
  readonly logger: Logger;
  readonly clock?: () => number;
  /** How enforcement stops a container (stop.ts); default: through Docker. */
  readonly stop?: StopContainer;
  /** Reconnect delays (ms): the first, doubled after each failure up to the cap. */
  readonly backoff?: Backoff;
  /** How often the state dir is polled besides fs.watch (ms). */
  readonly statePollMs?: number;
  /**
   * The trust state as of the last commit, from one who holds it (the agent's, shared with
   * its other answers); loaded from `stateDir` otherwise.
   */
  readonly trust?: () => Promise<{
    readonly state: TrustState | undefined;
    readonly error: VouchError | undefined;
  }>;
}

const imageActions = ['pull', 'load', 'tag', 'untag', 'import', 'delete'] as const;
const containerActions = ['create', 'start'] as const;

/** Which containers a verdict is applied to: all running ones of the image, one, or none. */
type ApplyTo = 'running' | 'none' | ContainerRef;

export class ImageWatcher extends EventEmitter<WatcherEvents> {
  private readonly verdicts = new Map<string, VerdictEvent>();
  private state: TrustState | undefined;
  private stateError: VouchError | undefined;
  private allowList: readonly AllowEntry[] = [];
  private policy: ImagePolicy;
  private refreshQueued = false;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly dockerEvents: DockerEventFollower<'image' | 'container'>;
  /** The commit point and the allow-list. */
  private readonly stateWatcher: StateWatcher;
  private readonly stopContainer: StopContainer;

  constructor(private readonly options: ImageWatcherOptions) {
    super();
    this.policy = options.policy;
    this.stopContainer = options.stop ?? dockerStopper(options.docker);
    this.dockerEvents = new DockerEventFollower({
      docker: options.docker,
      types: ['image', 'container'],
      actions: [...imageActions, ...containerActions],
      logger: options.logger,
      ...(options.backoff && { backoff: options.backoff }),
      onConnected: async (again) => {
        this.publish('connected');
        await this.serial(() => this.checkAll(again ? 'reconnect' : 'startup'));
      },
      onEvent: (event) => this.serial(() => this.onEvent(event)),
      onDisconnected: (error, retryInMs) => this.publish('disconnected', { error, retryInMs }),
    });
    this.stateWatcher = new StateWatcher({
      stateDir: options.stateDir,
      files: [stateFiles.commit, stateFiles.allow],
      ...(options.statePollMs !== undefined && { pollMs: options.statePollMs }),
      onChange: () => this.refresh(),
    });
  }

  /** The latest verdict per image ID. */
  get latest(): ReadonlyMap<string, VerdictEvent> {
    return this.verdicts;
  }

  /**
   * Verifies every local image and applies enforcement once (`vouch watch --once`);
   * UNAVAILABLE when Docker cannot be reached.
   */
  async checkOnce(): Promise<Checked> {
    await this.loadTrust();
    return this.serial(() => this.checkAll('once'));
  }

  /**
   * Starts watching. Resolves once the first connection attempt is over: connected and
   * every image checked, or failed with retries under way. Never rejects for Docker.
   */
  async start(): Promise<void> {
    await this.loadTrust();
    this.stateWatcher.start();
    await this.dockerEvents.start();
  }

  /** A new policy (the agent's configuration reloaded): every image is checked again. */
  setPolicy(policy: ImagePolicy): void {
    this.policy = policy;
    this.refresh();
  }

  /** Stops watching; the task under way finishes first. */
  async stop(): Promise<void> {
    this.stateWatcher.stop();
    await this.dockerEvents.stop();
    await this.queue;
  }

  private get logger(): Logger {
    return this.options.logger;
  }

  private async onEvent(event: DockerEvent<'image' | 'container'>): Promise<void> {
    const trigger = `${event.Type} ${event.Action}` as const;
    const id = event.Actor.ID;
    if (event.Type === 'image') {
      if (event.Action === 'delete') this.forget(id);
      else if ((imageActions as readonly string[]).includes(event.Action)) {
        await this.check(id, trigger, 'running');
      }
      return;
    }
    if (!(containerActions as readonly string[]).includes(event.Action)) return;
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.options.docker.getContainer(id).inspect();
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return; // gone already
      throw unavailable(error, `Docker, about container ${id}`);
    }
    const container = { id: info.Id, name: containerName(info.Name) };
    // A created container is not running yet: its start is what enforcement acts on.
    await this.check(info.Image, trigger, event.Action === 'start' ? container : 'none');
  }

  /** Verifies every local image, forgets those that are gone. Run through serial(). */
  private async checkAll(trigger: Trigger): Promise<Checked> {
    let images: Docker.ImageInfo[];
    try {
      images = await this.options.docker.listImages();
    } catch (error) {
      throw unavailable(error, 'Docker, for its images');
    }
    const present = new Set(images.map((image) => image.Id));
    for (const id of [...this.verdicts.keys()]) if (!present.has(id)) this.forget(id);
    const verdicts: VerdictEvent[] = [];
    const actions: EnforcementAction[] = [];
    for (const image of images) {
      const checked = await this.check(image.Id, trigger, 'running');
      if (checked) {
        verdicts.push(checked.verdict);
        actions.push(...checked.actions);
      }
    }
    return { verdicts, actions };
  }

  /** Verifies one image, records and publishes the verdict, applies it. Run through serial(). */
  private async check(
    ref: string,
    trigger: Trigger,
    applyTo: ApplyTo,
  ): Promise<{ verdict: VerdictEvent; actions: EnforcementAction[] } | undefined> {
    const { docker, clock } = this.options;
    const policy = this.policy;
    const result = await verifyImage(docker, this.state, ref, {
      policy,
      now: trustedNow(this.state, clock),
      ...(this.stateError && { stateError: this.stateError }),
    });
    // Docker went away: the reconnect checks everything again. An image deleted since the
    // event: its delete event (or the next full check) forgets it.
    if (result.error?.code === 'UNAVAILABLE') throw new VouchError('UNAVAILABLE', result.reason);
    if (result.id === null) return undefined;
    const previous = this.verdicts.get(result.id);
    const decision = decide(result, policy, this.allowList);
    const verdict: VerdictEvent = {
      result,
      decision,
      trigger,
      changed:
        previous === undefined ||
        previous.result.status !== result.status ||
        previous.result.error?.code !== result.error?.code ||
        JSON.stringify(previous.decision.allowedBy) !== JSON.stringify(decision.allowedBy),
      ...(typeof applyTo === 'object' && { container: applyTo }),
      ...(previous && { previousStatus: previous.result.status }),
    };
    this.verdicts.set(result.id, verdict);
    // A verdict that flipped is news; first verdicts and repeats are the caller's to show.
    this.logger[previous && verdict.changed ? 'info' : 'debug'](
      {
        image: result.id,
        name: result.names[0] ?? null,
        status: result.status,
        trigger,
        action: decision.action,
      },
      `${result.status ?? 'could not check'}: ${result.names[0] ?? result.id}`,
    );
    this.publish('verdict', verdict);
    const actions =
      applyTo === 'none'
        ? []
        : await enforce(docker, result, decision, {
            logger: this.logger,
            stop: this.stopContainer,
            ...(typeof applyTo === 'object' && { container: applyTo }),
          });
    for (const action of actions) this.publish('action', action);
    return { verdict, actions };
  }

  private forget(id: string): void {
    if (this.verdicts.delete(id)) this.publish('removed', id);
  }

  /** Loads the trust state and the allow-list as they are now. */
  private async loadTrust(): Promise<void> {
    const { stateDir } = this.options;
    await this.stateWatcher.markSeen();
    try {
      if (this.options.trust) {
        ({ state: this.state, error: this.stateError } = await this.options.trust());
      } else {
        this.state = await loadState(stateDir);
        this.stateError = undefined;
      }
    } catch (error) {
      this.state = undefined;
      this.stateError = asVouchError(error);
      this.logger.error(
        { code: this.stateError.code },
        `cannot load the trust state: ${this.stateError.message}`,
      );
    }
    try {
      this.allowList = await readAllowList(stateDir);
    } catch (error) {
      const failure = asVouchError(error);
      this.logger.error(
        { code: failure.code },
        `cannot read the allow-list, keeping the one read before: ${failure.message}`,
      );
    }
    const size = this.state?.checkpoint.checkpoint.size ?? null;
    const rootVersion = this.state?.root.version ?? null;
    this.logger.info({ size, rootVersion }, 'trust state loaded');
    this.publish('state', {
      size,
      rootVersion,
      ...(this.stateError && { error: this.stateError.message }),
    });
  }

  /** The state or the allow-list changed since loaded: reload, check everything. */
  private refresh(): void {
    if (this.refreshQueued) return;
    this.refreshQueued = true;
    this.serial(async () => {
      this.refreshQueued = false;
      await this.loadTrust();
      await this.checkAll('state');
    }).catch((error: unknown) => {
      // Docker unreachable: the reconnect checks everything under the new state.
      const failure = asVouchError(error);
      this.logger.warn({ code: failure.code }, `cannot check images again: ${failure.message}`);
    });
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Emits to listeners; a failing listener is logged and cannot stop the watcher. */
  private publish<K extends keyof WatcherEvents>(event: K, ...args: WatcherEvents[K]): void {
    try {
      (this.emit as (name: K, ...rest: WatcherEvents[K]) => boolean)(event, ...args);
    } catch (error) {
      this.logger.error({ event, error: asVouchError(error).message }, 'a listener failed');
    }
  }
}

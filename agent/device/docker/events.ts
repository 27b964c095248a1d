import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { z } from 'zod';
import { unavailable } from '../../content/docker';
import { asVouchError, VouchError } from '../../core/errors';
import type { Logger } from '../../logger';

/**
 * Follows the Docker Engine's event stream (GET /events, JSON lines) until stopped. Each
 * connection subscribes first, then lets its caller catch up on what it may have missed
 * while not connected, so that nothing arriving meanwhile is lost. When dockerd restarts or
 * its socket goes away, it connects again with exponential backoff: doubling up to a cap,
 * back to the first delay after a connection that caught up.
 */

type EventFilters = Exclude<Docker.GetEventsOptions['filters'], string | undefined>;
/** What a Docker event is about: `image`, `container`, … */
export type EventObject = NonNullable<EventFilters['type']>[number];

export interface DockerEvent<T extends EventObject = EventObject> {
  readonly Type: T;
  readonly Action: string;
  readonly Actor: { readonly ID: string };
}

export interface Backoff {
  /** The first reconnect delay (ms), doubled after each failure up to maxMs. */
  readonly initialMs: number;
  readonly maxMs: number;
}

export interface EventFollowerOptions<T extends EventObject> {
  readonly docker: Docker;
  /** The events Docker is asked for (its `type` and `event` filters); others are ignored. */
  readonly types: readonly T[];
  readonly actions: readonly string[];
  readonly logger: Logger;
  readonly backoff?: Backoff;
  /**
   * Subscribed (`again`: an earlier connection caught up): catch up on what was missed.
   * The connection counts once this resolves; a rejection is a lost connection.
   */
  readonly onConnected: (again: boolean) => Promise<void>;
  /** One event, in Docker's order; a rejection is logged, and the follower goes on. */
  readonly onEvent: (event: DockerEvent<T>) => Promise<void>;
  /** The connection failed or ended; the next try is in `retryInMs`. */
  readonly onDisconnected: (error: VouchError, retryInMs: number) => void;
}

const defaultBackoff: Backoff = { initialMs: 1000, maxMs: 60_000 };
/** A Docker event is a few hundred bytes; a longer line is not one. */
const maxEventLineBytes = 64 * 1024;

const eventSchema = z.object({
  Type: z.string(),
  Action: z.string().max(256),
  Actor: z.object({ ID: z.string().min(1).max(1024) }),
});

export class DockerEventFollower<T extends EventObject> {
  private readonly stopping = new AbortController();
  private running: Promise<void> | undefined;

  constructor(private readonly options: EventFollowerOptions<T>) {}

  /**
   * Starts following. Resolves once the first connection attempt is over: connected and
   * caught up, or failed with retries under way (or stopped). Never rejects for Docker.
   */
  async start(): Promise<void> {
    let attempted = () => {};
    const first = new Promise<void>((resolve) => {
      attempted = resolve;
    });
    this.running = this.run(attempted);
    await Promise.race([first, this.running]);
  }

  /**
   * Stops following: the request or connection is aborted, a wait to retry ends; a
   * catch-up under way finishes first.
   */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
  }

  /** Connect, catch up, follow events; on any failure wait and do it again. */
  private async run(attempted: () => void): Promise<void> {
    const { initialMs, maxMs } = this.options.backoff ?? defaultBackoff;
    let delay = initialMs;
    let again = false;
    while (!this.stopping.signal.aborted) {
      try {
        await this.connection(again, () => {
          again = true;
          delay = initialMs;
          attempted();
        });
      } catch (error) {
        attempted();
        if (this.stopping.signal.aborted) break;
        const failure = unavailable(error, 'Docker');
        this.options.logger.warn(
          { code: failure.code, retryInMs: delay },
          `Docker connection lost: ${failure.message}`,
        );
        this.options.onDisconnected(failure, delay);
        await sleep(delay, undefined, { signal: this.stopping.signal }).catch(() => {});
        delay = Math.min(delay * 2, maxMs);
      }
    }
  }

  /** One connection, until it ends (rejecting with why) or the follower stops. */
  private async connection(again: boolean, caughtUp: () => void): Promise<void> {
    const stream = await this.options.docker.getEvents({
      filters: { type: [...this.options.types], event: [...this.options.actions] },
      abortSignal: this.stopping.signal,
    });
    try {
      const ended = this.follow(stream);
      // Stopped as the response came: the stream may have closed before it was followed.
      if (this.stopping.signal.aborted) return;
      this.options.logger.info('following Docker events');
      await this.options.onConnected(again);
      caughtUp();
      throw await ended;
    } finally {
      // However it ended: an open stream would keep delivering, and keep the process alive.
      (stream as { destroy?: () => void }).destroy?.();
    }
  }

  /**
   * Reads the event stream (JSON lines) and hands on each event; resolves with why it ended
   * (never rejects).
   */
  private follow(stream: NodeJS.ReadableStream): Promise<Error> {
    return new Promise((resolve) => {
      const decoder = new StringDecoder('utf8');
      let pending = '';
      stream.on('data', (chunk: Buffer) => {
        pending += decoder.write(chunk);
        for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
          const line = pending.slice(0, end).trim();
          pending = pending.slice(end + 1);
          if (line) this.onLine(line);
        }
        if (pending.length > maxEventLineBytes) {
          resolve(new VouchError('BAD_DATA', 'Docker sent an event line over 64 KiB'));
        }
      });
      stream.once('error', (error: Error) => resolve(error));
      stream.once('end', () => resolve(new Error('Docker ended the event stream')));
      stream.once('close', () => resolve(new Error('Docker closed the event stream')));
    });
  }

  private onLine(line: string): void {
    const event = this.parse(line);
    if (!event) {
      this.options.logger.debug({ line: line.slice(0, 200) }, 'ignored a Docker event');
      return;
    }
    const failed = (error: unknown) => {
      const failure = asVouchError(error);
      this.options.logger.warn(
        { code: failure.code, event: `${event.Type} ${event.Action}` },
        `cannot handle a Docker event: ${failure.message}`,
      );
    };
    try {
      this.options.onEvent(event).catch(failed);
    } catch (error) {
      failed(error);
    }
  }

  /** An event of a type asked for, or undefined. */
  private parse(line: string): DockerEvent<T> | undefined {
    try {
      const event = eventSchema.parse(JSON.parse(line));
      return this.options.types.includes(event.Type as T) ? (event as DockerEvent<T>) : undefined;
    } catch {
      return undefined;
    }
  }
}

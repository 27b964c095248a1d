import { EventEmitter } from 'node:events';
import type { ErrorCode } from '../../core/errors';
import type { StatusName } from '../../core/status';
import { formatUtcTime } from '../../core/time';
import type { EnforcementAction } from '../docker';
import type { Health } from './health';

/**
 * What the agent tells listeners (the API's `GET /v1/events`, MQTT): verdict changes,
 * enforcement actions, syncs and imports, services changing health.
 */
export type AgentEvent =
  | {
      readonly type: 'verdict';
      /** An image ID, a file's path, or `sha256:<hex>` / `merkle-sha256-1mib:<hex>`. */
      readonly subject: string;
      readonly kind: 'image' | 'file' | 'digest';
      /** An image's first name, when it has one. */
      readonly name: string | null;
      /** null: could not check. */
      readonly status: StatusName | null;
      /** The status before; null when there was none or it could not be checked. */
      readonly previous: StatusName | null;
      readonly reason: string;
    }
  | { readonly type: 'action'; readonly action: EnforcementAction }
  | {
      readonly type: 'sync';
      /** A mirror sync, or a snapshot imported from the inbox. */
      readonly via: 'mirror' | 'inbox';
      readonly ok: boolean;
      /** The mirror or snapshot file. */
      readonly source: string | null;
      readonly size: number | null;
      readonly added: number | null;
      readonly error?: { readonly code: ErrorCode; readonly message: string };
    }
  | { readonly type: 'health'; readonly service: string; readonly health: Health };

/** An event as delivered: with its time (RFC 3339). */
export type Stamped = AgentEvent & { readonly at: string };

/** The agent's event bus. A listener that throws is the listener's problem, not the bus's. */
export class AgentEvents {
  readonly #emitter = new EventEmitter<{ event: [Stamped] }>();

  constructor(private readonly clock: () => number = Date.now) {
    // Every API client on /v1/events is a listener.
    this.#emitter.setMaxListeners(0);
  }

  publish(event: AgentEvent): void {
    const stamped = { ...event, at: formatUtcTime(this.clock()) } as Stamped;
    for (const listener of this.#emitter.listeners('event')) {
      try {
        listener(stamped);
      } catch {
        // The bus carries on for the others.
      }
    }
  }

  /** Calls `listener` for every event from now on; returns the function that stops it. */
  subscribe(listener: (event: Stamped) => void): () => void {
    this.#emitter.on('event', listener);
    return () => this.#emitter.off('event', listener);
  }
}

import { formatUtcTime } from '../../core/time';

/**
 * Each part of the agent is a service with a health: `ok`; `degraded` (working, with
 * something wrong a user should know: no mirror answered, Docker is gone); `failed` (not
 * working). One service failing never stops the others (agent.ts).
 */
export type HealthState = 'ok' | 'degraded' | 'failed';

export interface Health {
  readonly state: HealthState;
  /** What is wrong, or what the service is doing when `ok`. */
  readonly reason: string;
  /** RFC 3339: since when the service has been in this state. */
  readonly since: string;
}

export interface Service {
  readonly name: string;
  /** Resolves once the service runs; never rejects for what its health can say. */
  start(): Promise<void>;
  /** Stops the service; work under way is finished or abandoned safely. */
  stop(): Promise<void>;
  readonly health: Health;
}

/** A service's health, whose `since` moves only when its state changes. */
export class HealthCell {
  #health: Health;

  constructor(
    state: HealthState,
    reason: string,
    private readonly clock: () => number = Date.now,
    private readonly onChange?: (health: Health) => void,
  ) {
    this.#health = { state, reason, since: formatUtcTime(clock()) };
  }

  get value(): Health {
    return this.#health;
  }

  set(state: HealthState, reason: string): void {
    const previous = this.#health;
    if (previous.state === state && previous.reason === reason) return;
    const since = previous.state === state ? previous.since : formatUtcTime(this.clock());
    this.#health = { state, reason, since };
    if (previous.state !== state) this.onChange?.(this.#health);
  }
}

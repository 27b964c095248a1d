import { type HashPlan, planHashing, readProfile } from '../../../hw';
import { type HashPool, plannedPool } from '../../content/pool';
import { asVouchError, VouchError } from '../../core/errors';
import { type Health, HealthCell, type Service } from './health';

/**
 * The agent's hash pool (content/pool/), there only while it is used: the first use starts
 * it, and it is closed `idleMs` after the last, so an idle agent holds no worker threads
 * (each is a V8 isolate with its own heap, on boards with 1 GiB of memory). Sized by the
 * hashing plan with two workers at least, as for deep checks (docker/deep.ts deepPool: one
 * layer hashed while the next is read), and all of them booted with it: a large file's
 * chunked digest runs on every worker at once (verify/chunked.ts).
 */

export interface IdlePoolOptions {
  /** The workers are closed after this long without a user (ms); default one minute. */
  readonly idleMs?: number;
  readonly clock?: () => number;
  /** The health changed state (agent.ts publishes it). */
  readonly onHealth?: (health: Health) => void;
}

const idle = 'idle (no workers)';

export class IdlePool implements Service {
  readonly name = 'hashing';
  readonly #idleMs: number;
  readonly #health: HealthCell;
  /** The pool, started or starting; undefined while idle. */
  #pool: Promise<HashPool> | undefined;
  #plan: HashPlan | undefined;
  #board: string | null = null;
  #users = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: IdlePoolOptions = {}) {
    this.#idleMs = options.idleMs ?? 60_000;
    this.#health = new HealthCell('ok', idle, options.clock, options.onHealth);
  }

  get health(): Health {
    return this.#health.value;
  }

  /** The plan pools are sized by (for `/v1/status`); undefined before start(). */
  plan(): HashPlan | undefined {
    return this.#plan;
  }

  /** The board the plan was made for (hw/: device tree, DMI or cpuinfo); null when not known. */
  get board(): string | null {
    return this.#board;
  }

  /** Reads the plan; no worker starts until the first use. */
  async start(): Promise<void> {
    this.#stopped = false;
    try {
      const profile = await readProfile({ root: '/', paths: [] });
      this.#board = profile.board;
      this.#plan = planHashing(profile);
    } catch (error) {
      // The first use reads it again, and says so in the health if it still cannot.
      this.#health.set('degraded', `cannot read the hardware: ${asVouchError(error).message}`);
    }
  }

  /**
   * Closes the pool now, without waiting for its users: the jobs under way fail ("the hash
   * pool was closed"), and so does any use until the next start().
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#close();
  }

  /** Runs `work` on the pool, starting it first if it is not running. */
  async use<T>(work: (pool: HashPool) => Promise<T>): Promise<T> {
    if (this.#stopped) throw new VouchError('INTERNAL', 'hashing has stopped');
    this.#users++;
    clearTimeout(this.#timer);
    try {
      return await work(await this.#running());
    } finally {
      if (--this.#users === 0 && !this.#stopped) {
        this.#timer = setTimeout(() => void this.#close(), this.#idleMs);
        // Closing idle workers is no reason to keep the process alive.
        this.#timer.unref();
      }
    }
  }

  /** The pool; users that come while it starts share the one starting. */
  #running(): Promise<HashPool> {
    if (this.#pool) return this.#pool;
    const starting = plannedPool([], { minWorkers: 2, warm: Number.POSITIVE_INFINITY }).then(
      (pool) => {
        this.#plan = pool.plan;
        this.#health.set('ok', `${pool.threads.length} workers`);
        return pool;
      },
      (error) => {
        // The next use tries again.
        if (this.#pool === starting) this.#pool = undefined;
        const failure = asVouchError(error);
        this.#health.set('failed', `cannot start the hash workers: ${failure.message}`);
        throw failure;
      },
    );
    this.#pool = starting;
    return starting;
  }

  async #close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await (await pool?.catch(() => undefined))?.close();
    // A use that came meanwhile has started another.
    if (pool && !this.#pool) this.#health.set('ok', idle);
  }
}

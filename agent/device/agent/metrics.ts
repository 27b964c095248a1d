import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The agent's Prometheus metrics (`GET /metrics`, prom-client). Gauges that describe the
 * current state are read when scraped, from `sources`; counters and histograms are
 * recorded as things happen. Names follow Prometheus' conventions: base units (seconds,
 * bytes), `_total` for counters, a `vouch_` prefix.
 */

export interface MetricSources {
  /** Current verdicts by status (TRUSTED…REVOKED, and `COULD_NOT_CHECK`). */
  verdictCounts(): Readonly<Record<string, number>>;
  /** When the last sync or import that succeeded ended (ms), if any. */
  lastSyncSuccess(): number | undefined;
  /** The verified log size, if there is a trust state. */
  logSize(): number | undefined;
  readonly clock?: () => number;
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly #syncSeconds: Histogram<'mirror' | 'result'>;
  readonly #syncFailures: Counter<'mirror'>;
  readonly #hashedBytes: Counter;
  readonly #hashSeconds: Counter;
  readonly #requests: Counter<'route' | 'method' | 'code'>;
  readonly #requestSeconds: Histogram<'route'>;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    const clock = sources.clock ?? Date.now;
    new Gauge({
      name: 'vouch_verdicts',
      help: 'Subjects the agent holds a verdict for, by status (COULD_NOT_CHECK: no status).',
      labelNames: ['status'],
      registers,
      collect() {
        this.reset();
        for (const [status, count] of Object.entries(sources.verdictCounts())) {
          this.set({ status }, count);
        }
      },
    });
    new Gauge({
      name: 'vouch_last_sync_success_age_seconds',
      help: 'Seconds since the last sync or snapshot import that succeeded (absent: none yet).',
      registers,
      collect() {
        this.reset();
        const last = sources.lastSyncSuccess();
        if (last !== undefined) this.set(Math.max(0, (clock() - last) / 1000));
      },
    });
    new Gauge({
      name: 'vouch_log_size',
      help: 'Entries in the verified log the device holds (absent: no trust state).',
      registers,
      collect() {
        this.reset();
        const size = sources.logSize();
        if (size !== undefined) this.set(size);
      },
    });
    this.#syncSeconds = new Histogram({
      name: 'vouch_sync_duration_seconds',
      help: 'Duration of syncs and imports, by mirror (or snapshot file) and result.',
      labelNames: ['mirror', 'result'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.#syncFailures = new Counter({
      name: 'vouch_sync_failures_total',
      help: 'Syncs and imports that failed, by mirror (or `inbox`).',
      labelNames: ['mirror'],
      registers,
    });
    this.#hashedBytes = new Counter({
      name: 'vouch_hashed_bytes_total',
      help: 'Bytes of files hashed on the device (a digest from the cache counts nothing).',
      registers,
    });
    this.#hashSeconds = new Counter({
      name: 'vouch_hash_seconds_total',
      help: 'Time spent hashing; hashed bytes over this is the hash throughput.',
      registers,
    });
    new Gauge({
      name: 'vouch_hash_throughput_bytes_per_second',
      help: 'Bytes hashed per second of hashing, over the agent’s life (0 before any).',
      registers,
      collect: async () => {
        const bytes = (await this.#hashedBytes.get()).values[0]?.value ?? 0;
        const seconds = (await this.#hashSeconds.get()).values[0]?.value ?? 0;
        const gauge = this.registry.getSingleMetric(
          'vouch_hash_throughput_bytes_per_second',
        ) as Gauge;
        gauge.set(seconds > 0 ? bytes / seconds : 0);
      },
    });
    this.#requests = new Counter({
      name: 'vouch_api_requests_total',
      help: 'API requests, by route, method and HTTP status code.',
      labelNames: ['route', 'method', 'code'],
      registers,
    });
    this.#requestSeconds = new Histogram({
      name: 'vouch_api_request_duration_seconds',
      help: 'API request duration, by route.',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60],
      registers,
    });
  }

  /** A sync from `mirror` (a URL, or a snapshot file's path) that took `seconds`. */
  recordSync(mirror: string, seconds: number, ok: boolean): void {
    this.#syncSeconds.observe({ mirror, result: ok ? 'ok' : 'failed' }, seconds);
    if (!ok) this.#syncFailures.inc({ mirror });
  }

  recordHashed(bytes: number, seconds: number): void {
    this.#hashedBytes.inc(bytes);
    this.#hashSeconds.inc(seconds);
  }

  /** `route`: the route's pattern (`/v1/verify`), or `other` for a path no route has. */
  recordRequest(route: string, method: string, code: number, seconds: number): void {
    this.#requests.inc({ route, method, code: String(code) });
    this.#requestSeconds.observe({ route }, seconds);
  }

  /** The Prometheus text exposition format, and its content type. */
  async text(): Promise<{ readonly body: string; readonly contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}

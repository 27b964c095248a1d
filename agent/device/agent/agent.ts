import { join } from 'node:path';
import type Docker from 'dockerode';
import type { Config } from '../../config';
import { dockerClient, inspectImage } from '../../content/docker';
import type { HashPool } from '../../content/pool';
import { parseImageId } from '../../core/digest';
import { asVouchError, VouchError } from '../../core/errors';
import { exitCodeOf } from '../../core/exit-codes';
import { makeDirectory } from '../../files';
import type { Logger } from '../../logger';
import { containerStopper, type DeepCheck, type ImageResult, verifyImage } from '../docker';
import { deviceStatus } from '../status';
import { chooseMirrors, noMirror } from '../store/mirrors';
import { supervisorFrom } from '../supervisor';
import type { SyncOptions } from '../sync/sync';
import {
  parseSubjectDigest,
  type Subject,
  type SubjectResult,
  type VerifyReport,
  verifySubjects,
} from '../verify';
import { type Api, readTokenFile, startApi } from './api';
import type { ApiBackend, VerifyRequest } from './backend';
import { CachingDigester, DigestCache } from './digest-cache';
import { AgentEvents } from './events';
import { type Health, HealthCell } from './health';
import { IdlePool } from './idle-pool';
import { ImagesService } from './images';
import { Inbox } from './inbox';
import { AgentMetrics } from './metrics';
import { MqttReporter } from './mqtt';
import { overallStatus } from './overall';
import { type RecentSubject, RecentSubjects } from './recent';
import { type SyncOutcome, SyncScheduler } from './scheduler';
import { TrustService } from './trust';

/**
 * `vouch agent`: the services of a device, composed. The trust state is held once
 * (trust.ts) and every answer — the API's, the Docker watcher's, re-evaluations after a
 * commit — is computed from it at the time of asking. What is expensive is kept
 * (digest-cache.ts: files' digests, images' deep checks), never a verdict. Each service
 * has its own health; one failing (no mirror, no dockerd, a bad inbox file) leaves the
 * others running.
 */

/** Settings the services are made with: SIGHUP does not change them. */
const restartOnly = ['stateDir', 'api', 'docker', 'snapshot', 'mqtt'] as const;

/** Files evaluated again at once after a commit (each may need hashing, if it changed). */
const reevaluationLanes = 8;

export interface AgentOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly env: NodeJS.ProcessEnv;
  readonly version: string;
  readonly clock?: () => number;
}

export class Agent implements ApiBackend {
  readonly events: AgentEvents;
  readonly metrics: AgentMetrics;
  #config: Config;
  readonly #logger: Logger;
  readonly #children = new Map<string, Logger>();
  readonly #trust: TrustService;
  readonly #scheduler: SyncScheduler;
  readonly #pool: IdlePool;
  #cache: DigestCache | undefined;
  #digester: CachingDigester | undefined;
  readonly #recent = new RecentSubjects();
  readonly #docker: Promise<Docker>;
  #images: ImagesService | undefined;
  #inbox: Inbox | undefined;
  #api: Api | undefined;
  #mqtt: MqttReporter | undefined;
  readonly #apiHealth: HealthCell;
  /** Docker's health while it has no watcher: not started yet, or it cannot start. */
  readonly #dockerHealth: HealthCell;
  readonly #notStarted: HealthCell;
  #starting: Promise<void> | undefined;
  #stopped = false;
  /** Re-evaluation after a commit: one at a time, the latest commit last. */
  #reevaluating: Promise<void> = Promise.resolve();

  constructor(private readonly options: AgentOptions) {
    const { config, logger, clock } = options;
    this.#config = config;
    this.#logger = logger;
    this.events = new AgentEvents(clock);
    const onHealth = (service: string) => this.#onHealth(service);
    this.#trust = new TrustService({
      stateDir: config.stateDir,
      maxAge: () => this.#config.sync.maxAge,
      logger: this.#child('trust'),
      ...(clock && { clock }),
      onChange: () => this.#reevaluate(),
      onHealth: onHealth('trust'),
    });
    this.#scheduler = new SyncScheduler({
      syncOptions: () => this.#syncOptions(),
      schedule: () => ({ cron: this.#config.sync.schedule, jitterMs: this.#config.sync.jitter }),
      needsSync: () => this.#trust.now().summary.stale,
      logger: this.#child('sync'),
      ...(clock && { clock }),
      onSync: (outcome) => this.#synced(outcome),
      onHealth: onHealth('sync'),
    });
    this.#pool = new IdlePool({ onHealth: onHealth('hashing') });
    this.#apiHealth = new HealthCell('failed', 'not started', clock, onHealth('api'));
    this.#dockerHealth = new HealthCell('failed', 'not started', clock, onHealth('docker'));
    this.#notStarted = new HealthCell('failed', 'not started', clock);
    this.#docker = dockerClient(options.env, config.docker.socket);
    // A malformed DOCKER_HOST is said when Docker is used (start, an image verified).
    this.#docker.catch(() => {});
    this.metrics = new AgentMetrics({
      verdictCounts: () => this.#verdictCounts(),
      lastSyncSuccess: () => this.#trust.lastSuccess,
      logSize: () => this.#trust.loaded.state?.checkpoint.checkpoint.size,
      ...(clock && { clock }),
    });
  }

  /** Each service's health, by name. */
  healths(): Record<string, Health> {
    return {
      trust: this.#trust.health,
      sync: this.#scheduler.health,
      hashing: this.#pool.health,
      docker: this.#images?.health ?? this.#dockerHealth.value,
      inbox: this.#inbox?.health ?? this.#notStarted.value,
      api: this.#apiHealth.value,
      ...(this.#mqtt && { mqtt: this.#mqtt.health }),
    };
  }

  /** Starts every service; resolves when the agent serves (systemd's READY=1). */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  /** Each step checks #stopped after it: a stop during the start starts nothing more. */
  async #start(): Promise<void> {
    const { config, logger } = this.options;
    // The inbox is made inside it, and a new device has none yet.
    await makeDirectory(config.stateDir);
    this.#cache = await DigestCache.load({
      stateDir: config.stateDir,
      logger: this.#child('cache'),
      ...(this.options.clock && { clock: this.options.clock }),
    });
    this.#digester = new CachingDigester(
      this.#cache,
      { use: (work) => this.#measured(work) },
      this.options.clock,
    );
    await this.#pool.start();
    await this.#trust.start();
    if (this.#stopped) return;
    await this.#startApi();
    if (this.#stopped) return;
    // Configured, or named by the Supervisor in a Home Assistant add-on.
    if (config.mqtt.url !== undefined || supervisorFrom(this.options.env)) {
      this.#mqtt = new MqttReporter({
        config: config.mqtt,
        version: this.options.version,
        events: this.events,
        status: () => this.status(),
        verdicts: () => this.verdicts(),
        sync: () => this.sync(),
        verifyAll: () => this.verifyAll(),
        board: this.#pool.board,
        logger: this.#child('mqtt'),
        env: this.options.env,
        onHealth: this.#onHealth('mqtt'),
        ...(this.options.clock && { clock: this.options.clock }),
      });
      await this.#mqtt.start();
    }
    if (this.#stopped) return;
    try {
      const docker = await this.#docker;
      this.#images = new ImagesService({
        docker,
        stop: containerStopper(docker, supervisorFrom(this.options.env)),
        stateDir: config.stateDir,
        policy: config.images,
        trust: () => this.#trust.current(),
        events: this.events,
        logger: this.#child('docker'),
        onHealth: this.#onHealth('docker'),
        ...(this.options.clock && { clock: this.options.clock }),
      });
      await this.#images.start();
    } catch (error) {
      // DOCKER_HOST malformed: the rest of the agent works without Docker.
      const { message } = asVouchError(error);
      logger.error({ error: message }, 'the Docker watcher cannot start');
      this.#dockerHealth.set('failed', `cannot start: ${message}`);
    }
    if (this.#stopped) return;
    await this.#scheduler.start();
    this.#inbox = new Inbox({
      dir: config.snapshot.inbox ?? join(config.stateDir, 'inbox'),
      stateDir: config.stateDir,
      rootPath: config.root,
      maxBytes: config.snapshot.maxBytes,
      maxBundleBytes: config.sync.maxBundleBytes,
      logger: this.#child('inbox'),
      onHealth: this.#onHealth('inbox'),
      onImported: (report, file, seconds) => {
        this.metrics.recordSync('inbox', seconds, true);
        this.#publishSync('inbox', file, report);
      },
      onRejected: (file, error, seconds) => {
        this.metrics.recordSync('inbox', seconds, false);
        this.#publishSync('inbox', file, error);
      },
    });
    await this.#inbox.start();
  }

  /** Stops serving, then every service; work under way is finished or abandoned safely. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#starting?.catch(() => {});
    await this.#api?.close();
    this.#apiHealth.set('failed', 'stopped');
    await Promise.all(
      [this.#inbox, this.#scheduler, this.#images, this.#mqtt, this.#trust, this.#pool].map(
        (service) =>
          service?.stop().catch((error: unknown) => {
            this.#logger.error({ error: asVouchError(error).message }, 'a service failed to stop');
          }),
      ),
    );
    await this.#cache?.flush();
  }

  /** A new configuration (SIGHUP): mirrors, schedule, scopes, log level take effect. */
  async reload(config: Config): Promise<void> {
    const before = this.#config;
    // What the services were started with stays until a restart, and the log says so.
    for (const key of restartOnly) {
      if (JSON.stringify(before[key]) === JSON.stringify(config[key])) continue;
      this.#logger.warn(`${key} changed: it takes effect when the agent restarts`);
    }
    this.#config = Object.assign(
      { ...config },
      Object.fromEntries(restartOnly.map((key) => [key, before[key]])),
    );
    await this.#scheduler.reschedule();
    this.#images?.watcher.setPolicy(config.images);
    // Said before the new level applies, so that it is seen at the old one.
    this.#logger.info({ logLevel: config.logLevel }, 'configuration reloaded');
    for (const logger of [this.#logger, ...this.#children.values()]) logger.level = config.logLevel;
  }

  // The API (backend.ts).

  async status(): Promise<unknown> {
    const { stateDir } = this.#config;
    const { state } = await this.#trust.current();
    const { history, fork: evidence } = await this.#trust.reports();
    const device = await deviceStatus(stateDir, this.#config.sync.maxAge, this.options.clock, {
      state,
      sync: history,
      fork: evidence,
    });
    const { fork, ...rest } = device;
    const services = this.healths();
    const images = (this.#images?.verdicts() ?? []).map(({ result }) => result);
    return {
      version: this.options.version,
      overall: overallStatus({ ...device, services }, images),
      ...rest,
      fork: fork !== undefined,
      ...(fork && { forkEvidence: fork }),
      lastSync: device.lastAttempt,
      services,
      hashing: this.#pool.plan() ?? null,
    };
  }

  async verify(request: VerifyRequest): Promise<unknown> {
    if ('image' in request) return this.#verifyImage(request.image, request.deep);
    const [kind, subject] =
      'path' in request
        ? (['file', { file: request.path }] as const)
        : (['digest', parseSubjectDigest(request.digest)] as const);
    const report = await this.#verifySubject(kind, subject);
    return { ...report, exitCode: exitCodeOf(report.results) };
  }

  async verdicts(): Promise<unknown> {
    return {
      images: (this.#images?.verdicts() ?? []).map(({ result, decision }) => ({
        ...result,
        decision,
      })),
      subjects: this.#recent.subjects.map(({ kind, result }) => ({ kind, ...result })),
    };
  }

  sync(): Promise<unknown> {
    return this.#scheduler.syncNow();
  }

  /** Every local image, file and digest checked again (MQTT's "Verify all now"). */
  async verifyAll(): Promise<void> {
    this.#reevaluate();
    await Promise.all([this.#images?.watcher.checkOnce(), this.#reevaluating]);
  }

  healthz(): { readonly ok: boolean; readonly services: Readonly<Record<string, Health>> } {
    const services = this.healths();
    return { ok: Object.values(services).every((health) => health.state !== 'failed'), services };
  }

  // Internals.

  /** A service's logger: one per service, so that SIGHUP can set their level (pino children keep theirs). */
  #child(service: string): Logger {
    let child = this.#children.get(service);
    if (!child) {
      child = this.#logger.child({ service });
      this.#children.set(service, child);
    }
    return child;
  }

  /** A service's health changed: logged, and told to listeners. */
  #onHealth(service: string) {
    return (health: Health) => {
      this.#logger[health.state === 'ok' ? 'info' : 'warn'](
        { service, ...health },
        `${service}: ${health.state}: ${health.reason}`,
      );
      this.events.publish({ type: 'health', service, health });
    };
  }

  async #syncOptions(): Promise<SyncOptions> {
    const config = this.#config;
    const choice = await chooseMirrors(config.stateDir, undefined, config.mirrors);
    if (choice.mirrors.length === 0) throw noMirror(config.stateDir, choice.damaged);
    return {
      stateDir: config.stateDir,
      mirrors: choice.mirrors,
      rootPath: config.root,
      timeoutMs: config.sync.timeout,
      connectTimeoutMs: config.sync.connectTimeout,
      maxBundleBytes: config.sync.maxBundleBytes,
      logger: this.#child('sync'),
      ...(this.options.clock && { clock: this.options.clock }),
    };
  }

  async #startApi(): Promise<void> {
    const { api } = this.#config;
    try {
      this.#api = await startApi({
        socket: api.socket,
        ...(api.listen && { listen: api.listen }),
        ...(api.tokenFile && { token: await readTokenFile(api.tokenFile) }),
        ...(api.ingress && { ingress: api.ingress }),
        backend: this,
        logger: this.#child('api'),
        version: this.options.version,
      });
      this.#apiHealth.set(
        'ok',
        `listening on ${[api.socket, api.listen, api.ingress && `ingress port ${api.ingress.port}`].filter(Boolean).join(' and ')}`,
      );
    } catch (error) {
      const failure = asVouchError(error);
      this.#logger.error({ code: failure.code }, `the API cannot start: ${failure.message}`);
      this.#apiHealth.set('failed', failure.message);
    }
  }

  /** A file or digest verified from the held state, recorded for re-evaluation. */
  async #verifySubject(kind: 'file' | 'digest', subject: Subject): Promise<VerifyReport> {
    for (;;) {
      const loaded = await this.#trust.current();
      const report = await verifySubjects([subject], {
        stateDir: this.#config.stateDir,
        maxAge: this.#config.sync.maxAge,
        trust: this.#trust.now(),
        ...(this.#digester && { digester: this.#digester }),
      });
      // A commit came while the file was hashed: answer (and record) from the new state,
      // the digest cached by now, so that no verdict of the old one outlives it.
      if (this.#trust.loaded !== loaded) continue;
      for (const result of report.results) this.#record(kind, result);
      return report;
    }
  }

  /** Keeps a result for re-evaluation; a changed status is news. */
  #record(kind: RecentSubject['kind'], result: SubjectResult): void {
    const previous = this.#recent.record(kind, result);
    if (previous && previous.status !== result.status) {
      this.events.publish({
        type: 'verdict',
        subject: result.subject,
        kind,
        name: result.name,
        status: result.status,
        previous: previous.status,
        reason: result.error?.message ?? result.reason,
      });
    }
  }

  async #verifyImage(ref: string, deep: boolean): Promise<unknown> {
    await this.#trust.current();
    const trust = this.#trust.now();
    const docker = await this.#docker;
    const deepResults = this.#deepResults();
    const check = (pool?: HashPool) =>
      verifyImage(docker, trust.state, ref, {
        policy: this.#config.images,
        now: trust.now,
        ...(deep && { deep: true, deepResults }),
        ...(pool && { pool }),
        ...(trust.error && { stateError: trust.error }),
      });
    // A deep check hashes the export on the pool, unless it matched before (the digest
    // cache): then no worker needs to start.
    const id = deep
      ? await inspectImage(docker, parseImageId(ref)?.ref ?? ref).then(
          (image) => image.Id,
          () => undefined,
        )
      : undefined;
    const hashes = deep && (id === undefined || deepResults.get(id) === undefined);
    const result: ImageResult = hashes ? await this.#pool.use(check) : await check();
    return { ...trust.summary, results: [result], exitCode: exitCodeOf([result]) };
  }

  /** After a commit: every recorded subject's verdict again, from the new index. */
  #reevaluate(): void {
    this.#reevaluating = this.#reevaluating.then(async () => {
      const again = async ({ kind, result }: RecentSubject) => {
        const subject =
          kind === 'file' ? { file: result.subject } : parseSubjectDigest(result.subject);
        await this.#verifySubject(kind, subject).catch((error: unknown) => {
          this.#logger.warn(
            { subject: result.subject, error: asVouchError(error).message },
            'cannot check again',
          );
        });
      };
      const subjects = this.#recent.subjects;
      // Digests need no hashing: all of them first. Files a few at a time, so that one that
      // changed since (and is hashed again) does not hold back those answered from the cache.
      for (const subject of subjects) if (subject.kind === 'digest') await again(subject);
      const files = subjects.filter((subject) => subject.kind === 'file');
      const lanes = Array.from({ length: reevaluationLanes }, async () => {
        for (let next = files.shift(); next; next = files.shift()) await again(next);
      });
      await Promise.all(lanes);
    });
    // Each subject's failure is logged above; this keeps the chain going whatever happens.
    this.#reevaluating = this.#reevaluating.catch(() => {});
  }

  /** A file hashed on the pool, its bytes and time counted in the metrics. */
  async #measured<T>(work: (pool: HashPool) => Promise<T>): Promise<T> {
    return this.#pool.use(async (pool) => {
      const started = performance.now();
      const digest = await work(pool);
      const size = (digest as { size?: unknown }).size;
      if (typeof size === 'number') {
        this.metrics.recordHashed(size, (performance.now() - started) / 1000);
      }
      return digest;
    });
  }

  /** A sync ended: its metrics by mirror, and an event. */
  #synced(outcome: SyncOutcome): void {
    for (const mirror of outcome.ok ? outcome.report.mirrors : outcome.mirrors) {
      if (!mirror.ok) this.metrics.recordSync(mirror.url, outcome.seconds, false);
    }
    if (outcome.ok) this.metrics.recordSync(outcome.report.source, outcome.seconds, true);
    this.#publishSync(
      'mirror',
      outcome.ok ? outcome.report.source : null,
      outcome.ok ? outcome.report : outcome.error,
    );
  }

  /** A sync or an inbox import: what it brought, or why it failed. */
  #publishSync(
    via: 'mirror' | 'inbox',
    source: string | null,
    outcome: { readonly size: number; readonly added: number } | VouchError,
  ): void {
    const failed = outcome instanceof VouchError;
    this.events.publish({
      type: 'sync',
      via,
      ok: !failed,
      source,
      size: failed ? null : outcome.size,
      added: failed ? null : outcome.added,
      ...(failed && { error: { code: outcome.code, message: outcome.message } }),
    });
  }

  /** The deep checks that matched, kept in the digest cache by image ID. */
  #deepResults() {
    const cache = this.#cache;
    return {
      get: (id: string) => {
        const kept = cache?.deepResult(id)?.result as DeepCheck | undefined;
        return kept?.matches === true && Array.isArray(kept.layers) ? kept : undefined;
      },
      set: (id: string, check: DeepCheck) => {
        cache?.putDeepResult(id, check);
      },
    };
  }

  #verdictCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    const statuses = [
      ...(this.#images?.verdicts() ?? []).map((verdict) => verdict.result.status),
      ...this.#recent.subjects.map(({ result }) => result.status),
    ];
    for (const status of statuses) {
      const key = status ?? 'COULD_NOT_CHECK';
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }
}

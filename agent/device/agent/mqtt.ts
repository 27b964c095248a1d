import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { Config } from '../../config';
import { asVouchError, VouchError } from '../../core/errors';
import { readExistingFile, readFileCapped } from '../../files';
import type { Logger } from '../../logger';
import { type Supervisor, supervisorFrom, supervisorGet } from '../supervisor';
import type { AgentEvents, Stamped } from './events';
import { type Health, HealthCell, type Service } from './health';
import {
  type AgentView,
  discoveryPayload,
  haAttributes,
  haEvent,
  haState,
  type ImageInput,
  type MqttTopics,
  mqttTopics,
  pressPayload,
  type StatusInput,
  verdictPayloads,
} from './mqtt-discovery';

/**
 * The agent's MQTT reporter: Home Assistant discovery, states and events, and plain topics
 * for any other consumer (mqtt-discovery.ts builds the payloads). Publishing never waits
 * on the broker: while it is away, what would be sent is kept, bounded — the latest
 * payload of each retained topic, the newest events — and sent on reconnect, along with
 * everything retained (a broker without persistence has lost it). MQTT.js's own reconnect
 * retries at a fixed interval and its offline queue has no bound: both are off here.
 * Commands only ever start a sync or a verification (docs/agent.md "MQTT").
 */

export interface MqttReporterOptions {
  readonly config: Config['mqtt'];
  readonly version: string;
  readonly events: AgentEvents;
  /** The agent's `/v1/status` and `/v1/verdicts` answers. */
  readonly status: () => Promise<unknown>;
  readonly verdicts: () => Promise<unknown>;
  /** What the buttons do. */
  readonly sync: () => Promise<unknown>;
  readonly verifyAll: () => Promise<unknown>;
  readonly logger: Logger;
  /** SUPERVISOR_TOKEN: in a Home Assistant add-on, the broker comes from the Supervisor (supervisor.ts). */
  readonly env?: NodeJS.ProcessEnv;
  readonly machineIdPath?: string;
  /** The board, for the device model (hw/; null: not known). */
  readonly board: string | null;
  readonly clock?: () => number;
  readonly onHealth?: (health: Health) => void;
  /** Reconnect delays: the first, doubled up to the cap (tests shorten them). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
}

const defaultBackoff = { initialMs: 1_000, maxMs: 300_000 };
/** One press per button this often; more are logged and dropped. */
const commandIntervalMs = 10_000;
/** Checkpoint age and freshness change with time alone: states are looked at this often. */
const refreshMs = 60_000;
/** A button sends `PRESS`; anything near this size is not a button. */
const maxCommandBytes = 256;
/** Events kept while the broker is away; older ones are dropped first. */
const maxQueuedEvents = 100;
const maxSecretFileBytes = 64 * 1024;
/** Discovery payloads of ours remembered, to know their echoes. */
const maxMadeDiscovery = 8;
const qos = 1;

interface Outgoing {
  readonly payload: string;
  readonly retain: boolean;
}

interface Connection {
  readonly url: string;
  readonly options: IClientOptions;
}

export class MqttReporter implements Service {
  readonly name = 'mqtt';
  readonly #health: HealthCell;
  #library: typeof import('mqtt') | undefined;
  #client: MqttClient | undefined;
  #connection: Connection | undefined;
  #topics: MqttTopics | undefined;
  #nodeId = '';
  #stopped = false;
  #attempt = 0;
  #retry: NodeJS.Timeout | undefined;
  #ticker: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  /** What the broker holds from us (retained) or was sent, by topic: unchanged is not sent again. */
  readonly #sent = new Map<string, string>();
  /** Retained payloads waiting for a connection, the latest of each topic. */
  readonly #pending = new Map<string, Outgoing>();
  /** Events waiting for a connection, bounded. */
  readonly #pendingEvents: [string, string][] = [];
  /** Images whose verdict the broker holds (retained), to clear those that are gone. */
  readonly #verdictIds = new Set<string>();
  /**
   * The discovery payload: made at start, and again when the broker holds an earlier one
   * (its components gone since are removed).
   */
  #discovery = '';
  /** Every discovery payload made here: the broker echoes them back, and they are no news. */
  readonly #madeDiscovery = new Set<string>();
  readonly #lastCommand = new Map<string, number>();
  #refreshing: Promise<void> | undefined;
  #refreshAgain = false;

  constructor(private readonly options: MqttReporterOptions) {
    this.#health = new HealthCell('degraded', 'not connected', options.clock, options.onHealth);
  }

  get health(): Health {
    return this.#health.value;
  }

  /** The node id in topics and unique IDs, once started. */
  get nodeId(): string {
    return this.#nodeId;
  }

  /** Resolves once configured; the connection is made (and made again) in the background. */
  async start(): Promise<void> {
    this.#stopped = false;
    const { config } = this.options;
    try {
      this.#connection = await this.#resolveConnection();
      this.#nodeId = config.nodeId ?? (await this.#defaultNodeId());
    } catch (error) {
      const { message } = asVouchError(error);
      this.options.logger.error({ error: message }, `MQTT cannot start: ${message}`);
      // A configuration that cannot be used fails; an add-on without the Supervisor's MQTT
      // service is only told.
      this.#health.set(
        config.url === undefined ? 'degraded' : 'failed',
        `cannot start: ${message}`,
      );
      return;
    }
    this.#topics = mqttTopics({ ...config, nodeId: this.#nodeId });
    this.#discovery = this.#discoveryPayload(undefined);
    // Loaded only by an agent that reports over MQTT (a bundle of its own: scripts/build.ts);
    // before anything is subscribed or scheduled, so that a failure leaves nothing running.
    this.#library = await import('mqtt');
    this.#unsubscribe = this.options.events.subscribe((event) => this.#onEvent(event));
    this.#ticker = setInterval(() => this.#refresh(), refreshMs).unref();
    this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    clearInterval(this.#ticker);
    this.#unsubscribe?.();
    await this.#refreshing;
    const client = this.#client;
    this.#client = undefined;
    if (client?.connected && this.#topics) {
      // A clean disconnect sends no last will: say it ourselves.
      await client
        .publishAsync(this.#topics.availability, 'offline', { qos, retain: true })
        .catch(() => {});
    }
    await client?.endAsync().catch(() => {});
    this.#health.set('failed', 'stopped');
  }

  #discoveryPayload(previous: string | undefined): string {
    const payload = discoveryPayload({
      ...this.options.config,
      nodeId: this.#nodeId,
      version: this.options.version,
      board: this.options.board,
      ...(previous !== undefined && { previous }),
    });
    this.#madeDiscovery.add(payload);
    // Bounded: anyone may publish there, and each payload of another's makes one of ours.
    for (const made of this.#madeDiscovery) {
      if (this.#madeDiscovery.size <= maxMadeDiscovery) break;
      this.#madeDiscovery.delete(made);
    }
    return payload;
  }

  /** States again from the agent; called on its events and every refreshMs. */
  #refresh(): void {
    if (this.#refreshing) {
      this.#refreshAgain = true;
      return;
    }
    this.#refreshing = this.#publishAll()
      .catch((error: unknown) => {
        this.options.logger.warn(
          { error: asVouchError(error).message },
          'MQTT: cannot read the state',
        );
      })
      .finally(() => {
        this.#refreshing = undefined;
        if (this.#refreshAgain && !this.#stopped) {
          this.#refreshAgain = false;
          this.#refresh();
        }
      });
  }

  async #publishAll(): Promise<void> {
    const topics = this.#topics;
    if (!topics || this.#stopped) return;
    const [status, verdicts] = await Promise.all([this.options.status(), this.options.verdicts()]);
    const { images = [] } = verdicts as { images?: ImageInput[] };
    const view: AgentView = { status: status as StatusInput, images, board: this.options.board };
    this.#publish(topics.discovery, this.#discovery);
    this.#publish(topics.availability, 'online');
    this.#publish(topics.state, JSON.stringify(status));
    this.#publish(topics.haAttributes, haAttributes(view));
    this.#publish(topics.haState, haState(view));
    const current = verdictPayloads(images);
    for (const id of this.#verdictIds) {
      if (!current.has(id)) {
        // An empty retained message clears the topic (MQTT 3.1.1 §3.3.1.3).
        this.#publish(topics.verdict(id), '');
        this.#verdictIds.delete(id);
      }
    }
    for (const [id, payload] of current) {
      this.#verdictIds.add(id);
      this.#publish(topics.verdict(id), payload);
    }
  }

  #onEvent(event: Stamped): void {
    const topics = this.#topics;
    if (!topics) return;
    this.#send(topics.events, JSON.stringify(event));
    const entity = haEvent(event);
    if (entity !== undefined) this.#send(topics.haEvent, entity);
    this.#refresh();
  }

  /** A retained payload, sent when it changed; kept (the latest wins) while offline. */
  #publish(topic: string, payload: string): void {
    if (this.#sent.get(topic) === payload && !this.#pending.has(topic)) return;
    const client = this.#client;
    if (!client?.connected) {
      this.#pending.set(topic, { payload, retain: true });
      return;
    }
    this.#pending.delete(topic);
    this.#sent.set(topic, payload);
    this.#emit(client, topic, payload, true);
  }

  /** A message not retained (an event): sent now, or queued while offline, the oldest dropped first. */
  #send(topic: string, payload: string): void {
    const client = this.#client;
    if (client?.connected) {
      this.#emit(client, topic, payload, false);
      return;
    }
    this.#pendingEvents.push([topic, payload]);
    if (this.#pendingEvents.length > maxQueuedEvents) this.#pendingEvents.shift();
  }

  /** Fire and forget: a failure is the connection's, which is made again. */
  #emit(client: MqttClient, topic: string, payload: string, retain: boolean): void {
    client.publish(topic, payload, { qos, retain }, (error) => {
      if (error) {
        if (retain) this.#sent.delete(topic);
        this.options.logger.debug({ topic, error: error.message }, 'MQTT: not published');
      }
    });
  }

  #connect(): void {
    const connection = this.#connection;
    const topics = this.#topics;
    const connect = this.#library?.connect;
    if (!connection || !topics || !connect || this.#stopped) return;
    const client = connect(connection.url, {
      ...connection.options,
      clientId: `vouch-${this.#nodeId}`,
      // Our own backoff below; MQTT.js would retry every second forever.
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      queueQoSZero: false,
      will: { topic: topics.availability, payload: Buffer.from('offline'), qos, retain: true },
    });
    this.#client = client;
    let failure = 'connection closed';
    client.on('error', (error) => {
      failure = error.message;
    });
    client.on('connect', () => this.#connected(client));
    client.on('message', (topic, payload, packet) =>
      this.#message(topic, payload, packet.retain ?? false),
    );
    client.on('close', () => {
      if (this.#client !== client || this.#stopped) return;
      this.#client = undefined;
      client.end(true);
      const delay = this.#nextDelay();
      this.options.logger.warn(
        { retryInMs: delay, error: failure },
        `MQTT: disconnected (${failure}); trying again in ${Math.round(delay / 1000)} s`,
      );
      this.#health.set('degraded', `not connected: ${failure}; next try in ${delay} ms`);
      this.#retry = setTimeout(() => this.#connect(), delay);
    });
  }

  /** Exponential backoff with full jitter (half to all of the doubled delay), capped. */
  #nextDelay(): number {
    const { initialMs, maxMs } = this.options.backoff ?? defaultBackoff;
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt += 1;
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  #connected(client: MqttClient): void {
    const topics = this.#topics;
    if (!topics) return;
    this.#attempt = 0;
    this.#health.set('ok', `connected to ${redacted(this.#connection?.url ?? '')}`);
    this.options.logger.info({ nodeId: this.#nodeId }, 'MQTT: connected');
    client
      .subscribeAsync(
        [
          topics.haStatus,
          topics.syncCommand,
          topics.verifyCommand,
          topics.discovery,
          `${topics.verdicts}/+`,
        ],
        { qos },
      )
      .catch((error: Error) => {
        this.options.logger.warn({ error: error.message }, 'MQTT: cannot subscribe');
      });
    // A new session: the broker may have lost what it held (no persistence, a restart).
    // What waited goes first (a verdict emptied while offline is in no refresh).
    this.#sent.clear();
    for (const [topic, { payload }] of this.#pending) {
      this.#sent.set(topic, payload);
      this.#emit(client, topic, payload, true);
    }
    this.#pending.clear();
    for (const [topic, payload] of this.#pendingEvents.splice(0)) {
      this.#emit(client, topic, payload, false);
    }
    this.#refresh();
  }

  #message(topic: string, payload: Buffer, retained: boolean): void {
    const topics = this.#topics;
    if (!topics) return;
    const text = payload.toString('utf8');
    if (topic === topics.haStatus) {
      // HA's birth message: it (re)started and forgot what was discovered.
      if (text === 'online') {
        this.#sent.clear();
        this.#refresh();
      }
    } else if (topic === topics.syncCommand || topic === topics.verifyCommand) {
      this.#command(topic === topics.syncCommand ? 'sync' : 'verify', payload, retained);
    } else if (topic === topics.discovery) {
      // Another's (an earlier run's, an earlier version's): its components gone now are removed.
      if (text !== '' && !this.#madeDiscovery.has(text)) {
        this.#discovery = this.#discoveryPayload(text);
        this.#sent.delete(topic);
        this.#refresh();
      }
    } else if (topic.startsWith(`${topics.verdicts}/`) && text !== '') {
      const id = topic.slice(topics.verdicts.length + 1);
      if (!this.#verdictIds.has(id)) {
        this.#verdictIds.add(id);
        this.#refresh();
      }
    }
  }

  /** A button press: validated, rate-limited, and it only starts a sync or a verification. */
  #command(button: 'sync' | 'verify', payload: Buffer, retained: boolean): void {
    const { logger } = this.options;
    const problem =
      payload.length > maxCommandBytes
        ? `larger than ${maxCommandBytes} bytes`
        : retained
          ? 'retained (a command is sent once, not kept)'
          : payload.toString('utf8') !== pressPayload
            ? `not ${pressPayload}`
            : undefined;
    if (problem !== undefined) {
      logger.warn({ button, bytes: payload.length }, `MQTT: command ignored: ${problem}`);
      return;
    }
    const now = (this.options.clock ?? Date.now)();
    const last = this.#lastCommand.get(button);
    if (last !== undefined && now - last < commandIntervalMs) {
      logger.warn({ button }, `MQTT: command ignored: one per ${commandIntervalMs / 1000} s`);
      return;
    }
    this.#lastCommand.set(button, now);
    logger.info({ button }, `MQTT: ${button} requested`);
    const run = button === 'sync' ? this.options.sync : this.options.verifyAll;
    run()
      .catch((error: unknown) => {
        logger.warn({ button, error: asVouchError(error).message }, `MQTT: ${button} failed`);
      })
      .finally(() => this.#refresh());
  }

  /** mqtt.url, else in a Home Assistant add-on the Supervisor's broker. */
  async #resolveConnection(): Promise<Connection> {
    const { config } = this.options;
    const file = async (path: string | undefined, what: string) =>
      path === undefined
        ? undefined
        : Buffer.from(await readExistingFile(path, maxSecretFileBytes, what, 'CONFIG_INVALID'));
    const [password, ca, cert, key] = await Promise.all([
      file(config.passwordFile, 'MQTT password file'),
      file(config.ca, 'MQTT CA file'),
      file(config.cert, 'MQTT certificate file'),
      file(config.key, 'MQTT key file'),
    ]);
    if (config.url !== undefined) {
      return {
        url: config.url,
        options: {
          ...(config.username !== undefined && { username: config.username }),
          ...(password && { password: password.toString('utf8').trim() }),
          ...(ca && { ca }),
          ...(cert && { cert }),
          ...(key && { key }),
        },
      };
    }
    return supervisorBroker(supervisorFrom(this.options.env ?? {}));
  }

  /** A hash of the machine ID: stable across restarts, and not the ID itself (it is a secret, machine-id(5)). */
  async #defaultNodeId(): Promise<string> {
    const path = this.options.machineIdPath ?? '/etc/machine-id';
    const bytes = await readFileCapped(path, 1024, 'machine ID').catch(() => undefined);
    const source = bytes ? Buffer.from(bytes).toString('utf8').trim() : '';
    if (source === '')
      this.options.logger.warn(`MQTT: no ${path}: the node id is the host name's hash`);
    return createHash('sha256')
      .update(`vouch mqtt node\n${source || hostname()}`)
      .digest('hex')
      .slice(0, 16);
  }
}

/**
 * The Supervisor's MQTT service (https://developers.home-assistant.io/docs/add-ons/communication#services-api):
 * `{"data": {"host", "port", "ssl", "username", "password"}}`, for an add-on with `services: mqtt:want`.
 */
export async function supervisorBroker(supervisor: Supervisor | undefined): Promise<Connection> {
  if (!supervisor)
    throw new VouchError('CONFIG_INVALID', 'mqtt.url is not set, and there is no Supervisor');
  const { host, port, ssl, username, password } = await supervisorGet(
    supervisor,
    '/services/mqtt',
    'MQTT broker',
  );
  if (typeof host !== 'string' || typeof port !== 'number') {
    throw new VouchError('UNAVAILABLE', 'the Supervisor names no MQTT broker: no host and port');
  }
  return {
    url: `${ssl === true ? 'mqtts' : 'mqtt'}://${host}:${port}`,
    options: {
      ...(typeof username === 'string' && { username }),
      ...(typeof password === 'string' && { password }),
    },
  };
}

/** A URL without its credentials, for logs and the health. */
function redacted(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//');
}

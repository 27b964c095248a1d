import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AgentEvents } from '../../../agent/device/agent/events';
import { MqttReporter, supervisorBroker } from '../../../agent/device/agent/mqtt';
import type { ImageInput } from '../../../agent/device/agent/mqtt-discovery';
import { overallStatus } from '../../../agent/device/agent/overall';
import { type Mosquitto, observe, startMosquitto } from '../../helpers/mosquitto';
import { describeWith } from '../../helpers/services';
import { startAgent, stopAgent } from './harness';

function logged() {
  const lines: { msg: string }[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line)) },
  );
  return { logger, lines };
}

const trustedImage: ImageInput = {
  id: `sha256:${'a'.repeat(64)}`,
  names: ['example/app:1'],
  status: 'TRUSTED',
  reason: 'signed',
};
const ok = { state: 'ok', reason: 'fine', since: '2026-01-01T00:00:00Z' } as const;

/** The reporter with stand-in functions for the agent's, counting the buttons' actions. */
function reporter(
  url: string,
  nodeId: string,
  extra: Partial<ConstructorParameters<typeof MqttReporter>[0]> = {},
) {
  const events = new AgentEvents();
  const counts = { sync: 0, verify: 0 };
  const state = { images: [trustedImage] as ImageInput[], size: 7 };
  const { logger, lines } = logged();
  const service = new MqttReporter({
    config: { url, discoveryPrefix: 'homeassistant', baseTopic: 'vouch', nodeId },
    version: '9.9.9',
    events,
    // The overall status as the agent derives it (overall.ts), from the images here.
    status: async () => ({
      overall: overallStatus(
        { origin: 'log', stale: false, services: {} },
        state.images.map((image) => ({ ...image, ref: '', requirement: { required: false } })),
      ),
      version: '9.9.9',
      size: state.size,
      checkpointAgeSeconds: 60,
      stale: false,
      fork: false,
      lastSuccess: { at: Date.UTC(2026, 0, 1) },
      services: { trust: ok, sync: ok },
      hashing: { workers: 2 },
    }),
    verdicts: async () => ({ images: state.images, subjects: [] }),
    sync: async () => {
      counts.sync += 1;
      state.size += 1;
    },
    verifyAll: async () => {
      counts.verify += 1;
    },
    logger,
    board: 'Test Board',
    backoff: { initialMs: 100, maxMs: 400 },
    ...extra,
  });
  return { service, events, counts, state, lines };
}

/** Each test its own node id: the broker keeps what earlier ones retained. */
let nodes = 0;
const topicsOf = (node: string) => ({
  discovery: `homeassistant/device/${node}/config`,
  availability: `vouch/${node}/availability`,
  state: `vouch/${node}/state`,
  haState: `vouch/${node}/ha/state`,
  haEvent: `vouch/${node}/ha/event`,
  events: `vouch/${node}/events`,
  verdict: `vouch/${node}/verdicts/${'a'.repeat(64)}`,
  sync: `vouch/${node}/command/sync`,
  verify: `vouch/${node}/command/verify`,
});

describeWith('mqtt', 'the MQTT reporter', () => {
  let broker: Mosquitto;
  const cleanup: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });
  afterAll(async () => {
    await broker.stop();
  });

  async function started() {
    nodes += 1;
    const node = `node${nodes}`;
    const watch = await observe(broker.url);
    const parts = reporter(broker.url, node);
    cleanup.push(() => watch.client.endAsync(true));
    cleanup.push(() => parts.service.stop());
    await parts.service.start();
    const topic = topicsOf(node);
    await watch.until(() => watch.last(topic.haState));
    return { ...parts, watch, topic };
  }

  it('publishes discovery, availability, states and verdicts: retained, QoS 1', async () => {
    const { service, watch, topic } = await started();
    expect(service.health.state).toBe('ok');
    const discovery = watch.last(topic.discovery);
    expect(discovery).toMatchObject({ retain: true, qos: 1 });
    const payload = JSON.parse(discovery?.payload ?? '');
    expect(payload.dev).toEqual({
      identifiers: ['vouch_node1'],
      name: 'vouch',
      manufacturer: 'vouch',
      model: 'Test Board',
      sw_version: '9.9.9',
    });
    expect(watch.last(topic.availability)).toEqual({
      topic: topic.availability,
      payload: 'online',
      retain: true,
      qos: 1,
    });
    expect(watch.last(topic.haState)).toEqual({
      topic: topic.haState,
      payload:
        '{"status":"ok","problem":"OFF","untrusted":0,"last_sync":"2026-01-01T00:00:00Z",' +
        '"log_size":7,"checkpoint_age":60,"workers":2,"board":"Test Board"}',
      retain: true,
      qos: 1,
    });
    expect(JSON.parse(watch.last(topic.state)?.payload ?? '')).toMatchObject({ size: 7 });
    expect(watch.last(topic.verdict)).toEqual({
      topic: topic.verdict,
      payload: `{"id":"${trustedImage.id}","names":["example/app:1"],"status":"TRUSTED","reason":"signed"}`,
      retain: true,
      qos: 1,
    });
  });

  it('sends events unretained, and states again only when they changed', async () => {
    const { events, watch, state, topic } = await started();
    const before = watch.received.length;
    events.publish({ type: 'health', service: 'docker', health: { ...ok, state: 'degraded' } });
    await watch.until(() => watch.on(topic.events).length === 1);
    expect(watch.last(topic.events)).toMatchObject({ retain: false, qos: 1 });
    expect(JSON.parse(watch.last(topic.events)?.payload ?? '')).toMatchObject({
      type: 'health',
      service: 'docker',
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(watch.received.slice(before).map((message) => message.topic)).toEqual([topic.events]);
    // The image is gone: its retained verdict is cleared.
    state.images = [];
    events.publish({ type: 'health', service: 'docker', health: ok });
    await watch.until(() => watch.last(topic.verdict)?.payload === '');
    expect(watch.last(topic.verdict)).toMatchObject({ retain: true, qos: 1 });
    expect(watch.on(topic.discovery)).toHaveLength(1);
  });

  it('republishes everything when Home Assistant says it is online', async () => {
    const { watch, topic } = await started();
    expect(watch.on(topic.discovery)).toHaveLength(1);
    await watch.client.publishAsync('homeassistant/status', 'online', { qos: 1 });
    await watch.until(() => watch.on(topic.discovery).length === 2);
    await watch.until(() => watch.on(topic.haState).length === 2);
    expect(watch.on(topic.availability).length).toBe(2);
  });

  it('runs each button once per interval; a malformed or oversized command is logged and ignored', async () => {
    const { counts, watch, lines, topic } = await started();
    await watch.client.publishAsync(topic.sync, 'PRESS', { qos: 1 });
    await watch.until(() => counts.sync === 1);
    // The sync's result is published: the log grew.
    await watch.until(() => JSON.parse(watch.last(topic.haState)?.payload ?? '{}').log_size === 8);
    await watch.client.publishAsync(topic.verify, 'PRESS', { qos: 1 });
    await watch.until(() => counts.verify === 1);
    await watch.client.publishAsync(topic.sync, 'PRESS', { qos: 1 });
    await watch.client.publishAsync(topic.verify, 'nonsense', { qos: 1 });
    await watch.client.publishAsync(topic.verify, 'P'.repeat(300), { qos: 1 });
    await watch.until(
      () => lines.filter((line) => line.msg.includes('command ignored')).length === 3,
    );
    expect(lines.map((line) => line.msg).filter((msg) => msg.includes('command ignored'))).toEqual([
      'MQTT: command ignored: one per 10 s',
      'MQTT: command ignored: not PRESS',
      'MQTT: command ignored: larger than 256 bytes',
    ]);
    expect(counts).toEqual({ sync: 1, verify: 1 });
  });

  it('a revocation fires the event entity and turns the status to violation', async () => {
    const { events, state, watch, topic } = await started();
    state.images = [{ ...trustedImage, status: 'REVOKED', reason: 'revoked by the publisher' }];
    events.publish({
      type: 'verdict',
      subject: trustedImage.id ?? '',
      kind: 'image',
      name: 'example/app:1',
      status: 'REVOKED',
      previous: 'TRUSTED',
      reason: 'revoked by the publisher',
    });
    await watch.until(() => watch.last(topic.haEvent));
    const event = watch.last(topic.haEvent);
    expect(event).toMatchObject({ retain: false, qos: 1 });
    expect(JSON.parse(event?.payload ?? '')).toMatchObject({
      event_type: 'revoked',
      subject: trustedImage.id,
      name: 'example/app:1',
      reason: 'revoked by the publisher',
    });
    await watch.until(
      () => JSON.parse(watch.last(topic.haState)?.payload ?? '{}').status === 'violation',
    );
    expect(JSON.parse(watch.last(topic.haState)?.payload ?? '')).toMatchObject({
      problem: 'ON',
      untrusted: 1,
    });
  });

  it('keeps what it would send while the broker is away, bounded, the latest state winning', async () => {
    nodes += 1;
    const node = `node${nodes}`;
    const topic = topicsOf(node);
    // The reporter's link alone goes down: the test's own client stays connected throughout.
    const link = await relay(Number(new URL(broker.url).port));
    const watch = await observe(broker.url);
    const { service, events, state } = reporter(link.url, node);
    cleanup.push(() => link.close());
    cleanup.push(() => watch.client.endAsync(true));
    cleanup.push(() => service.stop());
    await service.start();
    await watch.until(() => watch.last(topic.haState));
    link.cut();
    await vi.waitFor(() => expect(service.health.state).toBe('degraded'), { timeout: 10_000 });
    // The broker saw the connection die: its last will.
    await watch.until(() => watch.last(topic.availability)?.payload === 'offline');
    const cutAt = watch.received.length;
    for (let i = 0; i < 150; i++) {
      state.size = 100 + i;
      events.publish({
        type: 'health',
        service: 'docker',
        health: { ...ok, reason: `event ${i}` },
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(watch.received.slice(cutAt).map((message) => message.topic)).toEqual([]);
    link.restore();
    await watch.until(() => watch.last(topic.availability)?.payload === 'online', 15_000);
    await watch.until(
      () => watch.received.slice(cutAt).filter((m) => m.topic === topic.events).length === 100,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = watch.received.slice(cutAt);
    // The newest 100 events, in order; the 50 oldest dropped.
    expect(
      after
        .filter((message) => message.topic === topic.events)
        .map((message) => JSON.parse(message.payload).health.reason),
    ).toEqual(Array.from({ length: 100 }, (_, i) => `event ${i + 50}`));
    // One state, the latest: not the 150 it went through.
    const states = after.filter((message) => message.topic === topic.haState);
    expect(states).toHaveLength(1);
    expect(JSON.parse(states[0]?.payload ?? '')).toMatchObject({ log_size: 249 });
    expect(states[0]).toMatchObject({ retain: true, qos: 1 });
  });

  it('ignores a command the broker held (retained): a press is sent once, not kept', async () => {
    nodes += 1;
    const node = `node${nodes}`;
    const topic = topicsOf(node);
    const watch = await observe(broker.url);
    cleanup.push(async () => {
      await watch.client.publishAsync(topic.sync, '', { qos: 1, retain: true });
      await watch.client.endAsync(true);
    });
    await watch.client.publishAsync(topic.sync, 'PRESS', { qos: 1, retain: true });
    const { service, counts, lines } = reporter(broker.url, node);
    cleanup.push(() => service.stop());
    await service.start();
    await watch.until(() =>
      lines.some((line) => line.msg.startsWith('MQTT: command ignored: retained')),
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(counts).toEqual({ sync: 0, verify: 0 });
  });

  it('removes a component an earlier discovery had, and clears verdicts an earlier run left', async () => {
    nodes += 1;
    const node = `node${nodes}`;
    const topic = topicsOf(node);
    const gone = `vouch/${node}/verdicts/${'b'.repeat(64)}`;
    const watch = await observe(broker.url);
    cleanup.push(() => watch.client.endAsync(true));
    // What an earlier version held: one more sensor, and the verdict of an image gone since.
    const earlier = {
      dev: { identifiers: [`vouch_${node}`], name: 'vouch' },
      o: { name: 'vouch' },
      cmps: {
        status: { p: 'sensor', name: 'Trust status', unique_id: `vouch_${node}_status` },
        retired: { p: 'sensor', name: 'Retired', unique_id: `vouch_${node}_retired` },
      },
    };
    await watch.client.publishAsync(topic.discovery, JSON.stringify(earlier), {
      qos: 1,
      retain: true,
    });
    await watch.client.publishAsync(gone, '{"status":"TRUSTED"}', { qos: 1, retain: true });
    const first = reporter(broker.url, node);
    await first.service.start();
    try {
      await watch.until(() => watch.last(gone)?.payload === '');
      expect(watch.last(gone)).toMatchObject({ retain: true, qos: 1 });
      await watch.until(
        () => JSON.parse(watch.last(topic.discovery)?.payload ?? '{}').cmps?.retired,
      );
      const { cmps } = JSON.parse(watch.last(topic.discovery)?.payload ?? '');
      // HA's removal: the platform alone (homeassistant/components/mqtt/discovery.py).
      expect(cmps.retired).toEqual({ p: 'sensor' });
      expect(cmps.status).toMatchObject({ p: 'sensor', unique_id: `vouch_${node}_status` });
    } finally {
      await first.service.stop();
    }
    // The next run finds the removal retained: the component is left out for good.
    const second = reporter(broker.url, node);
    const seen = watch.on(topic.discovery).length;
    cleanup.push(() => second.service.stop());
    await second.service.start();
    await watch.until(() => watch.on(topic.discovery).length > seen);
    const { cmps } = JSON.parse(watch.last(topic.discovery)?.payload ?? '');
    expect(cmps.retired).toBeUndefined();
    expect(cmps.status).toBeDefined();
  });

  it('reconnects with backoff when the broker restarts, and publishes everything again', async () => {
    const { service, lines, topic } = await started();
    await broker.restart();
    await vi.waitFor(
      () => expect(lines.some((line) => line.msg.startsWith('MQTT: disconnected'))).toBe(true),
      { timeout: 10_000 },
    );
    // A broker away leaves the service degraded, never failed: the agent stays healthy.
    expect(service.health.state).not.toBe('failed');
    // The broker kept nothing (no persistence): what a new subscriber gets is republished.
    const again = await observe(broker.url);
    cleanup.push(() => again.client.endAsync(true));
    await again.until(() => again.last(topic.discovery), 15_000);
    await again.until(() => again.last(topic.availability)?.payload === 'online');
    await again.until(() => again.last(topic.haState));
    expect(again.last(topic.verdict)).toMatchObject({ retain: true, qos: 1 });
    expect(service.health.state).toBe('ok');
    // The first try after initialMs (100 ms) with jitter: half to all of it.
    const first = lines.find((line) => line.msg.startsWith('MQTT: disconnected')) as unknown as {
      retryInMs: number;
    };
    expect(first.retryInMs).toBeGreaterThanOrEqual(50);
    expect(first.retryInMs).toBeLessThanOrEqual(100);
  });
});

describeWith('mqtt', 'the MQTT reporter, against a real agent and over TLS', () => {
  it('leaves its last will, retained, when the agent is killed with SIGKILL', async () => {
    const broker = await startMosquitto();
    const watch = await observe(broker.url);
    const stateDir = await mkdtemp(join(tmpdir(), 'vouch-mqtt-agent-'));
    try {
      const agent = await startAgent({ stateDir, mqtt: { url: broker.url, nodeId: 'killed' } });
      await watch.until(() => watch.last('vouch/killed/availability')?.payload === 'online');
      await watch.until(() => watch.last('homeassistant/device/killed/config'));
      await stopAgent(agent, 'SIGKILL');
      await watch.until(() => watch.last('vouch/killed/availability')?.payload === 'offline');
      expect(watch.last('vouch/killed/availability')).toMatchObject({ retain: true, qos: 1 });
    } finally {
      await watch.client.endAsync(true);
      await broker.stop();
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it('connects over mqtts:// with a CA and a client certificate made by openssl', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vouch-mqtt-tls-'));
    const files = await makeCertificates(dir);
    const broker = await startMosquitto({
      tls: { ca: files.ca, cert: files.serverCert, key: files.serverKey, requireCertificate: true },
    });
    const watch = await observe(broker.url, {
      ca: await readFile(files.ca),
      cert: await readFile(files.clientCert),
      key: await readFile(files.clientKey),
    });
    const { service } = reporter(broker.url, 'tls', {
      config: {
        url: broker.url,
        ca: files.ca,
        cert: files.clientCert,
        key: files.clientKey,
        discoveryPrefix: 'homeassistant',
        baseTopic: 'vouch',
        nodeId: 'tls',
      },
    });
    try {
      await service.start();
      await watch.until(() => watch.last(topicsOf('tls').haState));
      expect(broker.url).toMatch(/^mqtts:/);
      expect(service.health.state).toBe('ok');
    } finally {
      await service.stop();
      await watch.client.endAsync(true);
      await broker.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the MQTT reporter without a broker', () => {
  it('derives its node id from a hash of the machine ID, and stays degraded while the broker is away', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vouch-mqtt-id-'));
    const machineIdPath = join(dir, 'machine-id');
    await writeFile(machineIdPath, '0123456789abcdef0123456789abcdef\n');
    const password = join(dir, 'password');
    await writeFile(password, 'secret\n');
    const { service } = reporter('mqtt://127.0.0.1:1', 'unused', {
      config: {
        url: 'mqtt://127.0.0.1:1',
        username: 'vouch',
        passwordFile: password,
        discoveryPrefix: 'homeassistant',
        baseTopic: 'vouch',
      },
      machineIdPath,
    });
    try {
      await service.start();
      expect(service.nodeId).toMatch(/^[0-9a-f]{16}$/);
      expect(service.nodeId).not.toContain('0123456789abcdef');
      await vi.waitFor(() =>
        expect(service.health.reason).toMatch(/^not connected: .*ECONNREFUSED/),
      );
      expect(service.health.state).toBe('degraded');
    } finally {
      await service.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails to start on a password file that does not exist', async () => {
    const { service, lines } = reporter('mqtt://127.0.0.1:1', 'x', {
      config: {
        url: 'mqtt://127.0.0.1:1',
        passwordFile: '/nonexistent/password',
        discoveryPrefix: 'homeassistant',
        baseTopic: 'vouch',
        nodeId: 'x',
      },
    });
    await service.start();
    expect(service.health).toMatchObject({ state: 'failed' });
    expect(service.health.reason).toMatch(/password file \/nonexistent\/password/);
    expect(lines.some((line) => line.msg.startsWith('MQTT cannot start'))).toBe(true);
    await service.stop();
  });

  it('fails to start on a password file over 64 KiB, naming the cap', async () => {
    const passwordFile = join(await mkdtemp(join(tmpdir(), 'vouch-mqtt-secret-')), 'password');
    await writeFile(passwordFile, 'p'.repeat(64 * 1024 + 1), { mode: 0o600 });
    const { service } = reporter('mqtt://127.0.0.1:1', 'x', {
      config: {
        url: 'mqtt://127.0.0.1:1',
        passwordFile,
        discoveryPrefix: 'homeassistant',
        baseTopic: 'vouch',
        nodeId: 'x',
      },
    });
    await service.start();
    expect(service.health).toMatchObject({ state: 'failed' });
    expect(service.health.reason).toContain(`${passwordFile} is larger than 65536 bytes`);
    await service.stop();
  });
});

describe('the Supervisor services API', () => {
  it('names the broker and its credentials', async () => {
    const server = createServer((request, response) => {
      const authorized = request.headers.authorization === 'Bearer t0ken';
      response.writeHead(authorized ? 200 : 401, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({
          result: 'ok',
          data: {
            host: 'core-mosquitto',
            port: 1883,
            ssl: false,
            username: 'addons',
            password: 'pw',
            protocol: '3.1.1',
            addon: 'core_mosquitto',
          },
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect(await supervisorBroker({ url, token: 't0ken' })).toEqual({
        url: 'mqtt://core-mosquitto:1883',
        options: { username: 'addons', password: 'pw' },
      });
      await expect(supervisorBroker({ url, token: 'wrong' })).rejects.toThrow(/HTTP 401/);
      await expect(supervisorBroker(undefined)).rejects.toThrow(/no Supervisor/);
    } finally {
      server.close();
    }
  });
});

/** A TCP relay to the broker that the test cuts and restores: one client's link alone goes down. */
async function relay(brokerPort: number) {
  const sockets = new Set<Socket>();
  let open = true;
  const server = createNetServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = connect(brokerPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.once('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut() {
      open = false;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      open = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, by openssl. */
async function makeCertificates(dir: string) {
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=vouch test CA',
    '-keyout',
    path('ca.key'),
    '-out',
    path('ca.pem'),
  );
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    await writeFile(path(`${name}.ext`), `${ext}\n`);
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      path(`${name}.key`),
      '-out',
      path(`${name}.csr`),
    );
    openssl(
      'x509',
      '-req',
      '-in',
      path(`${name}.csr`),
      '-CA',
      path('ca.pem'),
      '-CAkey',
      path('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      path(`${name}.ext`),
      '-out',
      path(`${name}.pem`),
    );
  }
  // Run as root, mosquitto reads them as its own user: throwaway keys, readable by all.
  await chmod(dir, 0o755);
  for (const name of ['ca.pem', 'server.pem', 'server.key']) await chmod(path(name), 0o644);
  return {
    ca: path('ca.pem'),
    serverCert: path('server.pem'),
    serverKey: path('server.key'),
    clientCert: path('client.pem'),
    clientKey: path('client.key'),
  };
}

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { expect, vi } from 'vitest';
import { type Daemon, startDaemon } from '../../scripts/lib/daemon';
import { freePort, requireBinary, waitFor } from '../../scripts/lib/services';

export interface Mosquitto {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /** Stops the broker and starts it again on the same port (for reconnect tests). */
  restart(): Promise<void>;
}

export interface MosquittoOptions {
  /**
   * TLS only (mqtts://), with these PEM files; `requireCertificate`: clients must present a
   * certificate the CA signed.
   */
  readonly tls?: {
    readonly ca: string;
    readonly cert: string;
    readonly key: string;
    readonly requireCertificate?: boolean;
  };
}

/** A real mosquitto on a free 127.0.0.1 port, anonymous, no persistence. */
export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const binary = requireBinary('mqtt');
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'vouch-mosquitto-'));
  const configPath = join(dir, 'mosquitto.conf');
  await writeFile(
    configPath,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'log_dest stderr',
      ...(options.tls
        ? [
            `cafile ${options.tls.ca}`,
            `certfile ${options.tls.cert}`,
            `keyfile ${options.tls.key}`,
            `require_certificate ${options.tls.requireCertificate === true}`,
          ]
        : []),
    ].join('\n'),
  );
  let daemon: Daemon;
  const launch = async () => {
    daemon = startDaemon(binary, ['-c', configPath]);
    await waitFor(
      `mosquitto on 127.0.0.1:${port}`,
      () => canConnect(port),
      10_000,
      () => daemon.exitError(),
    );
  };
  await launch();
  return {
    url: `${options.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    port,
    async stop() {
      await daemon.stop();
      await rm(dir, { recursive: true, force: true });
    },
    async restart() {
      await daemon.stop();
      await launch();
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface Received {
  readonly topic: string;
  readonly payload: string;
  readonly retain: boolean;
  readonly qos: number;
}

/** An MQTT 5 client that sees everything, with each message's retain flag as published. */
export async function observe(url: string, options: mqtt.IClientOptions = {}) {
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    ...options,
  });
  const received: Received[] = [];
  client.on('message', (topic, payload, packet) =>
    received.push({ topic, payload: payload.toString(), retain: packet.retain, qos: packet.qos }),
  );
  // QoS 2 and retain-as-published: what arrives is how it was sent.
  await client.subscribeAsync('#', { qos: 2, rap: true });
  const on = (topic: string) => received.filter((message) => message.topic === topic);
  return {
    client,
    received,
    on,
    last: (topic: string) => on(topic).at(-1),
    async until(what: () => unknown, timeout = 10_000) {
      await vi.waitFor(() => expect(what()).toBeTruthy(), { timeout, interval: 20 });
    },
  };
}

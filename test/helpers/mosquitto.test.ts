import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Mosquitto, startMosquitto } from './mosquitto';
import { describeWith } from './services';

async function roundTrip(url: string, topic: string, message: string): Promise<string> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  try {
    const received = new Promise<string>((resolve) => {
      client.on('message', (_topic, payload) => resolve(payload.toString()));
    });
    await client.subscribeAsync(topic, { qos: 1 });
    await client.publishAsync(topic, message, { qos: 1 });
    return await received;
  } finally {
    await client.endAsync();
  }
}

describeWith('mqtt', 'startMosquitto', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker.stop();
  });

  it('listens on 127.0.0.1 and relays a message', async () => {
    expect(broker.url).toBe(`mqtt://127.0.0.1:${broker.port}`);
    expect(await roundTrip(broker.url, 'vouch/test/one', 'hello')).toBe('hello');
  });

  it('restarts on the same port, dropping clients that then reconnect', async () => {
    const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 100 });
    try {
      const reconnected = new Promise<void>((resolve) => client.once('connect', () => resolve()));
      await broker.restart();
      await reconnected;
      expect(await roundTrip(broker.url, 'vouch/test/two', 'again')).toBe('again');
    } finally {
      await client.endAsync(true);
    }
  });

  it('stops: the port refuses connections afterwards', async () => {
    const second = await startMosquitto();
    await second.stop();
    await expect(
      mqtt.connectAsync(second.url, { reconnectPeriod: 0, connectTimeout: 2000 }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });
});

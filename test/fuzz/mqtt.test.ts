import fc from 'fast-check';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AgentEvents } from '../../agent/device/agent/events';
import { MqttReporter } from '../../agent/device/agent/mqtt';
import {
  discoveryPayload,
  maxPreviousDiscoveryBytes,
} from '../../agent/device/agent/mqtt-discovery';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto';
import { describeWith } from '../helpers/services';
import { fuzz, jsonMutants, mutatedBytes, params } from './fuzz';

/**
 * What anyone who may publish on the MQTT broker sends the agent: an earlier discovery
 * payload (read to remove components gone since) and button presses, as mutants of the
 * valid ones; parsed directly, and a share of them published to a running reporter through
 * a real mosquitto.
 */

const names = { discoveryPrefix: 'homeassistant', baseTopic: 'vouch', nodeId: 'fuzz' };
const earlier = JSON.parse(
  discoveryPayload({ ...names, version: '0.9', board: 'Raspberry Pi 4 Model B Rev 1.5' }),
);
earlier.cmps.retired = { p: 'sensor', name: 'Retired' };
const ours = discoveryPayload({ ...names, version: '1.0', board: null });

const previousPayloads = fc.oneof(
  jsonMutants(earlier).map((bytes) => Buffer.from(bytes).toString('utf8')),
  fc.string({ unit: 'binary', maxLength: 100 }),
);

describe('fuzz: MQTT discovery payloads of others', () => {
  it('makes our payload from any earlier one: JSON, ours plus removals, bounded', () => {
    fuzz(previousPayloads, (previous) => {
      const made = discoveryPayload({ ...names, version: '1.0', board: null, previous });
      const { cmps } = JSON.parse(made) as { cmps: Record<string, { p: unknown }> };
      for (const [id, component] of Object.entries(cmps)) {
        if (!(id in JSON.parse(ours).cmps)) expect(component).toEqual({ p: component.p });
      }
      expect(made.length).toBeLessThanOrEqual(ours.length + maxPreviousDiscoveryBytes);
    });
  });
});

describeWith('mqtt', 'fuzz: MQTT messages to a running reporter', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker.stop();
  });

  it('ignores all but a PRESS on a button topic, stays connected, and is never thrown', async () => {
    const counts = { sync: 0, verify: 0 };
    const service = new MqttReporter({
      config: { url: broker.url, ...names },
      version: '1.0',
      events: new AgentEvents(),
      status: async () => ({ overall: { status: 'ok' }, services: {}, size: 1 }),
      verdicts: async () => ({ images: [] }),
      sync: async () => {
        counts.sync += 1;
      },
      verifyAll: async () => {
        counts.verify += 1;
      },
      logger: pino({ level: 'silent' }),
      board: null,
    });
    const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    try {
      await service.start();
      await vi.waitFor(() => expect(service.health.state).toBe('ok'), { timeout: 10_000 });
      const base = `vouch/${names.nodeId}`;
      const topics = [
        `${base}/command/sync`,
        `${base}/command/verify`,
        `homeassistant/device/${names.nodeId}/config`,
        `${base}/verdicts/${'a'.repeat(64)}`,
        'homeassistant/status',
      ];
      const message = fc.record({
        topic: fc.constantFrom(...topics),
        payload: fc.oneof(
          mutatedBytes(Buffer.from('PRESS')),
          previousPayloads.map((text) => Buffer.from(text)),
          fc.constantFrom(Buffer.from('online'), Buffer.alloc(300, 'P'), Buffer.alloc(0)),
        ),
        retain: fc.boolean(),
      });
      let presses = 0;
      // A publish per case through the broker: a twentieth of the runs.
      await fc.assert(
        fc.asyncProperty(message, async ({ topic, payload, retain }) => {
          // A live message reaches subscribers with RETAIN 0 whatever the publisher set (MQTT
          // 3.1.1 §3.3.1.3): only one the broker held arrives retained, and is ignored.
          if (topic.includes('/command/') && Buffer.from(payload).toString() === 'PRESS') {
            presses += 1;
          }
          await client.publishAsync(topic, Buffer.from(payload), { qos: 1, retain });
        }),
        params(1 / 20, 20),
      );
      // One press per button is taken every 10 s; everything else is dropped.
      await client.publishAsync(`${base}/command/sync`, 'PRESS', { qos: 1 });
      await vi.waitFor(() => expect(counts.sync).toBeGreaterThanOrEqual(1), { timeout: 10_000 });
      expect(counts.sync + counts.verify).toBeLessThanOrEqual(Math.min(2, presses + 1));
      expect(service.health.state).toBe('ok');
    } finally {
      await client.endAsync(true);
      await service.stop();
    }
  });
});

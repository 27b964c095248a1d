import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildScratchImage, type Dockerd, startDockerd } from '../../scripts/lib/dockerd';
import { waitFor } from '../../scripts/lib/services';
import { type RunningAgent, startAgent, stopAgent } from '../device/agent/harness';
import { syncedDevice, testWorld } from '../helpers/device';
import { type Mosquitto, observe, startMosquitto } from '../helpers/mosquitto';
import { describeWith } from '../helpers/services';
import { count, random } from './chaos';

/**
 * The broker (a real mosquitto, no persistence) and dockerd (a real one, vfs) restarted
 * under one running agent, one or the other or both at once, in a random order (seeded):
 * after each, the agent is connected again — a new MQTT subscriber gets its availability
 * and state, retained, republished since the broker kept nothing — and watches Docker
 * again: an image built after the restart gets a verdict. The agent never exits.
 */

const draw = random('restarts');
const rounds = count(2, 8);
const node = 'chaos-restarts';
let broker: Mosquitto;
let daemon: Dockerd;
let agent: RunningAgent;
let stateDir: string;

const until = (what: string, probe: () => Promise<boolean>) => waitFor(what, probe, 60_000);

async function services(): Promise<Record<string, { state: string }>> {
  const status = (await agent.request('GET', '/v1/status')).body as {
    services: Record<string, { state: string }>;
  };
  return status.services;
}

describeWith('mqtt', 'restarts under a running agent', () => {
  describeWith('docker', 'of the broker and dockerd', body);
});

function body(): void {
  beforeAll(async () => {
    const world = await testWorld();
    [broker, daemon, stateDir] = await Promise.all([
      startMosquitto(),
      startDockerd(),
      syncedDevice(world),
    ]);
    agent = await startAgent(
      { stateDir, mqtt: { url: broker.url, nodeId: node }, sync: { schedule: '0 0 1 1 *' } },
      { DOCKER_HOST: daemon.dockerHost },
    );
  }, 180_000);

  afterAll(async () => {
    if (agent) expect((await stopAgent(agent)).code).toBe(0);
    await Promise.all([broker?.stop(), daemon?.stop()]);
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it(`reconnects, reports again and watches Docker again after each (${rounds} rounds)`, async () => {
    const kinds = ['broker', 'dockerd', 'both'] as const;
    for (let round = 0; round < rounds; round++) {
      // Both kinds in the first two rounds, so that even `npm test` has each.
      const kind = round < 2 ? kinds[round] : kinds[Math.floor(draw() * kinds.length)];
      const what = `round ${round}: ${kind}`;
      await Promise.all([
        kind !== 'dockerd' && broker.restart(),
        kind !== 'broker' && daemon.restart(),
      ]);
      const watch = await observe(broker.url);
      try {
        await watch.until(() => watch.last(`vouch/${node}/availability`)?.payload === 'online');
        await watch.until(() => watch.last(`vouch/${node}/state`)?.retain);
      } finally {
        await watch.client.endAsync(true);
      }
      await until(`${what}: the services ok`, async () => {
        const { mqtt, docker } = await services();
        return mqtt?.state === 'ok' && docker?.state === 'ok';
      });
      const tag = `ghcr.io/example/after-${round}:1`;
      const id = await buildScratchImage(daemon.docker, tag, { 'a.txt': `${what} ${draw()}` });
      await until(`${what}: a verdict for ${tag}`, async () => {
        const { images } = (await agent.request('GET', '/v1/verdicts')).body as {
          images: { id: string; status: string }[];
        };
        return images.some((image) => image.id === id && image.status === 'UNKNOWN');
      });
      expect(agent.child.exitCode, what).toBeNull();
    }
  }, 600_000);
}

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadState } from '../../../agent/device';
import type { ImageResult } from '../../../agent/device/docker';
import { buildScratchImage, type Dockerd, startDockerd } from '../../../scripts/lib/dockerd';
import { waitFor } from '../../../scripts/lib/services';
import { runPaused, signImage } from '../../helpers/containers';
import { cliBundle, signerId, syncedDevice, testWorld, type World } from '../../helpers/device';
import { pauseProgram } from '../../helpers/pause';
import { describeWith } from '../../helpers/services';
import { type RunningAgent, serveLog, startAgent, stopAgent } from './harness';

/**
 * `vouch agent` as a process against a real dockerd (vfs, no network) and a real
 * `vouch log serve`: a revocation synced stops a container without a restart, dockerd
 * restarting is a reconnect, SIGTERM during a deep check is a clean exit, and the API's
 * image verify is the CLI's, its deep check kept in the digest cache. Containers run the
 * pause program FROM scratch with stop signal SIGKILL (see test/device/docker/watch.test.ts).
 */

let daemon: Dockerd;
let world: World;
const ids: Record<string, string> = {};

const tags = {
  /** Signed trusted, revoked in the first test; its scope enforces. */
  enforced: 'ghcr.io/example/enforced/app:1',
  /** 256 MiB of random bytes in one layer: a deep check takes over a second here (vfs). */
  big: 'ghcr.io/example/big/app:1',
} as const;

const images = {
  scopes: [
    { match: 'ghcr.io/example/enforced/**', signer: signerId, enforce: 'enforce' },
    { match: 'ghcr.io/example/**', signer: signerId, enforce: 'warn' },
  ],
};
/** Never within a test: syncs only when asked (or at start without a state). */
const noSchedule = { schedule: '0 0 1 1 *' };

/** Polls `probe` until true, for at most 20 s. */
const until = (what: string, probe: () => Promise<boolean>) => waitFor(what, probe, 20_000);

/** A statement about image `tag` (its ID), appended to the world's log and published. */
function sign(tag: string, status: 'trusted' | 'revoked', seconds: number): Promise<void> {
  return signImage(world, tag, ids[tag] as string, status, seconds);
}

function runContainer(image: string, name: string): Promise<Docker.Container> {
  return runPaused(daemon.docker, image, name);
}

/** The agent on this file's dockerd. */
function agentOn(config: Record<string, unknown>): Promise<RunningAgent> {
  return startAgent({ images, sync: noSchedule, ...config }, { DOCKER_HOST: daemon.dockerHost });
}

type ImageVerdict = ImageResult & { decision: { action: string } };

async function imageVerdicts(agent: RunningAgent): Promise<ImageVerdict[]> {
  const answer = await agent.request('GET', '/v1/verdicts');
  return (answer.body as { images: ImageVerdict[] }).images;
}

async function dockerHealth(agent: RunningAgent): Promise<{ state: string; reason: string }> {
  const status = (await agent.request('GET', '/v1/status')).body as {
    services: Record<string, { state: string; reason: string }>;
  };
  return status.services.docker as { state: string; reason: string };
}

interface Received {
  readonly type: string;
  readonly data: Record<string, unknown>;
  /** performance.now() when it arrived. */
  readonly at: number;
}

/** Follows `GET /v1/events`, collecting each event parsed, with when it arrived. */
async function followEvents(agent: RunningAgent) {
  const received: Received[] = [];
  const req = request({ socketPath: agent.socket, path: '/v1/events' });
  let buffer = '';
  await new Promise<void>((resolve, reject) => {
    req.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        buffer += text;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const raw = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const type = /^event: (.*)$/m.exec(raw)?.[1];
          const data = /^data: (.*)$/m.exec(raw)?.[1];
          if (type && data) received.push({ type, data: JSON.parse(data), at: performance.now() });
        }
      });
      resolve();
    });
    req.on('error', reject);
    req.end();
  });
  return { received, close: () => req.destroy() };
}

/** Image `save` events (what an export is) dockerd sends from now on, by image ID. */
async function followSaves(docker: Docker) {
  const saves: string[] = [];
  const stream = (await docker.getEvents({
    filters: { type: ['image'], event: ['save'] },
  })) as NodeJS.ReadableStream & { destroy(): void };
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) saves.push((JSON.parse(line) as { Actor: { ID: string } }).Actor.ID);
    }
  });
  return { saves, close: () => stream.destroy() };
}

/** `node dist/vouch.cjs ARGV…` with DOCKER_HOST set: its exit code and stdout. */
function runBundle(argv: readonly string[]): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, [cliBundle, ...argv], {
    env: { PATH: process.env.PATH, DOCKER_HOST: daemon.dockerHost },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout })));
}

describeWith('docker', 'vouch agent with Docker', () => {
  beforeAll(async () => {
    [daemon, world] = await Promise.all([startDockerd(), testWorld()]);
    ids[tags.enforced] = await buildScratchImage(daemon.docker, tags.enforced, {
      pause: { content: pauseProgram(), mode: 0o755 },
    });
    ids[tags.big] = await buildScratchImage(daemon.docker, tags.big, {
      'big.bin': randomBytes(256 * 2 ** 20),
    });
    await sign(tags.enforced, 'trusted', 0);
    await sign(tags.big, 'trusted', 1);
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('a revocation synced: the verdict changes and the container is stopped (enforce), without a restart', async () => {
    const id = ids[tags.enforced] as string;
    const container = await runContainer(tags.enforced, 'revoked-later');
    const server = await serveLog(world);
    const stateDir = await mkdtemp(join(tmpdir(), 'vouch-agent-state-'));
    // No state yet: the agent syncs at start.
    const agent = await agentOn({ stateDir, root: world.rootPath, mirrors: [server.url] });
    try {
      await until('TRUSTED after the first sync', async () =>
        (await imageVerdicts(agent)).some((v) => v.id === id && v.status === 'TRUSTED'),
      );
      expect((await container.inspect()).State.Running).toBe(true);
      const events = await followEvents(agent);
      try {
        await sign(tags.enforced, 'revoked', 100);
        const synced = await agent.request('POST', '/v1/sync');
        expect(synced.status).toBe(200);
        expect(synced.body).toMatchObject({ size: world.size });
        const answered = performance.now();
        const verdictEvent = () =>
          events.received.find((event) => event.type === 'verdict' && event.data.subject === id);
        const actionEvent = () => events.received.find((event) => event.type === 'action');
        await until(
          'the verdict and action events',
          async () => !!verdictEvent() && !!actionEvent(),
        );
        expect(verdictEvent()?.data).toMatchObject({
          kind: 'image',
          name: tags.enforced,
          status: 'REVOKED',
          previous: 'TRUSTED',
        });
        // The bound: a changed verdict within a second of the commit.
        expect((verdictEvent()?.at as number) - answered).toBeLessThan(1000);
        expect(actionEvent()?.data.action).toMatchObject({
          action: 'stopped',
          container: { name: 'revoked-later' },
          image: id,
          status: 'REVOKED',
          mode: 'enforce',
        });
        expect((await container.inspect()).State.Running).toBe(false);
        expect((await imageVerdicts(agent)).find((v) => v.id === id)).toMatchObject({
          status: 'REVOKED',
          decision: { action: 'stop' },
        });
        const status = (await agent.request('GET', '/v1/status')).body as { overall: unknown };
        expect(status.overall).toMatchObject({
          status: 'violation',
          reasons: expect.arrayContaining([`${tags.enforced} is REVOKED`]),
        });
        // The same process throughout.
        expect(agent.child.exitCode).toBeNull();
      } finally {
        events.close();
      }
    } finally {
      expect((await stopAgent(agent)).code).toBe(0);
      await server.stop();
      await container.remove({ force: true });
    }
  });

  it('POST /v1/verify {image, deep} answers what vouch verify image --deep -o json prints; the second from its cache', async () => {
    const id = ids[tags.big] as string;
    const stateDir = await syncedDevice(world);
    const agent = await agentOn({ stateDir });
    const saves = await followSaves(daemon.docker);
    try {
      const cli = await runBundle([
        'verify',
        'image',
        '--deep',
        '--config',
        agent.configPath,
        '--state-dir',
        stateDir,
        '--log-level',
        'silent',
        tags.big,
        '-o',
        'json',
      ]);
      expect(cli.code).toBe(0);
      const printed = JSON.parse(cli.stdout) as Record<string, unknown>;
      await until('the CLI export', async () => saves.saves.length === 1);

      const first = await agent.request('POST', '/v1/verify', { image: tags.big, deep: true });
      expect(first.status).toBe(200);
      const answer = first.body as Record<string, unknown> & { results: ImageResult[] };
      expect(Object.keys(answer).sort()).toEqual(Object.keys(printed).sort());
      // All but the time of asking.
      const { now: _cliNow, ...cliRest } = printed;
      const { now: _agentNow, ...agentRest } = answer;
      expect(agentRest).toEqual(cliRest);
      const [result] = answer.results;
      expect(result).toMatchObject({
        id,
        status: 'TRUSTED',
        deep: { matches: true, layout: 'docker', layers: [{ bytes: expect.any(Number) }] },
      });
      expect(result?.deep?.layers[0]?.bytes).toBeGreaterThan(256 * 2 ** 20);
      // The agent exported the image too: one more save.
      await until('the agent export', async () => saves.saves.length === 2);
      expect(saves.saves).toEqual([id, id]);

      // Kept (written a few seconds after the change) by image ID.
      await until('the deep cache write', async () =>
        (await readFile(join(stateDir, 'cache', 'deep.json'), 'utf8').catch(() => '')).includes(id),
      );
      const second = await agent.request('POST', '/v1/verify', { image: tags.big, deep: true });
      expect((second.body as { results: ImageResult[] }).results[0]).toEqual(result);
      // Answered from the cache: Docker was not asked for an export again.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(saves.saves).toHaveLength(2);
    } finally {
      saves.close();
      expect((await stopAgent(agent)).code).toBe(0);
    }
  });

  it('exits 0 within 5 s on SIGTERM during a deep verification, leaving a valid state', async () => {
    const stateDir = await syncedDevice(world);
    const size = (await loadState(stateDir))?.checkpoint.checkpoint.size;
    expect(size).toBe(world.size);
    const agent = await agentOn({ stateDir });
    let answered = false;
    const verifying = agent
      .request('POST', '/v1/verify', { image: ids[tags.big], deep: true })
      .then(
        () => {
          answered = true;
        },
        () => {},
      );
    // The deep check is under way once the hash workers are (the export is read on them).
    await until('the hash workers', async () => {
      const status = (await agent.request('GET', '/v1/status')).body as {
        services: Record<string, { reason: string }>;
      };
      return /workers/.test(status.services.hashing?.reason ?? '');
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(answered).toBe(false);
    const stopped = await stopAgent(agent);
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(5000);
    await verifying;
    expect((await loadState(stateDir))?.checkpoint.checkpoint.size).toBe(size);
  });

  it('reconnects when dockerd restarts: degraded while it is away, ok after, and new images get verdicts', async () => {
    const stateDir = await syncedDevice(world);
    const agent = await agentOn({ stateDir });
    const events = await followEvents(agent);
    try {
      expect(await dockerHealth(agent)).toMatchObject({ state: 'ok' });
      const before = await imageVerdicts(agent);
      expect(before.map((v) => v.id)).toContain(ids[tags.enforced]);
      const seen: string[] = [];
      let restarted = false;
      const restarting = daemon.restart().finally(() => {
        restarted = true;
      });
      // What /v1/status says, each change, until dockerd is back and the agent with it.
      await until('the reconnect', async () => {
        const { state } = await dockerHealth(agent);
        if (seen.at(-1) !== state) seen.push(state);
        return restarted && state === 'ok';
      });
      await restarting;
      expect(seen).toEqual(['ok', 'degraded', 'ok']);
      const health = events.received
        .filter((event) => event.type === 'health' && event.data.service === 'docker')
        .map((event) => (event.data.health as { state: string }).state);
      expect(health).toEqual(['degraded', 'ok']);
      await agent.logged('Docker connection lost');

      const fresh = await buildScratchImage(daemon.docker, 'ghcr.io/example/after-restart:1', {
        'a.txt': `built after the restart ${Math.random()}`,
      });
      await until('a verdict for the new image', async () =>
        (await imageVerdicts(agent)).some((v) => v.id === fresh),
      );
      expect((await imageVerdicts(agent)).find((v) => v.id === fresh)).toMatchObject({
        status: 'UNKNOWN',
        names: ['ghcr.io/example/after-restart:1'],
        requirement: { match: 'ghcr.io/example/**', mode: 'warn' },
      });
    } finally {
      events.close();
      expect((await stopAgent(agent)).code).toBe(0);
    }
  });
});

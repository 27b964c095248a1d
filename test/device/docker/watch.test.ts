import { mkdtemp, rename, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type Docker from 'dockerode';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type EnforceMode, type ImagePolicy, parseConfig } from '../../../agent/config';
import { syncFromMirrors } from '../../../agent/device';
import { addAllowEntry } from '../../../agent/device/docker/allow';
import type { EnforcementAction } from '../../../agent/device/docker/enforce';
import { ImageWatcher, type VerdictEvent } from '../../../agent/device/docker/watch';
import { buildScratchImage, type Dockerd, startDockerd } from '../../../scripts/lib/dockerd';
import { waitFor } from '../../../scripts/lib/services';
import { runPaused, signImage } from '../../helpers/containers';
import { signerId, testWorld, type World } from '../../helpers/device';
import { rejectsWith } from '../../helpers/errors';
import { pauseProgram } from '../../helpers/pause';
import { describeWith } from '../../helpers/services';

/**
 * The watcher against a real dockerd (vfs, no network). Containers do run here: images
 * `FROM scratch` hold a tiny static program that blocks (helpers/pause.ts), run with
 * `--network none`; their stop signal is SIGKILL, as the program (PID 1) has no handler
 * for SIGTERM and would make every stop wait out Docker's 10 s timeout.
 */

let daemon: Dockerd;
let world: World;
/** A state dir synced with a TRUSTED statement for every image below. */
let stateDir: string;
const ids: Record<string, string> = {};
let loadedArchive: Buffer;

const tags = {
  enforced: 'ghcr.io/example/enforced/app:1',
  warned: 'ghcr.io/example/warned/app:1',
  allowed: 'ghcr.io/example/allowed/app:1',
  loaded: 'ghcr.io/example/loaded/app:1',
} as const;

function policy(couldNotCheck: EnforceMode = 'warn'): ImagePolicy {
  return parseConfig(
    {
      images: {
        couldNotCheck,
        scopes: [
          { match: 'ghcr.io/example/enforced/**', signer: signerId, enforce: 'enforce' },
          { match: 'ghcr.io/example/allowed/**', signer: signerId, enforce: 'enforce' },
          { match: 'ghcr.io/example/**', signer: signerId, enforce: 'warn' },
        ],
      },
    },
    'test',
  ).images;
}

function captured() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line)) },
  );
  return { logger, lines };
}

async function sync(dir: string): Promise<void> {
  await syncFromMirrors({
    stateDir: dir,
    mirrors: [world.mirror],
    rootPath: world.rootPath,
    timeoutMs: 5000,
    maxBundleBytes: 1 << 24,
    logger: pino({ level: 'silent' }),
  });
}

/** A statement about image `tag` (its ID), appended to the log and published. */
function sign(tag: string, status: 'trusted' | 'revoked', seconds: number): Promise<void> {
  return signImage(world, tag, ids[tag] as string, status, seconds);
}

function build(tag: string): Promise<string> {
  return buildScratchImage(daemon.docker, tag, {
    pause: { content: pauseProgram(), mode: 0o755 },
    tag,
  });
}

function runContainer(image: string, name: string): Promise<Docker.Container> {
  return runPaused(daemon.docker, image, name);
}

async function running(container: Docker.Container): Promise<boolean> {
  return (await container.inspect()).State.Running;
}

/** A watcher and everything it emits. */
function watcherOn(
  dir: string,
  options: { couldNotCheck?: EnforceMode; pollMs?: number; docker?: Docker } = {},
) {
  const { logger, lines } = captured();
  const watcher = new ImageWatcher({
    docker: options.docker ?? daemon.docker,
    stateDir: dir,
    policy: policy(options.couldNotCheck),
    logger,
    backoff: { initialMs: 50, maxMs: 400 },
    // A long poll unless asked: state changes must then be seen through fs.watch.
    statePollMs: options.pollMs ?? 600_000,
  });
  const verdicts: VerdictEvent[] = [];
  const actions: EnforcementAction[] = [];
  /** `connected`, or the delay before the next try after a disconnect. */
  const connections: (number | 'connected')[] = [];
  watcher.on('verdict', (verdict) => verdicts.push(verdict));
  watcher.on('action', (action) => actions.push(action));
  watcher.on('connected', () => connections.push('connected'));
  watcher.on('disconnected', ({ retryInMs }) => connections.push(retryInMs));
  const until = (what: string, probe: () => boolean) => waitFor(what, async () => probe(), 20_000);
  const verdictFor = (id: string, match: (verdict: VerdictEvent) => boolean) =>
    verdicts.find((verdict) => verdict.result.id === id && match(verdict));
  return { watcher, verdicts, actions, connections, lines, until, verdictFor };
}

describeWith('docker', 'ImageWatcher', () => {
  beforeAll(async () => {
    [daemon, world] = await Promise.all([startDockerd(), testWorld()]);
    for (const tag of Object.values(tags)) ids[tag] = await build(tag);
    let seconds = 0;
    for (const tag of Object.values(tags)) await sign(tag, 'trusted', seconds++);
    stateDir = await mkdtemp(join(tmpdir(), 'vouch-watch-state-'));
    await sync(stateDir);
    // `loaded` arrives later, through `docker load`.
    const chunks: Buffer[] = [];
    for await (const chunk of await daemon.docker.getImage(tags.loaded).get()) {
      chunks.push(chunk as Buffer);
    }
    loadedArchive = Buffer.concat(chunks);
    await daemon.docker.getImage(tags.loaded).remove();
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('verifies images loaded, tagged and built after it started', async () => {
    const w = watcherOn(stateDir);
    await w.watcher.start();
    try {
      expect(
        w.verdictFor(ids[tags.enforced] as string, (v) => v.trigger === 'startup'),
      ).toMatchObject({ result: { status: 'TRUSTED', names: [tags.enforced] }, changed: true });
      const loaded = ids[tags.loaded] as string;
      expect(w.verdictFor(loaded, () => true)).toBeUndefined();
      const output = await daemon.docker.loadImage(Readable.from([loadedArchive]), {});
      // The load is done when its output ends.
      await finished(output.resume());
      await w.until(
        'the loaded image',
        () => !!w.verdictFor(loaded, (v) => v.trigger === 'image load'),
      );
      expect(w.verdictFor(loaded, (v) => v.trigger === 'image load')?.result).toMatchObject({
        status: 'TRUSTED',
        signer: signerId,
      });
      await daemon.docker.getImage(loaded).tag({ repo: 'ghcr.io/example/loaded/app', tag: '2' });
      await w.until('the tag', () =>
        w.verdicts.some((v) => v.trigger === 'image tag' && v.result.names.length === 2),
      );
      const fresh = await build('ghcr.io/example/fresh:1');
      await w.until('the new image', () => !!w.verdictFor(fresh, () => true));
      expect(w.verdictFor(fresh, () => true)).toMatchObject({
        result: { status: 'UNKNOWN', requirement: { match: 'ghcr.io/example/**', mode: 'warn' } },
        decision: { action: 'warn' },
        changed: true,
      });
      expect(w.watcher.latest.get(fresh)?.result.status).toBe('UNKNOWN');
    } finally {
      await w.watcher.stop();
    }
  });

  it('retries with backoff until Docker is there, reconnects when dockerd restarts, and events resume', async () => {
    // The watcher's socket is a symlink: dangling at first, then pointed at dockerd.
    const dir = await mkdtemp(join(tmpdir(), 'vouch-watch-sock-'));
    const link = join(dir, 'docker.sock');
    await symlink(join(dir, 'not-yet.sock'), link);
    const docker = new (daemon.docker.constructor as typeof Docker)({ socketPath: link });
    const w = watcherOn(stateDir, { docker });
    await w.watcher.start();
    try {
      await w.until('five tries', () => w.connections.length >= 5);
      // Doubling from 50 ms, capped at 400 ms.
      expect(w.connections.slice(0, 5)).toEqual([50, 100, 200, 400, 400]);
      expect(w.verdicts).toEqual([]);
      await symlink(daemon.socketPath, `${link}.new`);
      await rename(`${link}.new`, link);
      await w.until('connected', () => w.connections.includes('connected'));
      const tries = w.connections.length;
      await daemon.restart();
      await w.until(
        'a reconnect',
        () => w.connections.filter((c) => c === 'connected').length === 2,
      );
      // A successful check set the delay back to the first one.
      expect(w.connections[tries]).toBe(50);
      await w.until('the check after reconnecting', () =>
        w.verdicts.some((v) => v.trigger === 'reconnect'),
      );
      // Docker being away is no verdict: nothing "could not check" was emitted for it.
      expect(w.verdicts.filter((v) => v.result.status === null)).toEqual([]);
      const after = await build('ghcr.io/example/after-restart:1');
      await w.until(
        'an event after the restart',
        () => !!w.verdictFor(after, (v) => v.trigger === 'image tag'),
      );
    } finally {
      await w.watcher.stop();
    }
  });

  it('after a sync with revocations: stops (enforce), reports (warn), lets an allowed image run; stops a restart again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vouch-watch-state-'));
    await sync(dir);
    await addAllowEntry(dir, {
      image: ids[tags.allowed] as string,
      name: tags.allowed,
      reason: 'the vendor fix is not out yet',
      at: '2026-01-01T00:00:00Z',
      by: 'root',
    });
    const [enforced, warned, allowed] = await Promise.all([
      runContainer(tags.enforced, 'enforced'),
      runContainer(tags.warned, 'warned'),
      runContainer(tags.allowed, 'allowed'),
    ]);
    const w = watcherOn(dir);
    await w.watcher.start();
    try {
      expect(w.actions).toEqual([]);
      let seconds = 100;
      for (const tag of [tags.enforced, tags.warned, tags.allowed]) {
        await sign(tag, 'revoked', seconds++);
      }
      await sync(dir);
      // No restart: the commit is seen through fs.watch (the poll is 10 minutes here).
      await w.until('three actions', () => w.actions.length === 3);
      for (const tag of [tags.enforced, tags.warned, tags.allowed]) {
        expect(w.watcher.latest.get(ids[tag] as string)).toMatchObject({
          result: { status: 'REVOKED' },
          trigger: 'state',
          changed: true,
        });
      }
      const byName = Object.fromEntries(w.actions.map((a) => [a.container.name, a]));
      expect(byName.enforced).toMatchObject({
        action: 'stopped',
        status: 'REVOKED',
        mode: 'enforce',
      });
      expect(byName.warned).toMatchObject({ action: 'warned', status: 'REVOKED', mode: 'warn' });
      expect(byName.allowed).toMatchObject({
        action: 'allowed',
        status: 'REVOKED',
        allowedBy: { reason: 'the vendor fix is not out yet' },
      });
      expect(await running(enforced)).toBe(false);
      expect(await running(warned)).toBe(true);
      expect(await running(allowed)).toBe(true);
      const logged = (msg: RegExp) => w.lines.filter((line) => msg.test(String(line.msg)));
      expect(logged(/^stopped container enforced$/)[0]).toMatchObject({
        image: ids[tags.enforced],
        container: 'enforced',
        reason: expect.stringMatching(/^REVOKED: /),
      });
      expect(logged(/^override: container allowed/)[0]).toMatchObject({
        image: ids[tags.allowed],
        allowReason: 'the vendor fix is not out yet',
        allowedBy: 'root',
      });

      await enforced.start();
      await w.until(
        'the restarted container stopped again',
        () => w.actions.filter((a) => a.container.name === 'enforced').length === 2,
      );
      expect(await running(enforced)).toBe(false);
      expect(w.watcher.latest.get(ids[tags.enforced] as string)).toMatchObject({
        trigger: 'container start',
        container: { name: 'enforced' },
      });
      // The override is logged each time it applies: a restart of the allowed container too.
      await allowed.restart();
      await w.until('the override logged again', () => logged(/^override:/).length === 2);
      expect(await running(allowed)).toBe(true);
    } finally {
      await w.watcher.stop();
      for (const c of [enforced, warned, allowed]) await c.remove({ force: true });
    }
  });

  it('could not check: follows couldNotCheck, never acts as for UNTRUSTED; no Docker is an error, no verdict', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'vouch-watch-empty-'));
    const container = await runContainer(tags.enforced, 'unchecked');
    try {
      for (const [couldNotCheck, action] of [
        ['off', undefined],
        ['warn', 'warned'],
        ['enforce', 'stopped'],
      ] as const) {
        const w = watcherOn(empty, { couldNotCheck });
        const { verdicts, actions } = await w.watcher.checkOnce();
        const verdict = verdicts.find((v) => v.result.id === ids[tags.enforced]);
        expect(verdict?.result).toMatchObject({ status: null, error: { code: 'NO_TRUST_STATE' } });
        // The scope says enforce; the decision follows couldNotCheck.
        expect(verdict?.decision.mode).toBe(couldNotCheck);
        const mine = actions.filter((a) => a.container.name === 'unchecked');
        expect(mine.map((a) => a.action)).toEqual(action ? [action] : []);
        for (const a of mine) {
          expect(a.status).toBeNull();
          expect(a.reason).toMatch(/^could not check: /);
        }
        expect(await running(container)).toBe(couldNotCheck !== 'enforce');
      }
      const gone = new (daemon.docker.constructor as typeof Docker)({
        socketPath: join(empty, 'no.sock'),
      });
      const w = new ImageWatcher({
        docker: gone,
        stateDir,
        policy: policy(),
        logger: pino({ level: 'silent' }),
      });
      await rejectsWith(w.checkOnce(), 'UNAVAILABLE');
    } finally {
      await container.remove({ force: true });
    }
  });

  it('picks up a state dir that appears later through its poll', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'vouch-watch-late-')), 'state');
    const w = watcherOn(dir, { pollMs: 100 });
    await w.watcher.start();
    try {
      const id = ids[tags.loaded] as string;
      expect(w.verdictFor(id, (v) => v.trigger === 'startup')?.result.status).toBeNull();
      await sync(dir);
      await w.until(
        'the verdict under the new state',
        () => !!w.verdictFor(id, (v) => v.trigger === 'state' && v.result.status === 'TRUSTED'),
      );
    } finally {
      await w.watcher.stop();
    }
  });
});

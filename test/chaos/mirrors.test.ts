import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initLog, publicDir } from '../../agent/ledger';
import { type RunningAgent, startAgent, stopAgent } from '../device/agent/harness';
import { digestOf, grow, statement, syncedDevice, testWorld, type World } from '../helpers/device';
import { alteredTile, badSignature, truncatedTile } from '../helpers/lies';
import { testOrigin } from '../helpers/log';
import { copyOf, count, random } from './chaos';

/**
 * Every class of lying mirror (test/device/sync/sync.test.ts has them one by one against
 * a sync) under a running agent whose only mirror it is: the device holds 300 entries, the
 * log has 600. After each `POST /v1/sync`, `GET /v1/status` says what went wrong (the error
 * code of the last attempt, a fork as a fork) and the verdicts stay those of the last good
 * state: statement 0 TRUSTED, statement 450 (only in the newer log) UNKNOWN, statement 299
 * (untrusted in the fork) TRUSTED. Then the mirror tells the truth and the agent takes it.
 * The full run goes through the classes several times in a random order (seeded).
 */

type Lie =
  | 'rollback'
  | 'fork'
  | 'bad-signature'
  | 'withheld'
  | 'wrong-tile'
  | 'truncated'
  | 'hanging'
  | 'garbage';

/** The error code of the failed sync, or undefined where the sync "succeeds" with no news. */
const expected: Record<Lie, string | undefined> = {
  rollback: 'LOG_ROLLBACK',
  fork: 'LOG_FORK',
  'bad-signature': 'NOTE_UNVERIFIED',
  // The device's own checkpoint again: nothing new, which a mirror may always say.
  withheld: undefined,
  'wrong-tile': 'TILE_INVALID',
  truncated: 'TILE_INVALID',
  hanging: 'UNAVAILABLE',
  garbage: 'NOTE_INVALID',
};

const draw = random('lying mirrors');
let world: World;
let device: string;
/** The log's checkpoints at 100 entries (a rollback for the device) and at 300 (its own). */
let checkpointAt100: Buffer;
let checkpointAt300: Buffer;
let forkDir: string;
let lie: Lie | undefined;
let server: ReturnType<typeof createServer>;
let url: string;
const removed: string[] = [];

async function answer(path: string): Promise<Buffer | 'hang' | undefined> {
  if (lie === 'hanging') return 'hang';
  const dir = lie === 'fork' ? forkDir : publicDir(world.logDir);
  let body: Buffer | undefined = await readFile(join(dir, path)).catch(() => undefined);
  if (body === undefined) return undefined;
  if (path === 'checkpoint') {
    if (lie === 'rollback') return checkpointAt100;
    if (lie === 'withheld') return checkpointAt300;
    if (lie === 'garbage') return Buffer.from(Array.from({ length: 200 }, () => draw() * 256));
    if (lie === 'bad-signature') body = badSignature(body, testOrigin);
  }
  if (path.startsWith('tile/0/')) {
    if (lie === 'truncated') body = truncatedTile(body);
    if (lie === 'wrong-tile') body = alteredTile(body);
  }
  return body;
}

beforeAll(async () => {
  world = await testWorld();
  const checkpoint = () => readFile(join(publicDir(world.logDir), 'checkpoint'));
  await grow(world, 100);
  checkpointAt100 = await checkpoint();
  await grow(world, 200);
  device = await syncedDevice(world);
  removed.push(device);
  checkpointAt300 = await checkpoint();
  // The fork: the same key and origin, entry 299 untrusted instead, then 300 more.
  const forked = join(await mkdtemp(join(tmpdir(), 'vouch-chaos-fork-')), 'log');
  await initLog(forked, testOrigin, world.logKeyPath, world.logKey);
  const fork: World = { ...world, logDir: forked, size: 0 };
  await grow(fork, 0, [
    ...Array.from({ length: 299 }, (_, i) => statement(world, i)),
    statement(world, 299, 'untrusted'),
  ]);
  await grow(fork, 300);
  forkDir = publicDir(forked);
  await grow(world, 300);
  server = createServer(async (request, response) => {
    const body = await answer((request.url ?? '/').slice(1));
    if (body === 'hang') return;
    if (body === undefined) response.writeHead(404).end();
    else response.writeHead(200, { 'Content-Length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}, 120_000);

afterAll(async () => {
  server?.closeAllConnections();
  server?.close();
  for (const dir of removed) await rm(dir, { recursive: true, force: true });
});

async function statusOf(agent: RunningAgent) {
  return (await agent.request('GET', '/v1/status')).body as Record<string, unknown> & {
    size: number;
    fork: boolean;
    lastSync: { ok: boolean; error?: { code: string } } | null;
    overall: { status: string; reasons: string[] };
  };
}

async function verdict(agent: RunningAgent, i: number): Promise<string> {
  const answered = await agent.request('POST', '/v1/verify', { digest: `sha256:${digestOf(i)}` });
  return (answered.body as { results: { status: string }[] }).results[0]?.status as string;
}

describe('lying mirrors under a running agent', () => {
  it('each lie reported for what it is; the verdicts stay those of the last good state', async () => {
    const stateDir = await copyOf(device);
    removed.push(stateDir);
    const agent = await startAgent({
      stateDir,
      mirrors: [url],
      sync: { schedule: '0 0 1 1 *', timeout: '1s' },
    });
    try {
      const lies = Object.keys(expected) as Lie[];
      const order = Array.from({ length: count(1, 4) }, () =>
        [...lies].sort(() => draw() - 0.5),
      ).flat();
      for (const [n, current] of order.entries()) {
        lie = current;
        const synced = await agent.request('POST', '/v1/sync');
        const status = await statusOf(agent);
        const what = `${n}: ${current}: ${JSON.stringify(status.lastSync)}`;
        const code = expected[current];
        if (code === undefined) {
          expect(synced.status, what).toBe(200);
          expect(status.lastSync?.ok, what).toBe(true);
        } else {
          expect(synced.status, what).not.toBe(200);
          expect(status.lastSync, what).toMatchObject({ ok: false, error: { code } });
        }
        expect(status.size, what).toBe(300);
        // A fork stays reported (until vouch fork clear); nothing else is one.
        if (current === 'fork') expect(status.fork, what).toBe(true);
        expect(status.overall.status, what).not.toBe('violation');
        expect(await verdict(agent, 0), what).toBe('TRUSTED');
        expect(await verdict(agent, 299), what).toBe('TRUSTED');
        expect(await verdict(agent, 450), what).toBe('UNKNOWN');
      }
      lie = undefined;
      const synced = await agent.request('POST', '/v1/sync');
      expect(synced.status).toBe(200);
      expect((await statusOf(agent)).size).toBe(600);
      expect(await verdict(agent, 450)).toBe('TRUSTED');
    } finally {
      expect((await stopAgent(agent)).code).toBe(0);
    }
  }, 300_000);
});

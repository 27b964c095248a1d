import { cp, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VouchError } from '../../../agent/core/errors';
import { readForkEvidence, syncFromMirrors, verdictFor } from '../../../agent/device';
import { initLog, type LogServer, publicDir, serveLog } from '../../../agent/ledger';
import { createLogger } from '../../../agent/logger';
import { runCli } from '../../helpers/cli';
import { digestOf, grow, statement, stateOf, testWorld, type World } from '../../helpers/device';
import { alteredTile, badSignature, truncatedTile } from '../../helpers/lies';
import { testOrigin } from '../../helpers/log';

/**
 * Sync against a real `vouch log serve` mirror and a faulty one written for these tests.
 * The device is first synced to 300 entries; the log then grows to 600; each fault must
 * leave the state exactly as it was, fail with a clear error, and a good mirror listed
 * after the faulty one must still bring the device to 600.
 */

const logger = createLogger('cli', 'silent');
let world: World;
let good: LogServer;
let faulty: { url: string; server: Server };
let baseState: string;
let oldCheckpoint: Buffer;
let sameSizeFork: string;
let largerFork: string;

type Fault =
  | 'none'
  | 'timeout'
  | 'http-500'
  | 'truncated-tile'
  | 'altered-tile'
  | 'altered-bundle'
  | 'bad-signature'
  | 'rollback'
  | 'fork-same-size'
  | 'fork-larger'
  | 'oversized-checkpoint'
  | 'oversized-tile';
let fault: Fault = 'none';

/** Serves the log's published files, with the current fault applied. */
function startFaultyMirror(): Promise<{ url: string; server: Server }> {
  const server = createServer(async (request, response) => {
    const path = (request.url ?? '/').slice(1);
    if (fault === 'timeout') return; // never answers
    if (fault === 'http-500') {
      response.writeHead(500).end('internal error');
      return;
    }
    const dir =
      fault === 'fork-same-size'
        ? sameSizeFork
        : fault === 'fork-larger'
          ? largerFork
          : publicDir(world.logDir);
    let body: Buffer;
    try {
      body = await readFile(join(dir, path));
    } catch {
      response.writeHead(404).end();
      return;
    }
    if (path === 'checkpoint') {
      if (fault === 'rollback') body = oldCheckpoint;
      if (fault === 'bad-signature') body = badSignature(body, testOrigin);
      if (fault === 'oversized-checkpoint') body = Buffer.alloc(1024 * 1024, 0x41);
    }
    if (path.startsWith('tile/0/')) {
      if (fault === 'truncated-tile') body = truncatedTile(body);
      if (fault === 'altered-tile') body = alteredTile(body);
      if (fault === 'oversized-tile') body = Buffer.concat([body, Buffer.alloc(1024 * 1024)]);
    }
    if (path.startsWith('tile/entries/') && fault === 'altered-bundle') {
      body = alteredTile(body, 20);
    }
    response.writeHead(200, { 'Content-Length': body.length }).end(body);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}/`, server });
    });
  });
}

/** Every file of the state dir except the sync report, by name. */
async function snapshotOf(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of await readdir(dir, { recursive: true })) {
    if (name === 'status.json' || name === 'roots') continue;
    files[name] = (await readFile(join(dir, name))).toString('base64');
  }
  return files;
}

async function freshCopy(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vouch-state-'));
  await cp(baseState, dir, { recursive: true });
  return dir;
}

function sync(stateDir: string, mirrors: string[], timeoutMs = 500) {
  return syncFromMirrors({ stateDir, mirrors, timeoutMs, maxBundleBytes: 1 << 24, logger });
}

/** A log with the same key and origin as the world's, whose entry 299 differs. */
async function forkedLog(): Promise<{ publish: (extra: number) => Promise<string> }> {
  const dir = join(await mkdtemp(join(tmpdir(), 'vouch-fork-')), 'log');
  await initLog(dir, testOrigin, world.logKeyPath, world.logKey);
  const fork: World = { ...world, logDir: dir, size: 0 };
  await grow(fork, 0, [
    ...Array.from({ length: 299 }, (_, i) => statement(world, i)),
    statement(world, 299, 'untrusted'),
  ]);
  return {
    async publish(extra) {
      if (extra > 0) await grow(fork, extra);
      const copy = await mkdtemp(join(tmpdir(), 'vouch-fork-public-'));
      await cp(publicDir(dir), copy, { recursive: true });
      return copy;
    },
  };
}

beforeAll(async () => {
  world = await testWorld({ witness: true });
  await grow(world, 300);
  oldCheckpoint = await readFile(join(publicDir(world.logDir), 'checkpoint'));
  baseState = await mkdtemp(join(tmpdir(), 'vouch-base-'));
  const first = await runCli([
    'sync',
    '--state-dir',
    baseState,
    '--root',
    world.rootPath,
    '--mirror',
    world.mirror,
  ]);
  expect(first.exitCode, first.stderr).toBe(0);
  const fork = await forkedLog();
  sameSizeFork = await fork.publish(0);
  largerFork = await fork.publish(100);
  await grow(world, 300);
  good = await serveLog(world.logDir, { port: 0 });
  faulty = await startFaultyMirror();
}, 120_000);

afterAll(async () => {
  await good?.close();
  faulty?.server.closeAllConnections();
  faulty?.server.close();
});

describe('vouch sync', () => {
  it('syncs from a real vouch log serve mirror, incrementally, and answers lookups', async () => {
    const dir = await freshCopy();
    const report = await sync(dir, [good.url]);
    expect(report).toMatchObject({ previousSize: 300, size: 600, added: 300, indexed: 300 });
    const state = await stateOf(dir);
    expect(state.checkpoint.checkpoint.size).toBe(600);
    expect(state.index.rows).toBe(600);
    const verdict = verdictFor(state, digestOf(450), Date.now());
    expect(verdict).toMatchObject({ outcome: 'status', status: 'TRUSTED' });
    expect(verdictFor(state, digestOf(9999), Date.now())).toMatchObject({ status: 'UNKNOWN' });
    // A second sync finds nothing new and changes nothing.
    const before = await snapshotOf(dir);
    expect(await sync(dir, [good.url])).toMatchObject({ previousSize: 600, size: 600, added: 0 });
    expect(await snapshotOf(dir)).toEqual(before);
  });

  const cases: [Fault, string, RegExp][] = [
    ['timeout', 'UNAVAILABLE', /within 500 ms/],
    ['http-500', 'UNAVAILABLE', /HTTP 500/],
    ['truncated-tile', 'TILE_INVALID', /tile\/0\/001 is 8185 bytes, expected 8192/],
    [
      'altered-tile',
      'TILE_INVALID',
      /entry 511 in tile\/entries\/001 does not hash to its tile, tile\/0\/001$/,
    ],
    [
      'altered-bundle',
      'TILE_INVALID',
      /entry 511 in tile\/entries\/001 does not hash to its tile, tile\/0\/001$/,
    ],
    ['bad-signature', 'NOTE_UNVERIFIED', /does not verify/],
    ['rollback', 'LOG_ROLLBACK', /tree of 300 entries; this device has verified 600/],
    ['oversized-checkpoint', 'PAYLOAD_TOO_LARGE', /checkpoint is over 262144 bytes/],
    ['oversized-tile', 'PAYLOAD_TOO_LARGE', /tile\/0\/001 is over 8192 bytes/],
  ];
  for (const [name, code, message] of cases) {
    it(`refuses a mirror with ${name}: state unchanged, clear error, failover works`, async () => {
      const dir = await freshCopy();
      if (name === 'rollback') await sync(dir, [good.url]);
      const before = await snapshotOf(dir);
      fault = name;
      try {
        const error = await sync(dir, [faulty.url]).then(
          () => expect.unreachable('the faulty mirror was accepted'),
          (e: unknown) => e as VouchError,
        );
        expect(error).toBeInstanceOf(VouchError);
        expect(error.code).toBe(code);
        expect(error.message).toMatch(message);
        expect(error.message).toContain(faulty.url);
        expect(await snapshotOf(dir)).toEqual(before);

        const report = await sync(dir, [faulty.url, good.url]);
        expect(report.size).toBe(600);
        expect(report.mirrors.map((m) => [m.url, m.ok, m.error?.code])).toEqual([
          [faulty.url, false, code],
          [good.url, true, undefined],
        ]);
      } finally {
        fault = 'none';
      }
    });
  }

  for (const kind of ['fork-same-size', 'fork-larger'] as const) {
    it(`detects a ${kind}: state kept, evidence saved and reported until cleared`, async () => {
      const dir = await freshCopy();
      const before = await snapshotOf(dir);
      fault = kind;
      try {
        const failed = await runCli(['sync', '--state-dir', dir, '--mirror', faulty.url]);
        expect(failed.exitCode).toBe(65);
        expect(failed.stderr).toMatch(/fork: .* both log-signed checkpoints are saved as evidence/);
        expect(await snapshotOf(dir)).toMatchObject(before);
        const evidence = await readForkEvidence(dir);
        expect(evidence).toHaveLength(1);
        expect(evidence[0]?.local).toBe(oldCheckpoint.toString('utf8'));
        expect(evidence[0]?.remote).toMatch(
          kind === 'fork-larger'
            ? /^log\.example\.org\/vouch\n400\n/
            : /^log\.example\.org\/vouch\n300\n/,
        );
        if (kind === 'fork-larger') expect(evidence[0]?.proof?.length).toBeGreaterThan(0);

        // Syncing on along the device's own tree works; the fork stays reported.
        const resumed = await runCli([
          'sync',
          '--state-dir',
          dir,
          '--mirror',
          faulty.url,
          '--mirror',
          good.url,
        ]);
        expect(resumed.exitCode, resumed.stderr).toBe(0);
        const status = JSON.parse(
          (await runCli(['status', '--state-dir', dir, '-o', 'json'])).stdout,
        );
        expect(status).toMatchObject({ origin: testOrigin, size: 600, stale: false });
        expect(status.fork).toHaveLength(1);
        expect(status.mirrors.slice(0, 2).map((m: { ok: boolean }) => m.ok)).toEqual([false, true]);

        const cleared = await runCli(['fork', 'clear', '--state-dir', dir, '-o', 'json']);
        expect(JSON.parse(cleared.stdout)).toEqual({ cleared: 1 });
        const after = JSON.parse(
          (await runCli(['status', '--state-dir', dir, '-o', 'json'])).stdout,
        );
        expect(after.fork).toBeUndefined();
      } finally {
        fault = 'none';
      }
    });
  }

  it('needs a first root, and refuses one that is not self-signed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vouch-state-'));
    const none = await runCli(['sync', '--state-dir', dir, '--mirror', good.url]);
    expect(none.exitCode).toBe(64);
    expect(none.stderr).toMatch(/--root ROOT/);
    const forged = join(dir, 'forged.json');
    const envelope = JSON.parse(await readFile(world.rootPath, 'utf8'));
    envelope.signatures = [];
    await writeFile(forged, JSON.stringify(envelope));
    const bad = await runCli(['sync', '--state-dir', dir, '--root', forged, '--mirror', good.url]);
    expect(bad.exitCode).toBe(65);
    // The device's own problem, said once: not a failure of the mirror.
    expect(bad.stderr).toMatch(new RegExp(`^vouch: trust root ${forged}: `));
    expect(bad.stderr).not.toContain('mirror');
    expect(await readdir(dir)).not.toContain('checkpoint.json');
  });
});

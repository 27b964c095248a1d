import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HashPool } from '../../../agent/content/pool';
import type { Digester } from '../../../agent/device/verify/chunked';
import { verifySubjects } from '../../../agent/device/verify/verify';
import { runCli } from '../../helpers/cli';
import { digestOf, grow, signerId, testWorld, type World } from '../../helpers/device';

/**
 * verifySubjects against a device synced to a three-statement log: verdicts with their
 * statement, staleness, could-not-check outcomes (no state, damaged state, expired root,
 * unreadable file), the signer filter, progress, and no socket opened.
 */

const day = 24 * 3600 * 1000;
const maxAge = 7 * day;
let world: World;
let stateDir: string;
let files: string;
const connect = vi.spyOn(Socket.prototype, 'connect');

beforeAll(async () => {
  world = await testWorld();
  await grow(world, 3);
  stateDir = await mkdtemp(join(tmpdir(), 'vouch-verify-'));
  const synced = await runCli([
    'sync',
    '--state-dir',
    stateDir,
    '--root',
    world.rootPath,
    '--mirror',
    world.mirror,
  ]);
  expect(synced.exitCode, synced.stderr).toBe(0);
  files = await mkdtemp(join(tmpdir(), 'vouch-verify-files-'));
  // digestOf(i) is the SHA-256 of "subject i".
  await writeFile(join(files, 'one'), 'subject 1');
  await writeFile(join(files, 'other'), 'not logged');
  connect.mockClear();
});

afterAll(() => {
  // Nothing in here may touch the network: local state and local files only.
  expect(connect).not.toHaveBeenCalled();
  connect.mockRestore();
});

describe('verifySubjects', () => {
  it('answers digests from the index: status, signer, name, log index, time', async () => {
    const report = await verifySubjects([{ sha256: digestOf(2) }, { sha256: digestOf(99) }], {
      stateDir,
      maxAge,
    });
    expect(report).toMatchObject({ state: 'ok', stale: false, size: 3, rootVersion: 1 });
    expect(report.results[0]).toEqual({
      subject: `sha256:${digestOf(2)}`,
      digest: 'sha256',
      sha256: digestOf(2),
      merkle: null,
      size: null,
      status: 'TRUSTED',
      code: 0,
      signer: signerId,
      name: 'ghcr.io/example/app-2:1.0',
      logIndex: 2,
      issuedAt: '2025-06-01T00:00:02Z',
      reason: expect.stringMatching(/marked trusted by notary@example.org/),
      ignored: [],
    });
    expect(report.results[1]).toMatchObject({ status: 'UNKNOWN', code: 2, signer: null });
  });

  it('hashes files with the pool and reports progress', async () => {
    const progress = vi.fn();
    const report = await verifySubjects(
      [{ file: join(files, 'one') }, { file: join(files, 'other') }],
      { stateDir, maxAge, onProgress: progress },
    );
    expect(report.results.map((r) => [r.status, r.sha256, r.size])).toEqual([
      ['TRUSTED', digestOf(1), 9],
      ['UNKNOWN', expect.stringMatching(/^[0-9a-f]{64}$/), 10],
    ]);
    expect(progress).toHaveBeenCalledWith(join(files, 'one'), 9);
  });

  it("hashes files with the caller's digester, and leaves it open", async () => {
    const pool = new HashPool({ workers: 1, chunkSize: 4096, inFlightBytes: 8192 });
    try {
      const hashed: string[] = [];
      const digester: Digester = {
        hash: (path, onProgress) => {
          hashed.push(path);
          return pool.hash(path, onProgress);
        },
        hashChunked: (path, leafSize, onProgress) => pool.hashChunked(path, leafSize, onProgress),
      };
      const report = await verifySubjects([{ file: join(files, 'one') }, { sha256: digestOf(2) }], {
        stateDir,
        maxAge,
        digester,
      });
      expect(report.results.map((r) => [r.status, r.sha256])).toEqual([
        ['TRUSTED', digestOf(1)],
        ['TRUSTED', digestOf(2)],
      ]);
      expect(hashed).toEqual([join(files, 'one')]);
      expect((await pool.hash(join(files, 'one'))).sha256).toBe(digestOf(1));
    } finally {
      await pool.close();
    }
  });

  it('a file that cannot be read could not be checked (IO), the others still are', async () => {
    const report = await verifySubjects(
      [{ file: join(files, 'missing') }, { file: join(files, 'one') }],
      { stateDir, maxAge },
    );
    expect(report.results[0]).toMatchObject({
      status: null,
      code: null,
      sha256: null,
      error: { code: 'IO' },
    });
    expect(report.results[1]).toMatchObject({ status: 'TRUSTED' });
  });

  it('counts only the given signer when asked', async () => {
    const report = await verifySubjects([{ sha256: digestOf(0) }], {
      stateDir,
      maxAge,
      signer: 'someone-else@example.org',
    });
    expect(report.results[0]).toMatchObject({ status: 'UNKNOWN', ignored: [] });
    const own = await verifySubjects([{ sha256: digestOf(0) }], {
      stateDir,
      maxAge,
      signer: signerId,
    });
    expect(own.results[0]).toMatchObject({ status: 'TRUSTED', signer: signerId });
  });

  it('stale state still answers, and says it is stale', async () => {
    const later = Date.now() + 8 * day;
    const report = await verifySubjects([{ sha256: digestOf(0) }], {
      stateDir,
      maxAge,
      clock: () => later,
    });
    expect(report.stale).toBe(true);
    expect(report.freshSince).not.toBeNull();
    expect(report.results[0]).toMatchObject({ status: 'TRUSTED' });
  });

  it('an expired root: could not check (CANNOT_CHECK), never UNTRUSTED', async () => {
    const report = await verifySubjects([{ sha256: digestOf(0) }], {
      stateDir,
      maxAge,
      clock: () => Date.parse('2100-01-01T00:00:00Z'),
    });
    expect(report.results[0]).toMatchObject({
      status: null,
      error: { code: 'CANNOT_CHECK', message: expect.stringMatching(/expired/) },
    });
  });

  it('no state: every subject could not be checked, and files are not read', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'vouch-nostate-'));
    const report = await verifySubjects(
      [{ file: join(files, 'missing') }, { sha256: digestOf(0) }],
      { stateDir: empty, maxAge },
    );
    expect(report).toMatchObject({ state: 'missing', stale: true, size: null });
    for (const result of report.results) {
      expect(result).toMatchObject({ status: null, error: { code: 'NO_TRUST_STATE' } });
    }
  });

  it('a damaged state: could not check (STATE_INVALID)', async () => {
    const broken = await mkdtemp(join(tmpdir(), 'vouch-broken-'));
    await mkdir(broken, { recursive: true });
    await writeFile(join(broken, 'checkpoint.json'), '{"format":');
    const report = await verifySubjects([{ sha256: digestOf(0) }], { stateDir: broken, maxAge });
    expect(report.state).toBe('invalid');
    expect(report.results[0]?.error?.code).toBe('STATE_INVALID');
  });
});

import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { signCheckpoint } from '../../agent/core/checkpoint';
import { cosignNote, logCosigner, maxTimestamp } from '../../agent/core/cosignature';
import { serializeEnvelope } from '../../agent/core/dsse';
import { KeyType, namePublicKey } from '../../agent/core/keys';
import { formatNote, parseNote } from '../../agent/core/note';
import {
  deviceStatus,
  freshness,
  importSnapshot,
  loadState,
  syncFromMirrors,
  verdictFor,
} from '../../agent/device';
import { verifyCheckpoint } from '../../agent/device/store/state';
import { openTrust } from '../../agent/device/verify/verify';
import { exportLogSnapshot, publicDir, publishLog, serveLog } from '../../agent/ledger';
import { createLogger } from '../../agent/logger';
import {
  digestOf,
  grow,
  signerId,
  statement,
  stateOf,
  testWorld,
  type World,
} from '../helpers/device';
import { failure, rejectsWith } from '../helpers/errors';
import { testOrigin } from '../helpers/log';
import { signRoot, testKey, testRoot } from '../helpers/trust';

const logger = createLogger('cli', 'silent');
const day = 86_400_000;
const sync = (stateDir: string, mirror: string, clock: () => number, rootPath?: string) =>
  syncFromMirrors({
    stateDir,
    mirrors: [mirror],
    rootPath,
    timeoutMs: 5000,
    maxBundleBytes: 1 << 24,
    logger,
    clock,
  });
const importFile = (stateDir: string, file: string, clock: () => number, rootPath?: string) =>
  importSnapshot({
    file,
    stateDir,
    rootPath,
    maxBytes: 1 << 30,
    maxBundleBytes: 1 << 24,
    logger,
    clock,
  });
const exportLog = (world: World, out: string) =>
  exportLogSnapshot({
    out,
    logDir: world.logDir,
    maxBytes: 1 << 30,
    maxBundleBytes: 1 << 24,
  });

/**
 * Drops the log's cosignature line from the published checkpoint of `logDir` (the world's
 * log, or a copy): a publisher that did not sign its times yet, or a hostile mirror.
 */
async function dropLogCosignature(world: World, logDir = world.logDir): Promise<void> {
  const path = join(publicDir(logDir), 'checkpoint');
  const note = parseNote(await readFile(path));
  const own = logCosigner(namePublicKey(testOrigin, world.logKey.raw));
  const signatures = note.signatures.filter((line) => Buffer.compare(line.keyId, own.keyId) !== 0);
  await writeFile(path, formatNote({ ...note, signatures }));
}

/** A copy of the world's log directory, as it is now. */
async function copyOfLog(world: World): Promise<string> {
  const copy = join(await mkdtemp(join(tmpdir(), 'vouch-copy-')), 'log');
  await cp(world.logDir, copy, { recursive: true });
  return copy;
}

describe('freshness and the clock floor', () => {
  it('takes the newest cosignature time as the floor: a device booting at 1970 neither expires everything nor goes back', async () => {
    const world = await testWorld({ witness: true });
    const cosigned = new Date('2031-03-01T00:00:00Z');
    await grow(world, 20, undefined, cosigned);
    const dir = await mkdtemp(join(tmpdir(), 'vouch-floor-'));
    const epoch = () => 0;
    await sync(dir, world.mirror, () => Date.parse('2031-03-01T00:00:00Z'), world.rootPath);
    const state = await loadState(dir);
    expect(state?.clockFloor).toBe(cosigned.getTime() + 20_000);

    // The clock says 1970: "now" is the floor, the root (expiring 2099) is valid, fresh.
    const status = await deviceStatus(dir, 7 * day, epoch);
    expect(status).toMatchObject({
      stale: false,
      now: '2031-03-01T00:00:20Z',
      checkpointTime: '2031-03-01T00:00:20Z',
    });
    expect(
      verdictFor(await stateOf(dir), digestOf(3), status.now ? Date.parse(status.now) : 0),
    ).toMatchObject({
      status: 'TRUSTED',
    });
    // Eight days past the checkpoint's time, with no newer checkpoint: stale, still answering.
    const later = await deviceStatus(dir, 7 * day, () => cosigned.getTime() + 8 * day);
    expect(later.stale).toBe(true);

    // A larger tree cosigned before the floor is old data: refused like a rollback.
    await grow(world, 5, undefined, new Date('2030-01-01T00:00:00Z'));
    const refused = await sync(dir, world.mirror, epoch).catch((e: Error & { code?: string }) => e);
    expect((refused as { code?: string }).code).toBe('LOG_ROLLBACK');
    expect((refused as Error).message).toMatch(/before the newest time this device has seen/);
  });

  it("takes the log's own signed time without witnesses: a mirror replaying an old checkpoint does not refresh", async () => {
    const published = Date.parse('2026-02-01T00:00:00Z');
    const world = await testWorld({ createdAt: new Date(published) });
    await grow(world, 3, undefined, new Date(published));
    const dir = await mkdtemp(join(tmpdir(), 'vouch-freeze-'));
    await sync(dir, world.mirror, () => published + day, world.rootPath);
    expect(await deviceStatus(dir, 7 * day, () => published + 6 * day)).toMatchObject({
      stale: false,
      checkpointTime: '2026-02-01T00:00:00Z',
      checkpointAgeSeconds: 6 * 86_400,
    });
    // Eight days on, the mirror still serves the same checkpoint: synced, and stale.
    await sync(dir, world.mirror, () => published + 8 * day);
    expect(await deviceStatus(dir, 7 * day, () => published + 8 * day)).toMatchObject({
      stale: true,
      freshSince: '2026-02-01T00:00:00Z',
      checkpointAgeSeconds: 8 * 86_400,
    });

    // The publisher signs the same tree again: same size and root, a new time, fresh.
    const before = await stateOf(dir);
    await publishLog(world.logDir, world.logKey, new Date(published + 8 * day));
    expect(await sync(dir, world.mirror, () => published + 8 * day)).toMatchObject({
      size: 3,
      added: 0,
    });
    const after = await stateOf(dir);
    expect(after.checkpoint.checkpoint).toEqual(before.checkpoint.checkpoint);
    expect(after.clockFloor).toBe(published + 8 * day);
    expect(await deviceStatus(dir, 7 * day, () => published + 8 * day)).toMatchObject({
      stale: false,
      checkpointTime: '2026-02-09T00:00:00Z',
      checkpointAgeSeconds: 0,
    });
  });

  it('leaves an air-gapped device stale after importing an old snapshot: the time is the signed one', async () => {
    const published = Date.parse('2026-01-01T00:00:00Z');
    const world = await testWorld({ createdAt: new Date(published) });
    await grow(world, 3, undefined, new Date(published));
    const files = await mkdtemp(join(tmpdir(), 'vouch-snapshots-'));
    await exportLog(world, join(files, 'old.tar'));
    const dir = await mkdtemp(join(tmpdir(), 'vouch-airgap-'));
    const importedAt = published + 30 * day;
    await importFile(dir, join(files, 'old.tar'), () => importedAt, world.rootPath);
    const status = await deviceStatus(dir, 7 * day, () => importedAt);
    expect(status).toMatchObject({
      stale: true,
      checkpointTime: '2026-01-01T00:00:00Z',
      checkpointAgeSeconds: 30 * 86_400,
      freshSince: '2026-01-01T00:00:00Z',
    });
    expect((await openTrust(dir, 7 * day, () => importedAt)).summary.stale).toBe(true);

    // A snapshot of the same tree signed yesterday: imported, fresh.
    await publishLog(world.logDir, world.logKey, new Date(importedAt - day));
    await exportLog(world, join(files, 'new.tar'));
    await importFile(dir, join(files, 'new.tar'), () => importedAt);
    expect(await deviceStatus(dir, 7 * day, () => importedAt)).toMatchObject({
      stale: false,
      size: 3,
      checkpointAgeSeconds: 86_400,
    });
  });

  it('without any signed time (an older publisher, no witnesses): fresh since the last sync from a network mirror, never since an import or a file:// mirror', async () => {
    const world = await testWorld();
    await grow(world, 3);
    await dropLogCosignature(world);
    const dir = await mkdtemp(join(tmpdir(), 'vouch-unsigned-'));
    const at = Date.parse('2026-01-10T00:00:00Z');
    const server = await serveLog(world.logDir, { port: 0 });
    try {
      await sync(dir, server.url, () => at, world.rootPath);
    } finally {
      await server.close();
    }
    expect(await deviceStatus(dir, 7 * day, () => at + 6 * day)).toMatchObject({
      stale: false,
      checkpointTime: null,
      checkpointAgeSeconds: null,
      freshSince: '2026-01-10T00:00:00Z',
    });

    // Eight days later a sync from a file:// mirror (a USB stick) succeeds: no fresher.
    await sync(dir, world.mirror, () => at + 8 * day);
    expect(await deviceStatus(dir, 7 * day, () => at + 8 * day)).toMatchObject({
      stale: true,
      lastSuccess: { at: at + 8 * day, kind: 'sync', ok: true },
      freshSince: '2026-01-10T00:00:00Z',
    });

    // So is a snapshot of a larger tree imported then.
    await grow(world, 2);
    await dropLogCosignature(world);
    const file = join(await mkdtemp(join(tmpdir(), 'vouch-snapshots-')), 'unsigned.tar');
    await exportLog(world, file);
    await importFile(dir, file, () => at + 8 * day);
    const stale = await deviceStatus(dir, 7 * day, () => at + 8 * day);
    expect(stale).toMatchObject({ stale: true, size: 5, freshSince: '2026-01-10T00:00:00Z' });
    expect(stale.lastSuccess).toMatchObject({ at: at + 8 * day, kind: 'import' });
    expect((await openTrust(dir, 7 * day, () => at + 8 * day)).summary.stale).toBe(true);

    // A device that only ever imported has nothing to count from.
    const imported = await mkdtemp(join(tmpdir(), 'vouch-unsigned-'));
    await importFile(imported, file, () => at, world.rootPath);
    expect(await deviceStatus(imported, 7 * day, () => at)).toMatchObject({
      stale: true,
      freshSince: null,
    });
    expect((await deviceStatus(join(dir, 'none'), 7 * day)).stale).toBe(true);
  });
  it('refuses a checkpoint whose signed time a mirror stripped, once the device has seen one: a stale device stays stale', async () => {
    const published = Date.parse('2026-02-01T00:00:00Z');
    const world = await testWorld({ createdAt: new Date(published) });
    await grow(world, 1, undefined, new Date(published));
    const dir = await mkdtemp(join(tmpdir(), 'vouch-stripped-'));
    await sync(dir, world.mirror, () => published, world.rootPath);
    const later = published + 8 * day;
    const staleAtOne = { stale: true, size: 1, freshSince: '2026-02-01T00:00:00Z' };
    expect(await deviceStatus(dir, 7 * day, () => later)).toMatchObject(staleAtOne);

    // The log grows; a mirror on the network serves its checkpoint without the log's
    // cosignature line (`head -n 5 checkpoint`), the same tree, or the old one so stripped.
    const beforeGrowth = await copyOfLog(world);
    await dropLogCosignature(world, beforeGrowth);
    await grow(world, 1, undefined, new Date(later));
    const hostile = await copyOfLog(world);
    await dropLogCosignature(world, hostile);
    for (const logDir of [hostile, beforeGrowth]) {
      const server = await serveLog(logDir, { port: 0 });
      try {
        const refused = await rejectsWith(
          sync(dir, server.url, () => later),
          'LOG_ROLLBACK',
        );
        expect(refused.message).toMatch(
          /without a signed time, though this device has seen this log's signed times \(the newest 2026-02-01T00:00:00.000Z\): the log's cosignature line was stripped from it; try another mirror or snapshot/,
        );
      } finally {
        await server.close();
      }
      // Every later attempt is refused the same: nothing refreshes the device.
      expect(await deviceStatus(dir, 7 * day, () => later)).toMatchObject(staleAtOne);
    }

    // A state that holds such a checkpoint (taken by an earlier vouch) is stale, whatever
    // the last mirror sync: the fallback is only for a log that never gave a signed time.
    const state = await stateOf(dir);
    expect(freshness({ ...state, checkpointTime: undefined }, later, later, 7 * day)).toEqual({
      stale: true,
      since: undefined,
    });

    // The log's own mirror brings the signed time: fresh again.
    await sync(dir, world.mirror, () => later);
    expect(await deviceStatus(dir, 7 * day, () => later)).toMatchObject({
      stale: false,
      size: 2,
      checkpointTime: '2026-02-09T00:00:00Z',
    });
  });

  it('does not let a stripped signed time carry a larger but old tree past the clock floor', async () => {
    const t1 = Date.parse('2026-03-01T00:00:00Z');
    const world = await testWorld({ createdAt: new Date(t1) });
    await grow(world, 1, undefined, new Date(t1));
    // A backup of the publisher's log from then, which later grows with its clock behind.
    const backup = await copyOfLog(world);
    // The log signs its tree of 1 again on 10 March: the device's clock floor.
    await publishLog(world.logDir, world.logKey, new Date(t1 + 9 * day));
    const dir = await mkdtemp(join(tmpdir(), 'vouch-old-larger-'));
    await sync(dir, world.mirror, () => t1 + 9 * day, world.rootPath);
    expect((await stateOf(dir)).clockFloor).toBe(t1 + 9 * day);

    // The backup's tree of 2 (consistent with the device's tree) is signed on 2 March.
    await grow({ ...world, logDir: backup }, 1, undefined, new Date(t1 + day));
    const mirror = pathToFileURL(publicDir(backup)).href;
    const old = await rejectsWith(
      sync(dir, mirror, () => t1 + 9 * day),
      'LOG_ROLLBACK',
    );
    expect(old.message).toMatch(/before the newest time this device has seen/);
    // Without its cosignature line it would have no time to compare: refused as well.
    await dropLogCosignature(world, backup);
    const stripped = await rejectsWith(
      sync(dir, mirror, () => t1 + 9 * day),
      'LOG_ROLLBACK',
    );
    expect(stripped.message).toMatch(/without a signed time/);
    expect((await stateOf(dir)).checkpoint.checkpoint.size).toBe(1);
  });
});

describe('the signed time of a checkpoint', () => {
  const logKey = testKey(testOrigin);
  const witness = testKey('witness.example.org', KeyType.Cosignature);
  const stranger = testKey('witness.example.org', KeyType.Cosignature);
  const root = (witnesses: number) =>
    testRoot({
      rootKeys: [testKey('root-1').public],
      threshold: 1,
      log: { origin: testOrigin, key: logKey.public },
      witnesses: witnesses > 0 ? [witness.public] : [],
      witnessQuorum: witnesses,
    });
  const logged = signCheckpoint(
    { origin: testOrigin, size: 1, root: new Uint8Array(32).fill(1), extensions: [] },
    logKey.private,
    1_800_000_000,
  );

  it("is the newest of the log's cosignature and the witnesses' that verify", () => {
    const witnessed = cosignNote(logged, witness.private, witness.public.name, 1_800_000_100);
    expect(verifyCheckpoint(formatNote(witnessed), root(1)).time).toBe(1_800_000_100_000);
    const resigned = cosignNote(witnessed, logKey.private, testOrigin, 1_800_000_200);
    expect(verifyCheckpoint(formatNote(resigned), root(1)).time).toBe(1_800_000_200_000);
    // Anyone can add a line: a stranger's later time (same name, another key) is ignored.
    const strange = cosignNote(resigned, stranger.private, stranger.public.name, 1_900_000_000);
    expect(verifyCheckpoint(formatNote(strange), root(1)).time).toBe(1_800_000_200_000);
    // Without witnesses in the root, the witness's time does not count either.
    expect(verifyCheckpoint(formatNote(witnessed), root(0)).time).toBe(1_800_000_000_000);
  });

  it('counts witnesses only as a quorum: one far-future witness does not move the time, two do', () => {
    const others = [1, 2].map((i) => testKey(`witness-${i}.example.org`, KeyType.Cosignature));
    const quorumOf2 = testRoot({
      rootKeys: [testKey('root-1').public],
      threshold: 1,
      log: { origin: testOrigin, key: logKey.public },
      witnesses: [witness.public, ...others.map((other) => other.public)],
      witnessQuorum: 2,
    });
    const cosign = (note: typeof logged, by: typeof witness, at: number) =>
      cosignNote(note, by.private, by.public.name, at);
    const [second, third] = others as [typeof witness, typeof witness];
    const far = cosign(logged, witness, maxTimestamp);
    const timeOf = (note: typeof logged) => verifyCheckpoint(formatNote(note), quorumOf2).time;
    // One witness at the year 9999, one at a sane time: the quorum vouches for the sane one.
    expect(timeOf(cosign(far, second, 1_800_000_100))).toBe(1_800_000_100_000);
    // Three witnesses: the second newest (two of them vouch for at least that).
    expect(timeOf(cosign(cosign(far, second, 1_800_000_100), third, 1_800_000_300))).toBe(
      1_800_000_300_000,
    );
    // Two at the year 9999: a quorum says so.
    expect(timeOf(cosign(far, second, maxTimestamp))).toBe(maxTimestamp * 1000);
    // A quorum older than the log's own cosignature: the log's time.
    expect(timeOf(cosign(cosign(logged, witness, 1_700_000_000), second, 1_700_000_100))).toBe(
      1_800_000_000_000,
    );
  });

  it('never counts the log toward the witness quorum, and rejects a bad log cosignature', () => {
    expect(failure(() => verifyCheckpoint(formatNote(logged), root(1))).code).toBe(
      'WITNESS_QUORUM',
    );
    const [signature, cosignature] = logged.signatures;
    if (!signature || !cosignature) throw new Error('the log signs and cosigns');
    const retimed = new Uint8Array(cosignature.signature);
    retimed[7] = (retimed[7] as number) ^ 1;
    const tampered = { ...logged, signatures: [signature, { ...cosignature, signature: retimed }] };
    expect(failure(() => verifyCheckpoint(formatNote(tampered), root(0))).code).toBe(
      'NOTE_UNVERIFIED',
    );
  });
});

describe('root rotation', () => {
  it('follows the root chain from mirrors; a key rotated out no longer counts', async () => {
    const world = await testWorld();
    await grow(world, 4);
    const dir = await mkdtemp(join(tmpdir(), 'vouch-rotate-'));
    await sync(dir, world.mirror, Date.now, world.rootPath);
    expect(verdictFor(await stateOf(dir), digestOf(1), Date.now())).toMatchObject({
      status: 'TRUSTED',
    });

    // v2 replaces the signer's key; a statement by the old key logged after it is not indexed.
    const newKey = testKey(signerId);
    const v2 = {
      ...world.root,
      version: 2,
      signers: world.root.signers.map((signer) => ({ ...signer, keys: [newKey.public] })),
    };
    await mkdir(join(publicDir(world.logDir), 'roots'), { recursive: true });
    await writeFile(
      join(publicDir(world.logDir), 'roots', '2.json'),
      serializeEnvelope(signRoot(v2, [world.rootKey])),
    );
    await grow(world, 0, [statement(world, 50)]);
    const report = await sync(dir, world.mirror, Date.now);
    expect(report).toMatchObject({ rootVersion: 2, added: 1, indexed: 0 });
    expect(report.skipped.map((s) => s.code)).toEqual(['SIGNATURE_INVALID']);

    const state = await stateOf(dir);
    expect(state.root.version).toBe(2);
    const verdict = verdictFor(state, digestOf(1), Date.now());
    expect(verdict).toMatchObject({ status: 'UNKNOWN' });
    expect(verdict.outcome === 'status' && verdict.ignored[0]?.reason).toMatch(/no longer lists/);
  });

  it('refuses a root that moves the device to another log, even one signed by the root keys', async () => {
    const world = await testWorld();
    await grow(world, 4);
    const dir = await mkdtemp(join(tmpdir(), 'vouch-rotate-'));
    await sync(dir, world.mirror, Date.now, world.rootPath);
    const elsewhere = testKey('other.example/log');
    const v2 = {
      ...world.root,
      version: 2,
      log: { origin: 'other.example/log', key: elsewhere.public },
    };
    await mkdir(join(publicDir(world.logDir), 'roots'), { recursive: true });
    await writeFile(
      join(publicDir(world.logDir), 'roots', '2.json'),
      serializeEnvelope(signRoot(v2, [world.rootKey])),
    );
    const error = await rejectsWith(sync(dir, world.mirror, Date.now), 'ROOT_INVALID');
    expect(error.message).toContain(`root v2 moves to log other.example/log from ${testOrigin}`);
    const state = await stateOf(dir);
    expect([state.root.version, state.checkpoint.checkpoint.size]).toEqual([1, 4]);
  });
});

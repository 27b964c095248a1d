import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { hashLeaf } from '../../../agent/core/merkle';
import { encodeEntryBundle, fullWidth } from '../../../agent/core/tiles';
import { syncFromMirrors } from '../../../agent/device';
import { type RecordBatch, SubjectIndex } from '../../../agent/device/store/subjects';
import { EntryChecker } from '../../../agent/device/sync/checker';
import { type BundleRun, checkEntries } from '../../../agent/device/sync/entries';
import { createLogger } from '../../../agent/logger';
import { planChecking, readProfile } from '../../../hw';
import { grow, stateOf, testWorld } from '../../helpers/device';
import { signedStatement, testKey, testRoot } from '../../helpers/trust';

/**
 * The per-bundle checks of a sync (entries.ts), inline and on worker threads: every entry
 * hashed, every statement's signature, signer and scope checked, the invalid ones
 * reported rather than indexed, the same answers from the threads as inline — as many
 * threads as the hardware plan says, and the same answers when one of them dies.
 */

const signerId = 'notary@example.org';
const rootKey = testKey('root-1');
const signer = testKey(signerId);
const stranger = testKey(signerId);
const root = testRoot({
  rootKeys: [rootKey.public],
  threshold: 1,
  signers: [{ id: signerId, keys: [signer.public], scopes: ['ghcr.io/example/**'] }],
});

const digest = (i: number) => i.toString(16).padStart(64, '0');

/** Entry i of a bundle: a valid statement, except for a few kinds of invalid ones. */
function entry(i: number): Uint8Array {
  const subjects = [{ name: `ghcr.io/example/app-${i}:1.0`, sha256: digest(i) }];
  if (i % 50 === 7) return new TextEncoder().encode(`not an envelope ${i}`);
  if (i % 50 === 11) return signedStatement(stranger, { signer: signerId, subjects });
  if (i % 50 === 13) {
    return signedStatement(signer, {
      signer: signerId,
      subjects: [{ name: `docker.io/other/app-${i}`, sha256: digest(i) }],
    });
  }
  if (i % 50 === 17) {
    return signedStatement(rootKey, { signer: 'root', subjects, status: 'revoked' });
  }
  if (i % 50 === 19) {
    return signedStatement(signer, {
      signer: signerId,
      subjects: [...subjects, { name: `ghcr.io/example/lib-${i}:1.0`, sha256: digest(i + 1) }],
      status: 'untrusted',
      reason: `reason ${i}`,
    });
  }
  return signedStatement(signer, { signer: signerId, subjects });
}

const bundles = [0, 1, 2].map((index) => {
  const entries = Array.from({ length: fullWidth }, (_, i) => entry(index * fullWidth + i));
  return {
    tile: { level: 0, index, width: fullWidth },
    entries,
    bytes: encodeEntryBundle(entries),
  };
});

/** The index these batches give, as a comparable list of (digest, record). */
function indexed(batches: readonly RecordBatch[]) {
  const builder = SubjectIndex.empty().extend();
  for (const batch of batches) builder.add(batch);
  return [...builder.build().records()];
}

const threaded = await EntryChecker.for(root, 10 * fullWidth);
afterAll(() => threaded.close());

describe('entry bundle checks', () => {
  it('hashes every entry, indexes the valid statements and reports the others', () => {
    const [bundle] = bundles;
    if (!bundle) throw new Error('no bundle');
    const checked = checkEntries(root, { ...bundle, from: 0, checkFrom: 0 });
    expect(Buffer.from(checked.leafHashes)).toEqual(Buffer.concat(bundle.entries.map(hashLeaf)));
    expect(checked.skipped.map((s) => [s.logIndex % 50, s.code])).toEqual(
      [7, 11, 13, 7, 11, 13, 7, 11, 13, 7, 11, 13, 7, 11, 13].map((at) => [
        at,
        { 7: 'ENVELOPE_INVALID', 11: 'SIGNATURE_INVALID', 13: 'SIGNER_OUT_OF_SCOPE' }[at],
      ]),
    );
    const records = indexed([checked.records]);
    // One record per subject of each valid statement: 256 − 15 skipped, + 1 per two-subject one.
    expect(records).toHaveLength(fullWidth - 15 + 5);
    const revocation = records.find((r) => r.digest === digest(17));
    expect(revocation?.record).toMatchObject({ signer: 'root', status: 'revoked' });
    const twoSubjects = records.filter((r) => Number(r.record.logIndex) === 19);
    expect(twoSubjects.map((r) => [r.digest, r.record.reason])).toEqual([
      [digest(19), 'reason 19'],
      [digest(20), 'reason 19'],
    ]);
    expect(records.find((r) => r.digest === digest(0))?.record.key).toBe(
      Buffer.from(signer.public.raw).toString('hex'),
    );
  });

  it('hashes entries from `from` and checks statements from `checkFrom` only', () => {
    const [bundle] = bundles;
    if (!bundle) throw new Error('no bundle');
    const checked = checkEntries(root, { ...bundle, from: 5, checkFrom: 12 });
    expect(Buffer.from(checked.leafHashes)).toEqual(
      Buffer.concat(bundle.entries.slice(5).map(hashLeaf)),
    );
    expect(checked.skipped[0]).toMatchObject({ logIndex: 13, code: 'SIGNER_OUT_OF_SCOPE' });
    expect(Math.min(...indexed([checked.records]).map((r) => Number(r.record.logIndex)))).toBe(12);
  });

  it('gives the same answers on worker threads as inline', async () => {
    const inline = await EntryChecker.for(root, 10);
    const runs: BundleRun[] = bundles.map((bundle, i) => ({
      tile: bundle.tile,
      bytes: bundle.bytes,
      from: i,
      checkFrom: 3 * i,
    }));
    const [onThreads, here] = await Promise.all([
      Promise.all(runs.map((run) => threaded.check(run))),
      Promise.all(runs.map((run) => inline.check(run))),
    ]);
    await inline.close();
    expect(onThreads.map((c) => Buffer.from(c.leafHashes))).toEqual(
      here.map((c) => Buffer.from(c.leafHashes)),
    );
    expect(onThreads.map((c) => c.skipped)).toEqual(here.map((c) => c.skipped));
    expect(indexed(onThreads.map((c) => c.records))).toEqual(indexed(here.map((c) => c.records)));
    expect(indexed(here.map((c) => c.records)).length).toBeGreaterThan(3 * 200);
  });
});

const runs: BundleRun[] = bundles.flatMap((bundle, i) =>
  [0, 100].map((from) => ({ tile: bundle.tile, bytes: bundle.bytes, from, checkFrom: from + i })),
);
/** What the checks of `runs` give, inline: the answers every checker must give. */
const expected = await Promise.all(runs.map((run) => checkEntries(root, run)));
const thisMachine = await readProfile({ root: '/', paths: [] });

function comparable(checked: readonly { leafHashes: Uint8Array; skipped: unknown[] }[]) {
  return checked.map((c) => ({ leafHashes: Buffer.from(c.leafHashes), skipped: c.skipped }));
}

describe('the entry checker on worker threads', () => {
  it('runs as many threads as the hardware plan says, none for a small sync', async () => {
    expect(threaded.threads).toHaveLength(planChecking(thisMachine));
    const one = await EntryChecker.for(root, 10 * fullWidth, { ...thisMachine, cores: 1 });
    const three = await EntryChecker.for(root, 1024, { ...thisMachine, cores: 3 });
    const inline = await EntryChecker.for(root, 1023, { ...thisMachine, cores: 3 });
    try {
      expect(one.threads).toHaveLength(1);
      expect(three.threads).toHaveLength(3);
      expect(inline.threads).toHaveLength(0);
      const checked = await Promise.all(runs.map((run) => one.check(run)));
      expect(comparable(checked)).toEqual(comparable(expected));
    } finally {
      await Promise.all([one.close(), three.close(), inline.close()]);
    }
  });

  it('checks on when a thread dies mid-check: a new thread runs its checks again, same answers', async () => {
    const checker = await EntryChecker.for(root, 10 * fullWidth, { ...thisMachine, cores: 2 });
    try {
      // Both threads loaded and idle.
      await Promise.all(runs.slice(0, 2).map((run) => checker.check(run)));
      const [killed, survivor] = checker.threads;
      const checking = Promise.all(runs.map((run) => checker.check(run)));
      await killed?.terminate();
      const checked = await checking;
      expect(comparable(checked)).toEqual(comparable(expected));
      expect(checked.map((c) => indexed([c.records]))).toEqual(
        expected.map((c) => indexed([c.records])),
      );
      expect(checker.threads).toHaveLength(2);
      expect(checker.threads).not.toContain(killed);
      expect(checker.threads).toContain(survivor);
      // And again, all on the threads it has now.
      const again = await Promise.all(runs.map((run) => checker.check(run)));
      expect(comparable(again)).toEqual(comparable(expected));
    } finally {
      await checker.close();
    }
  });

  it('fails a check that ends every thread it is given, after its second, with WORKER_FAILED', async () => {
    const checker = await EntryChecker.for(root, 10 * fullWidth, { ...thisMachine, cores: 2 });
    try {
      // Bytes that are no entry bundle throw in the thread (a sync decodes bundles first, so
      // only a bug gets here): inline, that error; on threads, each thread it reaches ends.
      const poison = { tile: { level: 0, index: 0, width: 3 }, bytes: new Uint8Array(1) };
      const run = { ...poison, from: 0, checkFrom: 0 };
      const threadsBefore = [...checker.threads];
      await expect(checker.check(run)).rejects.toMatchObject({
        code: 'WORKER_FAILED',
        message: expect.stringMatching(/^a sync checker thread stopped: /),
      });
      // It ended the thread it was given and the new one that took its place; the other stays.
      expect(checker.threads).toHaveLength(2);
      expect(checker.threads.filter((t) => threadsBefore.includes(t))).toHaveLength(1);
      const checked = await Promise.all(runs.map((r) => checker.check(r)));
      expect(comparable(checked)).toEqual(comparable(expected));
    } finally {
      await checker.close();
    }
  });

  it('fails checks still running when closed, and refuses new ones', async () => {
    const checker = await EntryChecker.for(root, 10 * fullWidth, { ...thisMachine, cores: 1 });
    const running = checker.check(runs[0] as BundleRun);
    await checker.close();
    const closed = { code: 'INTERNAL', message: 'the entry checker was closed' };
    await expect(running).rejects.toMatchObject(closed);
    await expect(checker.check(runs[0] as BundleRun)).rejects.toMatchObject(closed);
  });
});

describe('a sync whose checker thread dies', () => {
  it('completes with the same state as a sync where none does', { timeout: 120_000 }, async () => {
    // Eight full bundles: checked on threads (1024 entries or more).
    const world = await testWorld();
    await grow(world, 8 * fullWidth);
    const logger = createLogger('cli', 'silent');
    const sync = async () => {
      const stateDir = await mkdtemp(join(tmpdir(), 'vouch-checker-'));
      const { added, indexed, skipped } = await syncFromMirrors({
        stateDir,
        mirrors: [world.mirror],
        rootPath: world.rootPath,
        timeoutMs: 10_000,
        maxBundleBytes: 1 << 24,
        logger,
      });
      const state = await stateOf(stateDir);
      return {
        report: { added, indexed, skipped },
        state: {
          root: Buffer.from(state.range.root()).toString('hex'),
          rows: state.index.rows,
          indexSha256: state.indexSha256,
          entriesBytes: state.entriesBytes,
          entriesSha256: state.entriesSha256,
        },
      };
    };
    const undisturbed = await sync();

    // The sync's checker, with its first thread stopped once the first check is back: the
    // checks that thread still holds (bundles are checked ahead) must run again elsewhere.
    const make = EntryChecker.for.bind(EntryChecker);
    let killed: Promise<number> | undefined;
    const spy = vi.spyOn(EntryChecker, 'for').mockImplementation(async (...args) => {
      const checker = await make(...args);
      const check = checker.check.bind(checker);
      checker.check = (run) => {
        const checking = check(run);
        killed ??= checking.then(() => (checker.threads[0] as Worker).terminate());
        return checking;
      };
      return checker;
    });
    try {
      const disturbed = await sync();
      expect(spy).toHaveBeenCalledTimes(1);
      expect(await killed).toBe(1);
      expect(disturbed).toEqual(undisturbed);
      expect(disturbed.report.added).toBe(8 * fullWidth);
    } finally {
      spy.mockRestore();
    }
  });
});

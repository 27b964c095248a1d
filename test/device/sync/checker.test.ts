import { afterAll, describe, expect, it } from 'vitest';
import { hashLeaf } from '../../../agent/core/merkle';
import { encodeEntryBundle, fullWidth } from '../../../agent/core/tiles';
import { type RecordBatch, SubjectIndex } from '../../../agent/device/store/subjects';
import { EntryChecker } from '../../../agent/device/sync/checker';
import { type BundleRun, checkEntries } from '../../../agent/device/sync/entries';
import { signedStatement, testKey, testRoot } from '../../helpers/trust';

/**
 * The per-bundle checks of a sync (entries.ts), inline and on worker threads: every entry
 * hashed, every statement's signature, signer and scope checked, the invalid ones
 * reported rather than indexed, the same answers from the threads as inline.
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

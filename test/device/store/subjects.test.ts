import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VouchError } from '../../../agent/core/errors';
import { merkleAlgorithm, statementStatuses } from '../../../agent/core/statement';
import {
  type NewRecord,
  RecordBatchWriter,
  SubjectIndex,
} from '../../../agent/device/store/subjects';

const hex64 = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((b) => Buffer.from(b).toString('hex'));

/** Digests that share their first 4 bytes: the index sorts those by the whole digest. */
const samePrefix = fc
  .uint8Array({ minLength: 28, maxLength: 28 })
  .map((b) => `cafe0000${Buffer.from(b).toString('hex')}`);

const algorithms = ['sha256', merkleAlgorithm] as const;

const record = (logIndex: number) =>
  fc.record({
    // Both kinds draw from the same digests, so a digest can be one kind here, the other there.
    digest: fc.oneof(hex64, samePrefix, fc.constantFrom('aa'.repeat(32), 'bb'.repeat(32))),
    algorithm: fc.constantFrom(...algorithms),
    logIndex: fc.constant(logIndex),
    name: fc.string({ maxLength: 40 }).map((s) => `ghcr.io/x/${s}`),
    status: fc.constantFrom(...statementStatuses),
    signer: fc.constantFrom('a@example.org', 'b@example.org', 'root'),
    issuedAtMs: fc.integer({ min: 0, max: 4_102_444_800_000 }),
    reason: fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
    key: fc.constantFrom('11'.repeat(32), '22'.repeat(32)),
  });

/** Records for log indexes 0..n-1, each with one to three subject digests. */
const records = fc
  .integer({ min: 0, max: 60 })
  .chain((n) =>
    fc.tuple(
      ...Array.from({ length: n }, (_, i) => fc.array(record(i), { minLength: 1, maxLength: 3 })),
    ),
  )
  .map((perEntry) => perEntry.flat() as NewRecord[]);

/** The index with `added` put through batches and the builder, as a sync does. */
function extended(index: SubjectIndex, added: readonly NewRecord[]): SubjectIndex {
  const builder = index.extend(added.length);
  for (let at = 0; at < added.length; at += 7) {
    const batch = new RecordBatchWriter();
    for (const r of added.slice(at, at + 7)) batch.add(r);
    builder.add(batch.finish());
  }
  expect(builder.rows).toBe(added.length);
  return builder.build();
}

function strip(r: NewRecord) {
  const { reason, ...rest } = r;
  return reason === undefined ? rest : r;
}

describe('SubjectIndex', () => {
  it('looks up every record by digest and algorithm, in log order, like a map would', () => {
    fc.assert(
      fc.property(records, (all) => {
        const index = extended(SubjectIndex.empty(), all);
        expect(index.rows).toBe(all.length);
        expect(index.hasMerkle).toBe(all.some((r) => r.algorithm === merkleAlgorithm));
        const keys = [...new Set(all.map((r) => r.digest))].flatMap((digest) =>
          algorithms.map((algorithm) => [digest, algorithm] as const),
        );
        for (const [digest, algorithm] of keys) {
          // Never a record of the other kind: the kinds share digests in this property.
          const expected = all.filter((r) => r.digest === digest && r.algorithm === algorithm);
          const found = index.lookup(digest, algorithm);
          expect(found.map((r) => Number(r.logIndex))).toEqual(expected.map((r) => r.logIndex));
          found.forEach((r, i) => {
            const want = strip(expected[i] as NewRecord);
            expect({
              digest,
              algorithm,
              logIndex: Number(r.logIndex),
              name: r.name,
              status: r.status,
              signer: r.signer,
              issuedAtMs: Date.parse(r.issuedAt),
              ...(r.reason !== undefined ? { reason: r.reason } : {}),
              key: r.key,
            }).toEqual(want);
          });
        }
        expect(index.lookup('cc'.repeat(32), 'sha256')).toEqual([]);
        expect([...index.records()].map(({ digest, algorithm }) => [digest, algorithm])).toEqual(
          all
            .map((r, i) => ({ r, i }))
            .sort((a, b) => a.r.digest.localeCompare(b.r.digest) || a.i - b.i)
            .map(({ r }) => [r.digest, r.algorithm]),
        );
      }),
      { numRuns: 50 },
    );
  });

  it('gives the SHA-256 digests the statements of a merkle root pair it with', () => {
    fc.assert(
      fc.property(records, (all) => {
        const index = extended(SubjectIndex.empty(), all);
        for (const root of new Set(
          all.filter((r) => r.algorithm === merkleAlgorithm).map((r) => r.digest),
        )) {
          const subjects = all.filter((r) => r.algorithm === merkleAlgorithm && r.digest === root);
          const expected = all.filter(
            (r) =>
              r.algorithm === 'sha256' &&
              subjects.some((s) => s.logIndex === r.logIndex && s.name === r.name),
          );
          expect(index.plainDigestsOf(root).sort()).toEqual(
            [...new Set(expected.map((r) => r.digest))].sort(),
          );
        }
        expect(index.plainDigestsOf('cc'.repeat(32))).toEqual([]);
      }),
      { numRuns: 50 },
    );
  });

  it('never answers for one digest kind with the other (SHA-256(0x00 ‖ G) is G’s one-chunk root)', () => {
    const digest = 'dd'.repeat(32);
    const base = {
      name: 'bundle.raucb',
      status: 'trusted',
      signer: 'a@example.org',
      issuedAtMs: 0,
      key: '11'.repeat(32),
    } as const;
    const index = extended(SubjectIndex.empty(), [
      { ...base, digest: 'ee'.repeat(32), algorithm: 'sha256', logIndex: 0 },
      { ...base, digest, algorithm: merkleAlgorithm, logIndex: 0 },
      { ...base, digest, algorithm: 'sha256', logIndex: 1, status: 'revoked', name: 'other' },
    ]);
    expect(index.lookup(digest, merkleAlgorithm).map((r) => [r.logIndex, r.status])).toEqual([
      [0n, 'trusted'],
    ]);
    expect(index.lookup(digest, 'sha256').map((r) => [r.logIndex, r.status])).toEqual([
      [1n, 'revoked'],
    ]);
    expect(index.plainDigestsOf(digest)).toEqual(['ee'.repeat(32)]);
    expect(index.lookup('ee'.repeat(32), merkleAlgorithm)).toEqual([]);
  });

  it('reads an index with no chunked digests as before: status bytes 0–3, no kind bit', () => {
    const index = extended(SubjectIndex.empty(), [
      {
        digest: 'aa'.repeat(32),
        algorithm: 'sha256',
        logIndex: 0,
        name: 'n',
        status: 'revoked',
        signer: 's',
        issuedAtMs: 0,
        key: '11'.repeat(32),
      },
    ]);
    // header 24 bytes, then the row: status is its last byte.
    expect(index.bytes[24 + 56]).toBe(statementStatuses.indexOf('revoked'));
    expect(index.hasMerkle).toBe(false);
  });

  it('is canonical: the same records in any number of batches give the same bytes', () => {
    fc.assert(
      fc.property(records, fc.array(fc.nat(), { maxLength: 4 }), (all, cuts) => {
        const whole = extended(SubjectIndex.empty(), all);
        const logSize = all.length === 0 ? 0 : (all.at(-1) as NewRecord).logIndex + 1;
        const bounds = [...new Set(cuts.map((c) => c % (logSize + 1)))].sort((a, b) => a - b);
        let index = SubjectIndex.empty();
        let from = 0;
        for (const to of [...bounds, logSize]) {
          index = extended(
            index,
            all.filter((r) => r.logIndex >= from && r.logIndex < to),
          );
          from = to;
        }
        expect(Buffer.from(index.bytes).equals(Buffer.from(whole.bytes))).toBe(true);
        expect(
          Buffer.from(SubjectIndex.decode(whole.bytes).bytes).equals(Buffer.from(whole.bytes)),
        ).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('refuses bytes that are not an index, and lookups that are not digests', () => {
    for (const bytes of [
      new Uint8Array(0),
      new Uint8Array(64),
      Buffer.from('VOUCHIX1\0\0\0\x05'),
    ]) {
      expect(() => SubjectIndex.decode(bytes)).toThrowError(VouchError);
    }
    const good = SubjectIndex.empty().bytes;
    expect(() => SubjectIndex.decode(Buffer.concat([good, Buffer.alloc(1)]))).toThrowError(
      /do not add up/,
    );
    expect(() => SubjectIndex.empty().lookup('xyz', 'sha256')).toThrowError(/not a sha256 digest/);
  });
});

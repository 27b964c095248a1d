import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VouchError } from '../../../agent/core/errors';
import { statementStatuses } from '../../../agent/core/statement';
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

const record = (logIndex: number) =>
  fc.record({
    sha256: fc.oneof(hex64, samePrefix, fc.constantFrom('aa'.repeat(32), 'bb'.repeat(32))),
    logIndex: fc.constant(logIndex),
    name: fc.string({ maxLength: 40 }).map((s) => `ghcr.io/x/${s}`),
    status: fc.constantFrom(...statementStatuses),
    signer: fc.constantFrom('a@example.org', 'b@example.org', 'root'),
    issuedAtMs: fc.integer({ min: 0, max: 4_102_444_800_000 }),
    reason: fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
    key: fc.constantFrom('11'.repeat(32), '22'.repeat(32)),
  });

/** Records for log indexes 0..n-1, each with one to three subjects. */
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
  it('looks up every record by digest, in log order, like a map would', () => {
    fc.assert(
      fc.property(records, (all) => {
        const index = extended(SubjectIndex.empty(), all);
        expect(index.rows).toBe(all.length);
        for (const digest of new Set(all.map((r) => r.sha256))) {
          const expected = all.filter((r) => r.sha256 === digest);
          const found = index.lookup(digest);
          expect(found.map((r) => Number(r.logIndex))).toEqual(expected.map((r) => r.logIndex));
          found.forEach((r, i) => {
            const want = strip(expected[i] as NewRecord);
            expect({
              sha256: digest,
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
        expect(index.lookup('cc'.repeat(32))).toEqual([]);
      }),
      { numRuns: 50 },
    );
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
    expect(() => SubjectIndex.empty().lookup('xyz')).toThrowError(/not a SHA-256 digest/);
  });
});

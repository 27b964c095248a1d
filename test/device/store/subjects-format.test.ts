import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { merkleAlgorithm } from '../../../agent/core/statement';
import { RecordBatchWriter, SubjectIndex } from '../../../agent/device/store/subjects';
import { fixtureIndex, fixtureRecords } from '../../fixtures/index/records';

/** An index file as the devices in the field hold it: written by format 1 (records.ts says how). */
const v1 = readFileSync(new URL('../../fixtures/index/v1.bin', import.meta.url));

describe('index file format', () => {
  it('reads an index written by format 1 (VOUCHIX1): the same lookups as the records it was made from', () => {
    const index = SubjectIndex.decode(v1);
    expect(index.rows).toBe(fixtureRecords.length);
    expect(index.hasMerkle).toBe(true);
    expect(index.lookup('aa'.repeat(32), 'sha256')).toEqual([
      {
        logIndex: 0n,
        name: 'ghcr.io/home-assistant/core:2025.6.0',
        status: 'trusted',
        signer: 'notary@home-assistant.io',
        issuedAt: '2025-06-01T12:00:00Z',
        key: '11'.repeat(32),
      },
      {
        logIndex: 2n ** 40n + 3n,
        name: 'ghcr.io/home-assistant/core:2025.6.0',
        status: 'revoked',
        signer: 'notary@home-assistant.io',
        issuedAt: new Date(2 ** 47).toISOString(),
        reason: 'key leaked',
        key: '11'.repeat(32),
      },
    ]);
    expect(index.lookup('aa'.repeat(32), merkleAlgorithm)).toEqual([]);
    expect(index.lookup('bb'.repeat(32), merkleAlgorithm).map((r) => r.logIndex)).toEqual([0n]);
    expect(index.plainDigestsOf('bb'.repeat(32))).toEqual(['aa'.repeat(32)]);
    expect(index.lookup(`cafe0000${'01'.repeat(28)}`, 'sha256')).toEqual([
      {
        logIndex: 1n,
        name: 'haos_rpi4-64-15.2.img.xz — ärger',
        status: 'unsupported',
        signer: 'os@home-assistant.io',
        issuedAt: '2025-06-02T08:30:00.250Z',
        reason: 'superseded by 15.3',
        key: 'ab'.repeat(32),
      },
    ]);
    expect(index.lookup(`cafe0000${'00'.repeat(28)}`, 'sha256').map((r) => r.status)).toEqual([
      'untrusted',
    ]);
  });

  it('writes the same records as format 1 wrote them, byte for byte', () => {
    expect(Buffer.from(fixtureIndex().bytes).equals(v1)).toBe(true);
  });

  it('extends an index written by format 1 as a sync does: old records kept, new ones found', () => {
    const index = SubjectIndex.decode(v1);
    const added = {
      digest: 'aa'.repeat(32),
      algorithm: 'sha256',
      logIndex: 2 ** 40 + 4,
      name: 'ghcr.io/home-assistant/core:2025.6.0',
      status: 'trusted',
      signer: 'notary@home-assistant.io',
      issuedAtMs: 2 ** 47 + 1000,
      key: 'ab'.repeat(32),
    } as const;
    const batch = new RecordBatchWriter();
    batch.add(added);
    const builder = index.extend(1);
    builder.add(batch.finish());
    const extended = builder.build();
    const before = [...index.records()];
    const after = [...extended.records()];
    expect(after.filter((r) => r.record.logIndex !== BigInt(added.logIndex))).toEqual(before);
    expect(extended.lookup(added.digest, 'sha256').map((r) => [r.logIndex, r.key])).toEqual([
      [0n, '11'.repeat(32)],
      [2n ** 40n + 3n, '11'.repeat(32)],
      [2n ** 40n + 4n, 'ab'.repeat(32)],
    ]);
    // The same bytes as an index built from all the records at once.
    const whole = new RecordBatchWriter();
    for (const record of [...fixtureRecords, added]) whole.add(record);
    const fresh = SubjectIndex.empty().extend(0);
    fresh.add(whole.finish());
    expect(Buffer.from(fresh.build().bytes).equals(Buffer.from(extended.bytes))).toBe(true);
  });

  it('refuses an index of another format version, naming the version (a sync rebuilds a damaged index)', () => {
    for (const version of ['2', '0']) {
      const other = Buffer.from(v1);
      other.write(version, 7, 'ascii');
      expect(() => SubjectIndex.decode(other)).toThrowError(
        expect.objectContaining({
          name: 'VouchError',
          code: 'STATE_INVALID',
          message: `subject index: format "${version}", this vouch reads format 1`,
        }),
      );
    }
    const notIndex = Buffer.from(v1);
    notIndex.write('X', 0, 'ascii');
    expect(() => SubjectIndex.decode(notIndex)).toThrowError(/not a vouch index file/);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VouchError } from '../../agent/core/errors';
import {
  encodeManifest,
  manifestName,
  maxManifestBytes,
  parseManifest,
  snapshotBundles,
} from '../../agent/core/snapshot-format';
import { newTiles } from '../../agent/core/tiles';
import { expectVouchError } from '../helpers/errors';

const bytes = (text: string) => new Uint8Array(Buffer.from(text));

describe('snapshot manifest', () => {
  it('is written as the format says, and read back', () => {
    const manifest = { origin: 'log.example.org/vouch', size: 300 };
    const encoded = encodeManifest(manifest);
    expect(Buffer.from(encoded).toString()).toBe(
      '{"format":"vouch-snapshot/v1","origin":"log.example.org/vouch","size":300}',
    );
    expect(parseManifest(encoded)).toEqual(manifest);
    expect(manifestName).toBe('vouch-snapshot.json');
  });

  it('round-trips any origin and tree size (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.maxSafeNat(), (origin, size) => {
        expect(parseManifest(encodeManifest({ origin, size }))).toEqual({ origin, size });
      }),
    );
  });

  it('refuses anything but a vouch-snapshot/v1 manifest, naming the problem', () => {
    const notJson = 'snapshot: vouch-snapshot.json is not JSON';
    const notManifest = 'snapshot: not a vouch-snapshot/v1 file';
    const cases: [string, string][] = [
      ['', notJson],
      ['{"format":"vouch-snapshot/v1",', notJson],
      ['null', notManifest],
      ['[]', notManifest],
      ['"vouch-snapshot/v1"', notManifest],
      ['{}', notManifest],
      ['{"format":"vouch-snapshot/v2","origin":"o","size":1}', notManifest],
      ['{"origin":"o","size":1}', notManifest],
      ['{"format":"vouch-snapshot/v1","size":1}', notManifest],
      ['{"format":"vouch-snapshot/v1","origin":7,"size":1}', notManifest],
      ['{"format":"vouch-snapshot/v1","origin":"o"}', notManifest],
      ['{"format":"vouch-snapshot/v1","origin":"o","size":"1"}', notManifest],
      ['{"format":"vouch-snapshot/v1","origin":"o","size":1.5}', notManifest],
      ['{"format":"vouch-snapshot/v1","origin":"o","size":9007199254740992}', notManifest],
      // Found by test/fuzz/snapshot.test.ts: a tree has no negative size.
      ['{"format":"vouch-snapshot/v1","origin":"o","size":-1}', notManifest],
    ];
    for (const [text, message] of cases) {
      expect(
        expectVouchError(() => parseManifest(bytes(text)), 'SNAPSHOT_INVALID').message,
        text,
      ).toBe(message);
    }
    // Found by test/fuzz/snapshot.test.ts: bytes that are not UTF-8 are refused, not read
    // as U+FFFD (an origin of a byte 0xff would have described a checkpoint for "\ufffd").
    const latin1 = Buffer.from('{"format":"vouch-snapshot/v1","origin":"\xff","size":1}', 'latin1');
    expect(expectVouchError(() => parseManifest(latin1), 'SNAPSHOT_INVALID').message).toBe(notJson);
  });

  it('parses or refuses arbitrary bytes, never anything else (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: maxManifestBytes }),
          fc.json().map(bytes),
          fc
            .record({ format: fc.string(), origin: fc.anything(), size: fc.anything() })
            .map((value) => bytes(JSON.stringify(value))),
        ),
        (input) => {
          try {
            const { origin, size } = parseManifest(input);
            expect(typeof origin).toBe('string');
            expect(Number.isSafeInteger(size)).toBe(true);
          } catch (error) {
            expect(error).toBeInstanceOf(VouchError);
            expect((error as VouchError).code).toBe('SNAPSHOT_INVALID');
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('snapshot members', () => {
  it('holds every entry bundle of the tree from 0, all full but the last', () => {
    expect([...snapshotBundles(0)]).toEqual([]);
    expect([...snapshotBundles(1)]).toEqual([{ level: 0, index: 0, width: 1 }]);
    expect([...snapshotBundles(256)]).toEqual([{ level: 0, index: 0, width: 256 }]);
    expect([...snapshotBundles(300)]).toEqual([
      { level: 0, index: 0, width: 256 },
      { level: 0, index: 1, width: 44 },
    ]);
  });

  it('the bundles are the level-0 tiles of the tree, as a publisher writes them (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), (size) => {
        const level0 = newTiles(0, size).filter((tile) => tile.level === 0);
        expect([...snapshotBundles(size)]).toEqual(level0);
      }),
    );
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EntriesFileReader } from '../../agent/core/entries-file';
import type { ErrorCode } from '../../agent/core/errors';
import {
  decodeEntryBundle,
  decodeTile,
  encodeEntryBundle,
  encodeTile,
  entryBundlePath,
  maxBundleBytes,
  parseTilePath,
  tilePath,
} from '../../agent/core/tiles';
import { applyByteEdits, byteEdits, fuzz, mutatedBytes, parses } from './fuzz';

/**
 * tlog-tiles as a mirror serves them: tile and bundle paths, tiles, entry bundles, and the
 * device's entries file (the bundles concatenated, read in chunks cut anywhere).
 */

const tileCodes: ErrorCode[] = ['TILE_INVALID'];

const tileIds = fc.record({
  level: fc.integer({ min: 0, max: 63 }),
  index: fc.oneof(fc.nat(300), fc.maxSafeNat()),
  width: fc.integer({ min: 1, max: 256 }),
});

const entry = fc.oneof(
  { weight: 30, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  // Entries near the uint16 limit: as large as a length prefix can say.
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 65_000, maxLength: 65_535 }) },
);

describe('fuzz: tile paths', () => {
  it('reads mutants of valid paths as the one tile they spell, or TILE_INVALID', () => {
    fuzz(
      tileIds.chain((tile) =>
        fc.tuple(
          fc.constant(tile),
          mutatedBytes(Buffer.from(tile.level === 0 ? entryBundlePath(tile) : tilePath(tile))),
        ),
      ),
      ([, bytes]) => {
        const path = Buffer.from(bytes).toString('utf8');
        const parsed = parses(() => parseTilePath(path), tileCodes);
        if (parsed === undefined) return;
        const written =
          parsed.kind === 'entries' ? entryBundlePath(parsed.tile) : tilePath(parsed.tile);
        expect(written).toBe(path);
      },
    );
  });
});

describe('fuzz: tiles and entry bundles', () => {
  it('decodes mutants of a tile as exactly its width of hashes, or TILE_INVALID', () => {
    fuzz(
      fc.tuple(tileIds, byteEdits).map(([tile, edits]) => {
        const hashes = Array.from({ length: tile.width }, (_, i) => new Uint8Array(32).fill(i));
        return { tile, bytes: applyByteEdits(encodeTile(hashes), edits) };
      }),
      ({ tile, bytes }) => {
        const hashes = parses(() => decodeTile(bytes, tile), tileCodes);
        if (hashes !== undefined) expect(hashes).toHaveLength(tile.width);
      },
    );
  });

  it('decodes mutants of a bundle under its cap as exactly its width of entries, or TILE_INVALID', () => {
    fuzz(
      fc
        .array(entry, { minLength: 1, maxLength: 20 })
        .chain((entries) =>
          fc.tuple(
            fc.constant(entries.length),
            fc.integer({ min: 1, max: 256 }),
            mutatedBytes(encodeEntryBundle(entries)),
          ),
        ),
      ([count, width, bytes]) => {
        // A client reads at most the cap (sync.ts); past it, the bundle is not decoded.
        if (bytes.length > maxBundleBytes(width)) return;
        for (const w of [count, width]) {
          const tile = { level: 0, index: 0, width: w };
          const entries = parses(() => decodeEntryBundle(bytes, tile), tileCodes);
          if (entries !== undefined) {
            expect(entries).toHaveLength(w);
            expect(Buffer.from(encodeEntryBundle(entries)).equals(bytes)).toBe(true);
          }
        }
      },
    );
  });
});

describe('fuzz: the entries file', () => {
  it('reads any bytes, however cut, as the entries a whole read gives, never throwing', () => {
    fuzz(
      fc.tuple(
        fc
          .array(entry, { maxLength: 12 })
          .chain((entries) =>
            mutatedBytes(Buffer.concat(entries.map((e) => encodeEntryBundle([e])))),
          ),
        fc.array(fc.nat(), { maxLength: 8 }),
      ),
      ([bytes, cuts]) => {
        const reader = new EntriesFileReader();
        const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort(
          (a, b) => a - b,
        );
        const read: Uint8Array[] = [];
        let from = 0;
        for (const to of [...points, bytes.length]) {
          for (const entry of reader.read(bytes.subarray(from, to))) read.push(entry);
          from = to;
        }
        const whole = new EntriesFileReader();
        const expected = whole.read(bytes);
        expect(read.length).toBe(expected.length);
        expect(read.every((e, i) => Buffer.from(e).equals(expected[i] as Uint8Array))).toBe(true);
        expect(reader.complete).toBe(whole.complete);
      },
    );
  });
});

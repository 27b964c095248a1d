import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VouchError } from '../../agent/core/errors';
import { hashLeaf, inclusionProofPlan, type NodeId } from '../../agent/core/merkle';
import {
  decodeEntryBundle,
  decodeTile,
  encodeEntryBundle,
  encodeTile,
  entryBundlePath,
  formatTileIndex,
  maxBundleBytes,
  newTiles,
  parseTilePath,
  perfectRoot,
  type TileId,
  tileHashReader,
  tilePath,
  tilesForNodes,
} from '../../agent/core/tiles';
import { failure } from '../helpers/errors';

async function rejection(promise: Promise<unknown>): Promise<VouchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VouchError);
  return error as VouchError;
}

describe('C2SP tlog-tiles paths', () => {
  it.each([
    [0, '000'],
    [5, '005'],
    [999, '999'],
    [1000, 'x001/000'],
    [1234067, 'x001/x234/067'],
    [2 ** 53 - 1, 'x009/x007/x199/x254/x740/991'],
  ])('encodes tile index %d as %s', (index, path) => {
    expect(formatTileIndex(index)).toBe(path);
  });

  it('names tiles and entry bundles', () => {
    expect(tilePath({ level: 0, index: 1234067, width: 256 })).toBe('tile/0/x001/x234/067');
    expect(tilePath({ level: 2, index: 0, width: 1 })).toBe('tile/2/000.p/1');
    expect(entryBundlePath({ level: 0, index: 7, width: 5 })).toBe('tile/entries/007.p/5');
    expect(entryBundlePath({ level: 0, index: 1000, width: 256 })).toBe('tile/entries/x001/000');
    expect(failure(() => entryBundlePath({ level: 1, index: 0, width: 256 })).code).toBe(
      'TILE_INVALID',
    );
    for (const tile of [
      { level: 64, index: 0, width: 256 },
      { level: 0, index: -1, width: 256 },
      { level: 0, index: 0, width: 0 },
      { level: 0, index: 0, width: 257 },
    ]) {
      expect(() => tilePath(tile)).toThrow(VouchError);
    }
  });

  it('parses exactly what it writes (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 63 }),
        fc.maxSafeNat(),
        fc.integer({ min: 1, max: 256 }),
        (level, index, width) => {
          const tile = { level, index, width };
          expect(parseTilePath(tilePath(tile))).toEqual({ kind: 'tile', tile });
          const bundle = { level: 0, index, width };
          expect(parseTilePath(entryBundlePath(bundle))).toEqual({ kind: 'entries', tile: bundle });
        },
      ),
    );
  });

  it.each([
    'tile/0/1234',
    'tile/0/12',
    'tile/00/000',
    'tile/01/000',
    'tile/64/000',
    'tile/-1/000',
    'tile/0/x000/001',
    'tile/0/x001/x234/67',
    'tile/0/001/002',
    'tile/0/000.p/0',
    'tile/0/000.p/256',
    'tile/0/000.p/07',
    'tile/0/000.p/',
    'tile/0/000.p',
    'tile/entries/000.p/300',
    'tile/entries/x001',
    'tile/0/x009/x007/x199/x254/x740/992',
    'tile/0/x999/x999/x999/x999/x999/x999/999',
    '/tile/0/000',
    'tile/0/000/',
    'tile/0/../000',
    '../checkpoint',
    'tile/0/%30%30%30',
    'tile/0/000?x',
    'tile/0/\u0660\u0660\u0660',
  ])('rejects the path %j', (path) => {
    expect(failure(() => parseTilePath(path)).code).toBe('TILE_INVALID');
  });
});

describe('tile layout', () => {
  const paths = (tiles: readonly TileId[]) => tiles.map(tilePath);

  it('represents 70,000 leaves as the specification says', () => {
    const tiles = newTiles(0, 70_000);
    const level0 = tiles.filter((t) => t.level === 0);
    expect(level0.filter((t) => t.width === 256)).toHaveLength(273);
    expect(paths(level0.filter((t) => t.width < 256))).toEqual(['tile/0/273.p/112']);
    expect(paths(tiles.filter((t) => t.level > 0))).toEqual([
      'tile/1/000',
      'tile/1/001.p/17',
      'tile/2/000.p/1',
    ]);
    expect(tiles).toHaveLength(273 + 4);
  });

  it('represents 256 leaves as a full tile and a partial tile of width 1 above it', () => {
    expect(paths(newTiles(0, 256))).toEqual(['tile/0/000', 'tile/1/000.p/1']);
    expect(newTiles(0, 0)).toEqual([]);
  });

  it('adds exactly the tiles the larger tree has and the smaller has not (property)', () => {
    const key = (t: TileId) => tilePath(t);
    fc.assert(
      fc.property(fc.nat({ max: 3_000_000 }), fc.nat({ max: 300_000 }), (a, grow) => {
        const before = new Set(newTiles(0, a).map(key));
        const after = newTiles(0, a + grow).map(key);
        expect(newTiles(a, a + grow).map(key)).toEqual(after.filter((p) => !before.has(p)));
      }),
      { numRuns: 200 },
    );
  });

  it('rewrites only the changed tiles when k entries are appended', () => {
    expect(paths(newTiles(70_000, 70_001))).toEqual(['tile/0/273.p/113']);
    expect(paths(newTiles(70_143, 70_144))).toEqual(['tile/0/273', 'tile/1/001.p/18']);
    expect(failure(() => newTiles(5, 4)).code).toBe('BAD_DATA');
  });

  it('finds the tiles holding the nodes of a proof', () => {
    const plan = inclusionProofPlan(69_999, 70_000);
    const tiles = tilesForNodes(plan.flat(), 70_000);
    expect(paths(tiles).sort()).toEqual(
      // D[0:65536] from level 2, D[65536:69888] from level 1, the rest from level 0.
      ['tile/0/273.p/112', 'tile/1/001.p/17', 'tile/2/000.p/1'].sort(),
    );
    const incomplete: NodeId = { level: 1, index: 34_999 };
    expect(failure(() => tilesForNodes([incomplete], 69_999)).code).toBe('BAD_DATA');
  });
});

describe('tile and entry bundle encoding', () => {
  const tile = { level: 0, index: 3, width: 2 };

  it('decodes tiles of exactly their width', () => {
    const hashes = [hashLeaf(new Uint8Array([1])), hashLeaf(new Uint8Array([2]))];
    const bytes = encodeTile(hashes);
    expect(decodeTile(bytes, tile)).toEqual(hashes);
    for (const wrong of [bytes.subarray(0, 63), new Uint8Array(96), new Uint8Array(0)]) {
      expect(failure(() => decodeTile(wrong, tile)).code).toBe('TILE_INVALID');
    }
    expect(failure(() => encodeTile([])).code).toBe('TILE_INVALID');
    expect(failure(() => encodeTile([new Uint8Array(31)])).code).toBe('TILE_INVALID');
  });

  it('decodes entry bundles of exactly their width', () => {
    const bytes = encodeEntryBundle([Buffer.from('ab'), Buffer.from('')]);
    expect(Buffer.from(bytes).toString('hex')).toBe('000261620000');
    expect(decodeEntryBundle(bytes, tile).map((e) => Buffer.from(e).toString())).toEqual([
      'ab',
      '',
    ]);
    for (const [what, wrong] of [
      ['truncated length', bytes.subarray(0, 5)],
      ['truncated entry', bytes.subarray(0, 3)],
      ['trailing bytes', Buffer.concat([bytes, Buffer.from([0])])],
      ['an extra entry', Buffer.concat([bytes, Buffer.from([0, 0])])],
      ['one entry short', bytes.subarray(0, 4)],
      ['a length beyond the end', Buffer.from([0xff, 0xff, 1])],
      ['nothing', new Uint8Array(0)],
    ] as const) {
      expect(failure(() => decodeEntryBundle(wrong, tile)).code, what).toBe('TILE_INVALID');
    }
    expect(failure(() => encodeEntryBundle([new Uint8Array(65_536)])).code).toBe(
      'PAYLOAD_TOO_LARGE',
    );
    expect(
      decodeEntryBundle(encodeEntryBundle([new Uint8Array(65_535)]), { ...tile, width: 1 })[0],
    ).toHaveLength(65_535);
  });

  it('caps a bundle at what its entries can hold, or at a configured size below that', () => {
    const largest = encodeEntryBundle([new Uint8Array(65_535)]);
    expect(maxBundleBytes(1)).toBe(largest.length);
    expect(maxBundleBytes(256)).toBe(256 * largest.length);
    expect(maxBundleBytes(1, 1 << 24)).toBe(2 + 65_535);
    expect(maxBundleBytes(256, 1 << 24)).toBe(1 << 24);
    expect(maxBundleBytes(256, 1000)).toBe(1000);
  });

  it('decodes or rejects arbitrary bundles, and round-trips (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.integer({ min: 1, max: 256 }),
        (bytes, width) => {
          try {
            const entries = decodeEntryBundle(bytes, { level: 0, index: 0, width });
            expect(encodeEntryBundle(entries)).toEqual(bytes);
          } catch (error) {
            expect((error as VouchError).code).toBe('TILE_INVALID');
          }
        },
      ),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 256 }),
        (entries) => {
          const tileId = { level: 0, index: 0, width: entries.length };
          expect(decodeEntryBundle(encodeEntryBundle(entries), tileId)).toEqual(entries);
        },
      ),
    );
  });

  it('reads node hashes through tiles and checks each tile it fetches', async () => {
    const leaves = Array.from({ length: 300 }, (_, i) =>
      hashLeaf(new Uint8Array([i % 256, Math.floor(i / 256)])),
    );
    const fetched: string[] = [];
    const reader = tileHashReader(300, async (t) => {
      fetched.push(tilePath(t));
      if (t.level === 1) return encodeTile([perfectRoot(leaves.slice(0, 256))]);
      return encodeTile(leaves.slice(t.index * 256, t.index * 256 + t.width));
    });
    const [n8, n2, leaf] = await reader([
      { level: 8, index: 0 },
      { level: 2, index: 65 },
      { level: 0, index: 299 },
    ]);
    expect(n8).toEqual(perfectRoot(leaves.slice(0, 256)));
    expect(n2).toEqual(perfectRoot(leaves.slice(260, 264)));
    expect(leaf).toEqual(leaves[299]);
    expect(fetched.sort()).toEqual(['tile/0/001.p/44', 'tile/1/000.p/1']);

    const short = tileHashReader(300, async () => new Uint8Array(32 * 43));
    expect((await rejection(short([{ level: 0, index: 299 }]))).code).toBe('TILE_INVALID');
  });
});

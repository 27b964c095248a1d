import { VouchError } from './errors';
import { checkIndex, type HashReader, hashChildren, hashSize, type NodeId } from './merkle';

/**
 * C2SP tlog-tiles (https://c2sp.org/tlog-tiles): the Merkle tree served as static tiles of
 * 256 hashes (height 8), and the entries as bundles of uint16 length-prefixed entries.
 */

export const tileHeight = 8;
/** Hashes in a full tile, entries in a full bundle. */
export const fullWidth = 256;
/** Entries are uint16 length-prefixed in a bundle (c2sp.org/tlog-tiles#log-entries). */
export const maxEntrySize = 0xffff;

/**
 * The cap on the bytes of an entry bundle of `width` entries: what they can hold (a uint16
 * length and at most maxEntrySize bytes each), or `configured` when that is less.
 */
export function maxBundleBytes(width: number, configured = Number.POSITIVE_INFINITY): number {
  return Math.min(configured, width * (2 + maxEntrySize));
}
/** tlog-tiles: levels are 0 to 63. */
const maxLevel = 63;

/**
 * A tile at `level` (0 holds leaf hashes; level l ≥ 1 holds roots of full tiles at level
 * l − 1) and `index` within the level, with `width` hashes (256 = full, else partial).
 * At level 0 the same coordinates name the entry bundle.
 */
export interface TileId {
  readonly level: number;
  readonly index: number;
  readonly width: number;
}

export interface TilePath {
  readonly kind: 'tile' | 'entries';
  readonly tile: TileId;
}

/** tlog-tiles: <N> in zero-padded 3-digit path elements, all but the last prefixed `x`. */
export function formatTileIndex(index: number): string {
  const digits = checkIndex(index, 'tile index').toString();
  const padded = digits.padStart(Math.ceil(digits.length / 3) * 3, '0');
  const groups = padded.match(/\d{3}/g) as string[];
  return groups.map((group, i) => (i < groups.length - 1 ? `x${group}` : group)).join('/');
}

function suffix(width: number): string {
  return width === fullWidth ? '' : `.p/${width}`;
}

/** `tile/<L>/<N>[.p/<W>]`. */
export function tilePath(tile: TileId): string {
  checkTile(tile);
  return `tile/${tile.level}/${formatTileIndex(tile.index)}${suffix(tile.width)}`;
}

/** `tile/entries/<N>[.p/<W>]`: the entries hashed into level-0 tile N. */
export function entryBundlePath(tile: TileId): string {
  checkTile(tile);
  if (tile.level !== 0) throw new VouchError('TILE_INVALID', 'entry bundles are at level 0');
  return `tile/entries/${formatTileIndex(tile.index)}${suffix(tile.width)}`;
}

const pathPattern =
  /^tile\/(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/;

/** Parses a tile or entry bundle path exactly as written by {@link tilePath}; else TILE_INVALID. */
export function parseTilePath(path: string): TilePath {
  const match = pathPattern.exec(path);
  if (!match) throw new VouchError('TILE_INVALID', `not a tile path: ${JSON.stringify(path)}`);
  const [, levelText = '', indexText = '', widthText] = match;
  const kind = levelText === 'entries' ? 'entries' : 'tile';
  const level = kind === 'entries' ? 0 : Number(levelText);
  const index = Number(indexText.replaceAll('x', '').replaceAll('/', ''));
  const width = widthText === undefined ? fullWidth : Number(widthText);
  // A partial tile has 1 to 255 hashes; 256 is spelled without the .p/ suffix.
  const partialTooWide = widthText !== undefined && width >= fullWidth;
  if (level > maxLevel || partialTooWide || !Number.isSafeInteger(index)) {
    throw new VouchError('TILE_INVALID', `tile path out of range: ${path}`);
  }
  // One spelling per index: no leading x000 elements.
  if (formatTileIndex(index) !== indexText) {
    throw new VouchError('TILE_INVALID', `tile index not in canonical form: ${path}`);
  }
  return { kind, tile: { level, index, width } };
}

function checkTile(tile: TileId): void {
  const { level, index, width } = tile;
  if (!Number.isInteger(level) || level < 0 || level > maxLevel) {
    throw new VouchError('TILE_INVALID', `tile level ${level} is not 0 to ${maxLevel}`);
  }
  checkIndex(index, 'tile index');
  if (!Number.isInteger(width) || width < 1 || width > fullWidth) {
    throw new VouchError('TILE_INVALID', `tile width ${width} is not 1 to ${fullWidth}`);
  }
}

/** Hashes at tile level `level` in a tree of `size` leaves: floor(size / 256^level). */
function hashesAtLevel(level: number, size: number): number {
  return Math.floor(size / fullWidth ** level);
}

/**
 * The width of tile `index` at `level` in a tree of `size` leaves: 256 when full, else
 * floor(size / 256^level) mod 256 (tlog-tiles §Partial Tiles); 0 when it has no hashes yet.
 */
export function tileWidth(level: number, index: number, size: number): number {
  const count = hashesAtLevel(level, size) - index * fullWidth;
  return Math.max(0, Math.min(fullWidth, count));
}

/**
 * The tiles a tree of `newSize` has and one of `oldSize` has not: the tiles a publisher
 * writes when the tree grows (every tile of the tree when `oldSize` is 0). Their level-0
 * members are also the entry bundles a client fetches to get the new entries.
 * (tlog-tiles §Partial Tiles: the partial tile at level l has floor(s / 256^l) mod 256 hashes.)
 */
export function newTiles(oldSize: number, newSize: number): TileId[] {
  checkIndex(oldSize, 'old tree size');
  checkIndex(newSize, 'tree size');
  if (oldSize > newSize) throw new VouchError('BAD_DATA', 'a tree never shrinks');
  const tiles: TileId[] = [];
  for (let level = 0; level <= maxLevel; level++) {
    const before = hashesAtLevel(level, oldSize);
    const after = hashesAtLevel(level, newSize);
    if (after === 0) break;
    if (after === before) continue;
    const last = Math.ceil(after / fullWidth);
    for (let index = Math.floor(before / fullWidth); index < last; index++) {
      tiles.push({ level, index, width: tileWidth(level, index, newSize) });
    }
  }
  return tiles;
}

/** Where a complete subtree's hash comes from: a run of hashes within one tile. */
interface TileSlice {
  readonly tile: TileId;
  readonly offset: number;
  readonly count: number;
}

/**
 * The tile holding node `id` of a tree of `size` leaves. A node between tile levels is
 * the root of 2^r adjacent hashes of the tile level below it (tlog-tiles: the levels
 * inside a tile are reconstructed by hashing).
 */
function locate(id: NodeId, size: number): TileSlice {
  const { level, index } = id;
  if (!Number.isInteger(level) || level < 0 || level > maxLevel * tileHeight) {
    throw new VouchError('BAD_DATA', `node level ${level} out of range`);
  }
  checkIndex(index, 'node index');
  if ((index + 1) * 2 ** level > size) {
    throw new VouchError('BAD_DATA', `node ${level}/${index} is not complete in size ${size}`);
  }
  const tileLevel = Math.floor(level / tileHeight);
  const count = 2 ** (level % tileHeight);
  const first = index * count;
  const tileIndex = Math.floor(first / fullWidth);
  return {
    tile: { level: tileLevel, index: tileIndex, width: tileWidth(tileLevel, tileIndex, size) },
    offset: first - tileIndex * fullWidth,
    count,
  };
}

/** A tile's identity as a map key: level, index and width (a partial tile is another tile). */
export function tileKey(tile: TileId): string {
  return `${tile.level}/${tile.index}/${tile.width}`;
}

/** The tiles (with their widths in a tree of `size`) that hold the given nodes. */
export function tilesForNodes(ids: readonly NodeId[], size: number): TileId[] {
  const tiles = new Map<string, TileId>();
  for (const id of ids) {
    const { tile } = locate(id, size);
    tiles.set(tileKey(tile), tile);
  }
  return [...tiles.values()];
}

/** Fetches a tile's bytes (`tile/<L>/<N>[.p/<W>]`), from files or from a mirror. */
export type TileFetcher = (tile: TileId) => Promise<Uint8Array>;

/**
 * A {@link HashReader} over the tiles of a tree of `size` leaves: fetches each tile it
 * needs once, in parallel, checks its length, and hashes within tiles as needed.
 */
export function tileHashReader(size: number, fetch: TileFetcher): HashReader {
  checkIndex(size, 'tree size');
  return async (ids) => {
    const slices = ids.map((id) => locate(id, size));
    const tiles = new Map<string, Promise<readonly Uint8Array[]>>();
    for (const { tile } of slices) {
      const key = tileKey(tile);
      if (!tiles.has(key))
        tiles.set(
          key,
          fetch(tile).then((bytes) => decodeTile(bytes, tile)),
        );
    }
    return Promise.all(
      slices.map(async ({ tile, offset, count }) => {
        const hashes = (await tiles.get(tileKey(tile))) as readonly Uint8Array[];
        return perfectRoot(hashes.slice(offset, offset + count));
      }),
    );
  };
}

/** MTH of 2^k hashes, pairwise level by level. */
export function perfectRoot(hashes: readonly Uint8Array[]): Uint8Array {
  let level = hashes;
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(hashChildren(level[i] as Uint8Array, level[i + 1] as Uint8Array));
    }
    level = next;
  }
  const [root] = level;
  if (root === undefined) throw new VouchError('INTERNAL', 'root of no hashes');
  return root;
}

export function encodeTile(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length < 1 || hashes.length > fullWidth) {
    throw new VouchError('TILE_INVALID', `a tile holds 1 to ${fullWidth} hashes`);
  }
  const bytes = new Uint8Array(hashes.length * hashSize);
  hashes.forEach((hash, i) => {
    if (hash.length !== hashSize) throw new VouchError('TILE_INVALID', 'tile hash size');
    bytes.set(hash, i * hashSize);
  });
  return bytes;
}

/** A tile is exactly `width` 32-byte hashes (tlog-tiles §Merkle Tree). */
export function decodeTile(bytes: Uint8Array, tile: TileId): Uint8Array[] {
  checkTile(tile);
  if (bytes.length !== tile.width * hashSize) {
    throw new VouchError(
      'TILE_INVALID',
      `tile ${tilePath(tile)} is ${bytes.length} bytes, expected ${tile.width * hashSize}`,
    );
  }
  const hashes: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += hashSize) {
    hashes.push(bytes.subarray(at, at + hashSize));
  }
  return hashes;
}

export function encodeEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  if (entries.length < 1 || entries.length > fullWidth) {
    throw new VouchError('TILE_INVALID', `an entry bundle holds 1 to ${fullWidth} entries`);
  }
  let length = 0;
  for (const entry of entries) {
    if (entry.length > maxEntrySize) {
      throw new VouchError('PAYLOAD_TOO_LARGE', `an entry is at most ${maxEntrySize} bytes`);
    }
    length += 2 + entry.length;
  }
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const entry of entries) {
    bytes[at] = Math.floor(entry.length / 256);
    bytes[at + 1] = entry.length % 256;
    bytes.set(entry, at + 2);
    at += 2 + entry.length;
  }
  return bytes;
}

/** Where the uint16 big-endian length-prefixed entry at `at` ends, or undefined when `bytes` ends first. */
function entryEnd(bytes: Uint8Array, at: number): number | undefined {
  if (at + 2 > bytes.length) return undefined;
  const end = at + 2 + (((bytes[at] as number) << 8) | (bytes[at + 1] as number));
  return end <= bytes.length ? end : undefined;
}

/**
 * The whole entries at the start of `bytes`, at most `max` of them, and the offset where
 * they end: the one reader of the uint16 big-endian length-prefixed entry encoding
 * (c2sp.org/tlog-tiles#log-entries), for bundles, the publisher's staged entries and the
 * device's entries file (core/entries-file.ts) alike. Bytes from `end` on are entries past
 * `max`, or one cut short. The entries are views into `bytes`.
 */
export function splitEntries(
  bytes: Uint8Array,
  max = Number.POSITIVE_INFINITY,
): { readonly entries: Uint8Array[]; readonly end: number } {
  const entries: Uint8Array[] = [];
  let at = 0;
  while (entries.length < max) {
    const end = entryEnd(bytes, at);
    if (end === undefined) break;
    entries.push(bytes.subarray(at + 2, end));
    at = end;
  }
  return { entries, end: at };
}

/** Exactly `tile.width` uint16 big-endian length-prefixed entries, nothing after them. */
export function decodeEntryBundle(bytes: Uint8Array, tile: TileId): Uint8Array[] {
  const path = entryBundlePath(tile);
  const { entries, end } = splitEntries(bytes, tile.width);
  if (end < bytes.length) {
    throw new VouchError(
      'TILE_INVALID',
      entries.length === tile.width
        ? `${path}: bytes after entry ${tile.width}`
        : `${path}: entry ${entries.length} is truncated`,
    );
  }
  if (entries.length !== tile.width) {
    throw new VouchError('TILE_INVALID', `${path}: ${entries.length} entries, not ${tile.width}`);
  }
  return entries;
}

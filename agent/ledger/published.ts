import { join } from 'node:path';
import { VouchError } from '../core/errors';
import { type HashReader, hashSize } from '../core/merkle';
import { fullWidth, type TileId, tileHashReader, tilePath, tileWidth } from '../core/tiles';
import { readFileCapped } from '../files';
import { publicDir } from './logdir';

/** The bytes of a published tile, exactly `tile.width` hashes long. */
export async function readTile(dir: string, tile: TileId): Promise<Uint8Array> {
  const path = join(publicDir(dir), tilePath(tile));
  const bytes = await readFileCapped(path, fullWidth * hashSize + 1, 'tile');
  if (bytes === undefined) throw new VouchError('LOG_INVALID', `${path} is missing`);
  if (bytes.length !== tile.width * hashSize) {
    throw new VouchError(
      'TILE_INVALID',
      `${path} is ${bytes.length} bytes, expected ${tile.width * hashSize}`,
    );
  }
  return bytes;
}

/**
 * Hashes of the tree of `size` leaves, read from the tiles published for `publishedSize`
 * ≥ `size`. Only the partial tiles of published sizes exist, and a partial tile is a
 * prefix of every wider one (c2sp.org/tlog-tiles §Partial Tiles), so a smaller tree's
 * tile is cut from the published one.
 */
export function publishedReader(dir: string, publishedSize: number, size: number): HashReader {
  if (size > publishedSize) {
    throw new VouchError(
      'BAD_DATA',
      `the log has published ${publishedSize} entries; there is no tree of size ${size}`,
    );
  }
  return tileHashReader(size, async (tile) => {
    const bytes = await readTile(dir, {
      ...tile,
      width: tileWidth(tile.level, tile.index, publishedSize),
    });
    return bytes.subarray(0, tile.width * hashSize);
  });
}

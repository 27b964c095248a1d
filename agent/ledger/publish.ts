import { dirname, join } from 'node:path';
import { signCheckpoint } from '../core/checkpoint';
import { cosignNote, logCosigner, verifyCosignatures } from '../core/cosignature';
import { VouchError } from '../core/errors';
import type { PrivateKey } from '../core/keys';
import { consistencyProof, hashLeaf, treeRoot, verifyConsistency } from '../core/merkle';
import { formatNote, type Note } from '../core/note';
import {
  decodeTile,
  encodeEntryBundle,
  encodeTile,
  entryBundlePath,
  fullWidth,
  newTiles,
  perfectRoot,
  type TileId,
  tileHashReader,
  tileKey,
  tilePath,
  tileWidth,
} from '../core/tiles';
import { makeDirectory, syncDirectory, writeFileDurably } from '../files';
import { readEntries } from './entries';
import {
  type LogConfig,
  layout,
  lockLog,
  publicDir,
  readCheckpoint,
  readConfig,
  readState,
  requireLogKey,
} from './logdir';
import { readTile } from './published';

export interface PublishResult {
  readonly origin: string;
  /** Size of the checkpoint published before. */
  readonly previousSize: number;
  readonly size: number;
  readonly root: Uint8Array;
  /** Tile and entry bundle files written. */
  readonly tiles: number;
  readonly bundles: number;
  /** The checkpoint's signed time (POSIX seconds): the log's own cosignature. */
  readonly timestamp: number;
  /** The signed checkpoint note now at public/checkpoint. */
  readonly checkpoint: string;
}

/** Files are fsynced in parallel: each fsync waits on the disk, not the CPU. */
const parallelWrites = 16;

/**
 * Publishes every committed entry: the tiles and entry bundles that change
 * (c2sp.org/tlog-tiles), then — only once they are all durable — the checkpoint signed
 * with the log key and cosigned by it at `now` (its signed time, cosignature.ts
 * logCosigner). Nothing a published checkpoint refers to is ever rewritten: full tiles
 * are new files, partial tiles of a new width are new names. So a reader, or a publish
 * killed at any point, always finds a checkpoint whose tiles are all there.
 *
 * With nothing new, the same checkpoint gets a new time: devices measure freshness from
 * signed times, so a quiet log stays fresh only by being re-signed (run publish at least
 * once per devices' sync.maxAge). The text is unchanged, so the witnesses' cosignatures
 * on it still hold and are kept.
 */
export async function publishLog(
  dir: string,
  key: PrivateKey,
  now: Date = new Date(),
): Promise<PublishResult> {
  return lockLog(dir, async () => {
    const config = await readConfig(dir);
    requireLogKey(config, key);
    const size = await readState(dir);
    const { checkpoint: old, note: oldNote } = await readCheckpoint(dir, config);
    if (old.size > size) {
      throw new VouchError('LOG_INVALID', `published ${old.size} entries, committed only ${size}`);
    }
    const timestamp = signingTime(config, oldNote, now);
    const result = { origin: config.origin, previousSize: old.size, size, timestamp };
    if (old.size === size) {
      const note = formatNote(cosignNote(oldNote, key, config.origin, timestamp));
      await writeFileDurably(join(publicDir(dir), layout.checkpoint), note);
      return { ...result, root: old.root, tiles: 0, bundles: 0, checkpoint: note };
    }

    const tiles = newTiles(old.size, size);
    const files = new Map<string, Uint8Array>();
    // Hashes of the tiles written now, by tile key, for the level above and for the root.
    const fresh = new Map<string, Uint8Array[]>();
    const start = Math.floor(old.size / fullWidth) * fullWidth;
    const entries = await readEntries(dir, start, size);
    for (const tile of tiles) {
      let hashes: Uint8Array[];
      if (tile.level === 0) {
        const bundle = entries.slice(
          tile.index * fullWidth - start,
          tile.index * fullWidth - start + tile.width,
        );
        files.set(entryBundlePath(tile), encodeEntryBundle(bundle));
        hashes = bundle.map(hashLeaf);
      } else {
        hashes = await levelHashes(dir, tile, old.size, fresh);
      }
      fresh.set(tileKey(tile), hashes);
      files.set(tilePath(tile), encodeTile(hashes));
    }

    const reader = tileHashReader(size, async (tile) => {
      const hashes = fresh.get(tileKey(tile));
      return hashes ? encodeTile(hashes) : readTile(dir, tile);
    });
    const root = await treeRoot(size, reader);
    // tlog-checkpoint §Signatures: never sign a checkpoint inconsistent with an earlier one.
    if (old.size > 0) {
      verifyConsistency(
        old.size,
        size,
        old.root,
        root,
        await consistencyProof(old.size, size, reader),
      );
    }

    await writeAll(publicDir(dir), files);
    const note = formatNote(
      signCheckpoint({ origin: config.origin, size, root, extensions: [] }, key, timestamp),
    );
    await writeFileDurably(join(publicDir(dir), layout.checkpoint), note);
    return {
      ...result,
      root,
      tiles: tiles.length,
      bundles: tiles.filter((tile) => tile.level === 0).length,
      checkpoint: note,
    };
  });
}

/**
 * The time to sign (POSIX seconds): now, but never before the log's previous signed time.
 * A device refuses a larger tree signed before a time it has seen (a rollback), so a
 * publisher clock stepping back must not date a new checkpoint before an older one.
 */
function signingTime(config: LogConfig, previous: Note, now: Date): number {
  const [own] = verifyCosignatures(previous, [logCosigner(config.key)], 0);
  return Math.max(Math.floor(now.getTime() / 1000), own?.timestamp ?? 0);
}

/**
 * A tile at level ≥ 1: hash j is the root of full tile j one level down. Hashes that
 * existed at the old size come from the published partial tile; the others from the
 * full tiles written in this publish.
 */
async function levelHashes(
  dir: string,
  tile: TileId,
  oldSize: number,
  fresh: ReadonlyMap<string, Uint8Array[]>,
): Promise<Uint8Array[]> {
  const oldWidth = tileWidth(tile.level, tile.index, oldSize);
  const hashes =
    oldWidth > 0
      ? decodeTile(await readTile(dir, { ...tile, width: oldWidth }), { ...tile, width: oldWidth })
      : [];
  for (let j = tile.index * fullWidth + oldWidth; j < tile.index * fullWidth + tile.width; j++) {
    const below = fresh.get(tileKey({ level: tile.level - 1, index: j, width: fullWidth }));
    if (!below) throw new VouchError('INTERNAL', `tile ${tile.level - 1}/${j} was not written`);
    hashes.push(perfectRoot(below));
  }
  return hashes;
}

/** Writes every file durably, then syncs their directories. */
async function writeAll(root: string, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  const directories = new Set([...files.keys()].map((path) => dirname(join(root, path))));
  for (const directory of directories) await makeDirectory(directory);
  const queue = [...files];
  await Promise.all(
    Array.from({ length: parallelWrites }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        await writeFileDurably(join(root, next[0]), next[1], { syncDirectory: false });
      }
    }),
  );
  for (const directory of directories) await syncDirectory(directory);
}

import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Checkpoint } from '../../agent/core/checkpoint';
import { generateKey, type PrivateKey } from '../../agent/core/keys';
import { hashLeaf, treeRoot } from '../../agent/core/merkle';
import {
  decodeEntryBundle,
  decodeTile,
  entryBundlePath,
  fullWidth,
  newTiles,
  perfectRoot,
  tileHashReader,
  tilePath,
} from '../../agent/core/tiles';
import { initLog, publicDir, readCheckpoint, readConfig } from '../../agent/ledger';

export const testOrigin = 'log.example.org/vouch';

/**
 * A new log in a temp directory, with its private key, also written to `keyPath` (0600);
 * its empty checkpoint is signed at `createdAt`.
 */
export async function tempLog(
  createdAt = new Date(),
): Promise<{ dir: string; key: PrivateKey; keyPath: string }> {
  const parent = await mkdtemp(join(tmpdir(), 'vouch-log-'));
  const { key, privatePem } = generateKey();
  const keyPath = join(parent, 'log.key');
  await writeFile(keyPath, privatePem, { mode: 0o600 });
  const dir = join(parent, 'log');
  await initLog(dir, testOrigin, keyPath, key, createdAt);
  return { dir, key, keyPath };
}

/** Distinct small entries: `entry <i>`. */
export function entries(from: number, to: number): Uint8Array[] {
  return Array.from({ length: to - from }, (_, i) => Buffer.from(`entry ${from + i}`));
}

/**
 * Checks a published log directory the way an independent client would: the checkpoint
 * verifies with the log key; every tile and entry bundle of its tree is there, with the
 * right length; level-0 tiles hash the bundles' entries; each higher tile holds the roots
 * of the full tiles below; and the tiles give the checkpoint's root.
 */
export async function verifyPublished(dir: string): Promise<Checkpoint> {
  const { checkpoint } = await readCheckpoint(dir, await readConfig(dir));
  const read = async (path: string) => new Uint8Array(await readFile(join(publicDir(dir), path)));
  const tiles = new Map<string, Uint8Array[]>();
  for (const tile of newTiles(0, checkpoint.size)) {
    const hashes = decodeTile(await read(tilePath(tile)), tile);
    if (tile.level === 0) {
      const entries = decodeEntryBundle(await read(entryBundlePath(tile)), tile);
      expectEqual(entries.map(hashLeaf), hashes, `${tilePath(tile)} vs its entry bundle`);
    } else {
      const below = hashes.map((_, i) => {
        const full = tiles.get(`${tile.level - 1}/${tile.index * fullWidth + i}`);
        if (!full) throw new Error(`${tilePath(tile)}: tile below is not full`);
        return perfectRoot(full);
      });
      expectEqual(below, hashes, `${tilePath(tile)} vs the tiles below`);
    }
    if (tile.width === fullWidth) tiles.set(`${tile.level}/${tile.index}`, hashes);
  }
  const root = await treeRoot(
    checkpoint.size,
    tileHashReader(checkpoint.size, (tile) => read(tilePath(tile))),
  );
  expectEqual([root], [checkpoint.root], 'root of the tiles vs the checkpoint');
  return checkpoint;
}

function expectEqual(actual: Uint8Array[], expected: Uint8Array[], what: string): void {
  const hex = (list: Uint8Array[]) => list.map((h) => Buffer.from(h).toString('hex')).join();
  if (hex(actual) !== hex(expected)) throw new Error(`mismatch: ${what}`);
}

import { createHash } from 'node:crypto';
import { createReadStream, type Dirent } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { z } from 'zod';
import { digestHex, dockerError } from '../../content/docker';
import { Crc64Iso } from '../../core/crc64';
import { VouchError } from '../../core/errors';
import { describeIssues } from '../../core/json';
import { applyLayer, type DirNode, newDir, shown, type TreeNode } from './layer-model';
import { readTarSplit } from './tarsplit';

/**
 * `vouch verify image --tree`: compares each layer's directory in Docker's storage with the
 * file list Docker recorded for the layer (its tar-split record, tarsplit.ts), and reports
 * what was added, removed or changed on disk. `docker save` rebuilds each layer from that
 * list, so a file added to a layer's directory never shows in an export (deep.ts); it does
 * show in the containers made from the image.
 *
 * Compared: each path's type; a regular file's size and CRC-64/ISO (the checksum the record
 * holds); a symlink's target. Not compared: permissions, ownership, times, extended
 * attributes, device numbers. Storage drivers: vfs, where a layer's directory holds the
 * whole filesystem up to that layer (a copy of its parent's plus its own changes), and
 * overlay2, where `<cache-id>/diff` holds only the layer's own changes, with a deleted
 * path as a 0/0 character device; an opaque directory's marker there is an extended
 * attribute (`trusted.overlay.opaque`), which is not read. Reading the storage needs root.
 * What each directory should hold comes from layer-model.ts; this walks the disk beside it.
 */

export type StorageDriver = 'vfs' | 'overlay2';

export interface DockerStorage {
  /** DockerRootDir, e.g. /var/lib/docker. */
  readonly root: string;
  readonly driver: StorageDriver;
}

export interface TreeLayer {
  /** The config's diff_id for this layer (`sha256:<hex>`). */
  readonly diffId: string;
  /** Paths in the image (`/etc/x`), sorted: on disk but not in the layer's record. */
  readonly added: readonly string[];
  /** In the record, missing on disk. */
  readonly removed: readonly string[];
  /** On disk with another type, size, content or symlink target. */
  readonly changed: readonly string[];
}

export interface TreeCheck {
  /** Every layer's directory holds exactly what the layer records list. */
  readonly matches: boolean;
  readonly driver: StorageDriver;
  /** In diff_ids order. */
  readonly layers: readonly TreeLayer[];
}

const infoSchema = z.looseObject({
  Driver: z.string(),
  DockerRootDir: z.string().startsWith('/'),
  /** The driver's [name, value] pairs (graphdriver Status()); null for vfs. */
  DriverStatus: z.array(z.tuple([z.string(), z.string()])).nullish(),
});
/** Docker names a layer's directory by a random 64-hex cache ID (layer store). */
const cacheIdPattern = /^[0-9a-f]{64}$/;
/** Paths listed in a reason per kind of difference; the result lists them all. */
const pathsInReason = 3;

/** Where and how Docker stores layers; USAGE for a driver this check cannot read. */
export async function dockerStorage(docker: Docker): Promise<DockerStorage> {
  let info: unknown;
  try {
    info = await docker.info();
  } catch (error) {
    throw dockerError(error, 'cannot ask Docker where it stores images', 'info');
  }
  const parsed = infoSchema.safeParse(info);
  if (!parsed.success) {
    throw new VouchError('BAD_DATA', `docker info: ${describeIssues(parsed.error)}`);
  }
  const { Driver: driver, DockerRootDir: root, DriverStatus: status } = parsed.data;
  if (driver !== 'vfs' && driver !== 'overlay2') {
    throw new VouchError(
      'USAGE',
      `the tree check reads the vfs and overlay2 storage drivers; Docker uses ${driver}`,
    );
  }
  // overlay2 (overlay.go ApplyDiff) unpacks onto the mounted layers when the kernel fails
  // its native diff probe: an opaque directory then holds a whiteout per lower path.
  const nativeDiff = status?.find(([name]) => name === 'Native Overlay Diff')?.[1];
  if (driver === 'overlay2' && nativeDiff === 'false') {
    throw new VouchError(
      'USAGE',
      'the tree check reads overlay2 storage only with native overlay diff; Docker reports Native Overlay Diff: false',
    );
  }
  return { root, driver };
}

/**
 * Compares the directories of the layers `diffIds` (an image's rootfs.diff_ids) with their
 * records. Differences are a result (`matches: false`); storage that cannot be read is IO
 * (with a word on root), a record that is not one BAD_DATA.
 */
export async function treeCheck(
  storage: DockerStorage,
  diffIds: readonly string[],
): Promise<TreeCheck> {
  const whole = storage.driver === 'vfs';
  const layerdb = join(storage.root, 'image', storage.driver, 'layerdb/sha256');
  const layers: TreeLayer[] = [];
  try {
    let tree = newDir(0);
    for (const [i, chainId] of chainIds(diffIds).entries()) {
      const diffId = diffIds[i] as string;
      const record = join(layerdb, chainId.slice('sha256:'.length));
      const cacheId = (await readFile(join(record, 'cache-id'), 'utf8')).trim();
      if (!cacheIdPattern.test(cacheId)) {
        throw new VouchError('BAD_DATA', `layer ${i + 1} has an unexpected cache ID ${cacheId}`);
      }
      const entries = await readTarSplit(join(record, 'tar-split.json.gz'));
      if (!whole) tree = newDir(i);
      applyLayer(tree, entries, i, whole ? 'delete' : 'mark');
      const dir = whole
        ? join(storage.root, 'vfs/dir', cacheId)
        : join(storage.root, 'overlay2', cacheId, 'diff');
      const found: Differences = { added: [], removed: [], changed: [] };
      await compareDir(Buffer.from(dir), tree, '', found);
      layers.push({
        diffId,
        added: found.added.map(shown).sort(),
        removed: found.removed.map(shown).sort(),
        changed: found.changed.map(shown).sort(),
      });
    }
  } catch (error) {
    throw storageError(error);
  }
  return { matches: !layers.some(differs), driver: storage.driver, layers };
}

/**
 * OCI image spec, config.md "Layer ChainID": ChainID(L₁) = DiffID(L₁) and
 * ChainID(Lₙ) = SHA256(ChainID(Lₙ₋₁) + " " + DiffID(Lₙ)): the layer store's key for a
 * layer with the layers below it.
 */
function chainIds(diffIds: readonly string[]): string[] {
  const chain: string[] = [];
  for (const diffId of diffIds) {
    digestHex(diffId, 'diff_id');
    const below = chain.at(-1);
    const hex = below && createHash('sha256').update(`${below} ${diffId}`).digest('hex');
    chain.push(hex ? `sha256:${hex}` : diffId);
  }
  return chain;
}

/**
 * The first differing layer, as a reason: `layer 2 of 3 differs on disk: 1 added (/x),
 * 0 removed, 1 changed (/y)`; null when every layer matches.
 */
export function describeTreeDifference(check: TreeCheck): string | null {
  const index = check.layers.findIndex(differs);
  const layer = check.layers[index];
  if (!layer) return null;
  const count = (paths: readonly string[], what: string) => {
    if (paths.length === 0) return `0 ${what}`;
    const listed = paths.slice(0, pathsInReason).join(', ');
    return `${paths.length} ${what} (${listed}${paths.length > pathsInReason ? ', …' : ''})`;
  };
  const others = check.layers.filter(differs).length - 1;
  return (
    `layer ${index + 1} of ${check.layers.length} differs on disk: ` +
    `${count(layer.added, 'added')}, ${count(layer.removed, 'removed')}, ${count(layer.changed, 'changed')}` +
    (others > 0 ? `; ${others} more ${others === 1 ? 'layer differs' : 'layers differ'}` : '')
  );
}

function differs(layer: TreeLayer): boolean {
  return layer.added.length + layer.removed.length + layer.changed.length > 0;
}

interface Differences {
  readonly added: string[];
  readonly removed: string[];
  readonly changed: string[];
}

const slash = Buffer.from('/');

/** Walks a directory on disk (paths as bytes, as names need not be UTF-8) beside `dir`. */
async function compareDir(
  diskPath: Buffer,
  dir: DirNode,
  path: string,
  found: Differences,
): Promise<void> {
  const seen = new Set<string>();
  for (const dirent of await readdir(diskPath, { withFileTypes: true, encoding: 'buffer' })) {
    const name = dirent.name.toString('latin1');
    seen.add(name);
    const childDisk = Buffer.concat([diskPath, slash, dirent.name]);
    const childPath = path === '' ? name : `${path}/${name}`;
    const expected = dir.children.get(name);
    if (!expected) await listAdded(childDisk, dirent, childPath, found.added);
    else if (expected.kind === 'dir' && dirent.isDirectory()) {
      await compareDir(childDisk, expected, childPath, found);
    } else if (!(await matches(childDisk, dirent, expected))) found.changed.push(childPath);
  }
  for (const [name, node] of dir.children) {
    if (!seen.has(name)) listRemoved(node, path === '' ? name : `${path}/${name}`, found.removed);
  }
}

async function matches(
  diskPath: Buffer,
  dirent: Dirent<Buffer>,
  expected: TreeNode,
): Promise<boolean> {
  switch (expected.kind) {
    case 'dir':
      return false; // a directory on disk was compared as one
    case 'file': {
      if (!dirent.isFile() || (await lstat(diskPath)).size !== expected.size) return false;
      return expected.size === 0 || (await crcOf(diskPath)).equals(expected.crc ?? Buffer.alloc(0));
    }
    case 'symlink':
      return (
        dirent.isSymbolicLink() &&
        (await readlink(diskPath, { encoding: 'buffer' })).toString('latin1') === expected.target
      );
    case 'whiteout':
      return dirent.isCharacterDevice() && (await lstat(diskPath)).rdev === 0;
    case 'char':
      return dirent.isCharacterDevice();
    case 'block':
      return dirent.isBlockDevice();
    case 'fifo':
      return dirent.isFIFO();
  }
}

async function crcOf(path: Buffer): Promise<Buffer> {
  const crc = new Crc64Iso();
  for await (const chunk of createReadStream(path, { highWaterMark: 2 ** 20 })) {
    crc.update(chunk as Buffer);
  }
  return crc.digest();
}

/** An added path, and everything under it when it is a directory. */
async function listAdded(
  diskPath: Buffer,
  dirent: Dirent<Buffer>,
  path: string,
  added: string[],
): Promise<void> {
  added.push(path);
  if (!dirent.isDirectory()) return;
  for (const child of await readdir(diskPath, { withFileTypes: true, encoding: 'buffer' })) {
    const name = child.name.toString('latin1');
    await listAdded(Buffer.concat([diskPath, slash, child.name]), child, `${path}/${name}`, added);
  }
}

/** A missing path, and everything the record has under it. */
function listRemoved(node: TreeNode, path: string, removed: string[]): void {
  removed.push(path);
  if (node.kind !== 'dir') return;
  for (const [name, child] of node.children) listRemoved(child, `${path}/${name}`, removed);
}

/** A failure to read the storage as IO, saying when it is for want of root. */
function storageError(error: unknown): VouchError {
  if (error instanceof VouchError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const denied = code === 'EACCES' || code === 'EPERM';
  const root = denied && process.getuid?.() !== 0 ? ' (the tree check needs root)' : '';
  return new VouchError('IO', `cannot read Docker's storage: ${(error as Error).message}${root}`, {
    cause: error,
  });
}

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
import { decodeSurrogateEscape } from '../../core/surrogate-escape';
import { type LayerEntry, readTarSplit } from './tarsplit';

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
 *
 * How a layer lands on disk follows moby's unpackers: vfs applies layers with UnpackLayer
 * (pkg/archive/diff.go, through the naive diff driver), overlay2 with Unpack and the
 * overlay whiteout converter (pkg/archive/archive.go, archive_linux.go) when its diff is
 * native. With naive diff overlay2 unpacks onto the mounted layers instead, which this
 * check does not model.
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
/** OCI image spec, layer.md "Whiteouts": `.wh.<name>` deletes name, this clears a directory. */
const whiteoutPrefix = '.wh.';
const opaqueMarker = '.wh..wh..opq';
/** moby pkg/archive/whiteouts.go: AUFS metadata (WhiteoutMetaPrefix) and its hard link dir. */
const aufsMetaPrefix = '.wh..wh.';
const aufsLinkDir = '.wh..wh.plnk';
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

/** What a layer's directory should hold; names are byte strings (tarsplit.ts). */
type Node =
  | DirNode
  | { readonly kind: 'file'; readonly size: number; readonly crc: Buffer | null; layer: number }
  | { readonly kind: 'symlink'; readonly target: string; layer: number }
  | { readonly kind: 'char' | 'block' | 'fifo' | 'whiteout'; layer: number };

interface DirNode {
  readonly kind: 'dir';
  readonly children: Map<string, Node>;
  /** The layer that unpacked it: an opaque directory keeps only its own layer's paths. */
  layer: number;
}

function newDir(layer: number): DirNode {
  return { kind: 'dir', children: new Map(), layer };
}

/**
 * Unpacks layer `layer`'s entries onto `tree` as Docker does (pkg/archive UnpackLayer and
 * Unpack): a path replaces what was there, a directory keeps its contents, parent
 * directories are made as needed. Whiteouts either `delete` what they name (vfs: the
 * directory is the whole filesystem) or `mark` it with a whiteout (overlay2 keeps a 0/0
 * character device).
 */
function applyLayer(
  tree: DirNode,
  entries: readonly LayerEntry[],
  layer: number,
  whiteouts: 'delete' | 'mark',
): void {
  /**
   * vfs: UnpackLayer's AUFS hard link sources, by base name (aufsHardlinks); overlay2's
   * Unpack keeps none.
   */
  const aufsLinks = whiteouts === 'delete' ? new Map<string, Node>() : undefined;
  for (const entry of entries) {
    const parts = pathParts(entry.name);
    const name = parts.at(-1);
    if (name === undefined) continue; // the root directory
    const parents = parts.slice(0, -1);
    // UnpackLayer skips AUFS metadata at the root (path.Clean(name) starts with .wh..wh.),
    // all but the root's opaque marker, after making a non-directory's parent. Unpack,
    // overlay2's, has no such skip: there `.wh..wh.plnk` is a whiteout like any other.
    if (aufsLinks && isAufsMetadata(entry.name, parts)) {
      if (entry.type !== 'dir') directory(tree, parents, layer);
      if (entry.type === 'file' && isAufsLinkPath(entry.name, parts)) {
        aufsLinks.set(name, nodeOf(tree, entry, layer, aufsLinks));
      }
      continue;
    }
    const parent = directory(tree, parents, layer);
    if (name === opaqueMarker) {
      if (whiteouts === 'delete') clearLower(parent, layer);
    } else if (name.startsWith(whiteoutPrefix)) {
      const hidden = name.slice(whiteoutPrefix.length);
      if (whiteouts === 'delete') parent.children.delete(hidden);
      else parent.children.set(hidden, { kind: 'whiteout', layer });
    } else {
      const existing = parent.children.get(name);
      if (entry.type === 'dir' && existing?.kind === 'dir') existing.layer = layer;
      else parent.children.set(name, nodeOf(tree, entry, layer, aufsLinks));
    }
  }
}

/** Go's path.Clean(name), for a name without `..` (pathParts refuses those): `/` stays. */
function cleanName(name: string, parts: readonly string[]): string {
  return (name.startsWith('/') ? '/' : '') + parts.join('/');
}

function isAufsMetadata(name: string, parts: readonly string[]): boolean {
  const clean = cleanName(name, parts);
  return clean.startsWith(aufsMetaPrefix) && clean !== opaqueMarker;
}

function isAufsLinkPath(name: string, parts: readonly string[]): boolean {
  return cleanName(name, parts).startsWith(aufsLinkDir);
}

function nodeOf(
  tree: DirNode,
  entry: LayerEntry,
  layer: number,
  aufsLinks: ReadonlyMap<string, Node> | undefined,
): Node {
  switch (entry.type) {
    case 'dir':
      return newDir(layer);
    case 'file':
      return { kind: 'file', size: entry.size, crc: entry.crc, layer };
    case 'symlink':
      return { kind: 'symlink', target: entry.linkname, layer };
    case 'hardlink': {
      // A hard link names a path unpacked before it: another name for the same inode.
      // Docker's archiver writes one for any non-directory with more than one link
      // (pkg/archive addTarFile), so it may be a symlink, fifo or device as well as a file.
      // UnpackLayer, which did not unpack .wh..wh.plnk, copies the file kept aside instead.
      const parts = pathParts(entry.linkname);
      let target: Node | undefined = tree;
      if (aufsLinks && isAufsLinkPath(entry.linkname, parts)) {
        target = aufsLinks.get(parts.at(-1) ?? '');
      } else {
        for (const part of parts) {
          target = target?.kind === 'dir' ? target.children.get(part) : undefined;
        }
      }
      if (target === undefined || target.kind === 'dir') {
        throw new VouchError(
          'BAD_DATA',
          `layer ${layer + 1}: ${shown(entry.name)} is a hard link to ${shown(entry.linkname)}, which is missing or a directory`,
        );
      }
      return { ...target, layer };
    }
    default:
      return { kind: entry.type, layer };
  }
}

/** The directory at `parts`, made (replacing what is not a directory) where missing. */
function directory(tree: DirNode, parts: readonly string[], layer: number): DirNode {
  let dir = tree;
  for (const part of parts) {
    let child = dir.children.get(part);
    if (child?.kind !== 'dir') {
      child = newDir(layer);
      dir.children.set(part, child);
    }
    dir = child;
  }
  return dir;
}

/** An opaque directory: what lower layers put in it goes (UnpackLayer keeps this layer's). */
function clearLower(dir: DirNode, layer: number): void {
  for (const [name, child] of dir.children) {
    if (child.layer !== layer) dir.children.delete(name);
    else if (child.kind === 'dir') clearLower(child, layer);
  }
}

/** A tar path's components: `./a//b/` → [a, b]; `..` would leave the layer. */
function pathParts(name: string): string[] {
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) {
    throw new VouchError('BAD_DATA', `a layer entry ${shown(name)} leaves the layer`);
  }
  return parts;
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

async function matches(diskPath: Buffer, dirent: Dirent<Buffer>, expected: Node): Promise<boolean> {
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
function listRemoved(node: Node, path: string, removed: string[]): void {
  removed.push(path);
  if (node.kind !== 'dir') return;
  for (const [name, child] of node.children) listRemoved(child, `${path}/${name}`, removed);
}

/**
 * A path (byte string) as shown: absolute in the image, UTF-8 decoded, a byte that is not
 * UTF-8 kept as itself (core/surrogate-escape.ts; text output shows it as `\xNN`).
 */
function shown(path: string): string {
  return `/${decodeSurrogateEscape(Buffer.from(path, 'latin1'))}`;
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

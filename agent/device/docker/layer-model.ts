import { VouchError } from '../../core/errors';
import { decodeSurrogateEscape } from '../../core/surrogate-escape';
import type { LayerEntry } from './tarsplit';

/**
 * What a layer's directory in Docker's storage should hold, from the layer's file list
 * (tarsplit.ts): its entries applied to an in-memory tree, no I/O. tree.ts compares the
 * tree with the directory on disk.
 *
 * How a layer lands on disk follows moby's unpackers: vfs applies layers with UnpackLayer
 * (pkg/archive/diff.go, through the naive diff driver), overlay2 with Unpack and the
 * overlay whiteout converter (pkg/archive/archive.go, archive_linux.go) when its diff is
 * native. With naive diff overlay2 unpacks onto the mounted layers instead, which is not
 * modelled.
 */

/** What a path should be; names are byte strings (tarsplit.ts). */
export type TreeNode =
  | DirNode
  | { readonly kind: 'file'; readonly size: number; readonly crc: Buffer | null; layer: number }
  | { readonly kind: 'symlink'; readonly target: string; layer: number }
  | { readonly kind: 'char' | 'block' | 'fifo' | 'whiteout'; layer: number };

export interface DirNode {
  readonly kind: 'dir';
  readonly children: Map<string, TreeNode>;
  /**
   * The layer whose entry unpacked it; null when made as a parent, by no entry. An opaque
   * directory keeps only what its own layer's entries unpacked (UnpackLayer's unpackedPaths).
   */
  layer: number | null;
}

/**
 * What a whiteout does: `delete` what it names (vfs: a layer's directory is the whole
 * filesystem) or `mark` it with a whiteout (overlay2 keeps a 0/0 character device).
 */
export type Whiteouts = 'delete' | 'mark';

/** OCI image spec, layer.md "Whiteouts": `.wh.<name>` deletes name, this clears a directory. */
const whiteoutPrefix = '.wh.';
const opaqueMarker = '.wh..wh..opq';
/** moby pkg/archive/whiteouts.go: AUFS metadata (WhiteoutMetaPrefix) and its hard link dir. */
const aufsMetaPrefix = '.wh..wh.';
const aufsLinkDir = '.wh..wh.plnk';

export function newDir(layer: number | null): DirNode {
  return { kind: 'dir', children: new Map(), layer };
}

/**
 * Unpacks layer `layer`'s entries onto `tree` as Docker does (pkg/archive UnpackLayer and
 * Unpack): a path replaces what was there, a directory keeps its contents, parent
 * directories are made as needed, whiteouts do what `whiteouts` says.
 */
export function applyLayer(
  tree: DirNode,
  entries: readonly LayerEntry[],
  layer: number,
  whiteouts: Whiteouts,
): void {
  /**
   * vfs: UnpackLayer's AUFS hard link sources, by base name (aufsHardlinks); overlay2's
   * Unpack keeps none.
   */
  const aufsLinks = whiteouts === 'delete' ? new Map<string, TreeNode>() : undefined;
  for (const entry of entries) {
    const parts = pathParts(entry.name);
    const name = parts.at(-1);
    if (name === undefined) continue; // the root directory
    // UnpackLayer makes the parent of every entry (a directory's too: path.Clean drops its
    // trailing slash), then skips AUFS metadata at the root (path.Clean(name) starts with
    // .wh..wh.), all but the root's opaque marker. Unpack, overlay2's, has no such skip:
    // there `.wh..wh.plnk` is a whiteout like any other.
    const parent = directory(tree, parts.slice(0, -1));
    if (aufsLinks && isAufsMetadata(entry.name, parts)) {
      if (entry.type === 'file' && isAufsLinkPath(entry.name, parts)) {
        aufsLinks.set(name, nodeOf(tree, entry, layer, aufsLinks));
      }
      continue;
    }
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

/**
 * A path (byte string) as shown: absolute in the image, UTF-8 decoded, a byte that is not
 * UTF-8 kept as itself (core/surrogate-escape.ts; text output shows it as `\xNN`).
 */
export function shown(path: string): string {
  return `/${decodeSurrogateEscape(Buffer.from(path, 'latin1'))}`;
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
  aufsLinks: ReadonlyMap<string, TreeNode> | undefined,
): TreeNode {
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
      let target: TreeNode | undefined = tree;
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
function directory(tree: DirNode, parts: readonly string[]): DirNode {
  let dir = tree;
  for (const part of parts) {
    let child = dir.children.get(part);
    if (child?.kind !== 'dir') {
      child = newDir(null);
      dir.children.set(part, child);
    }
    dir = child;
  }
  return dir;
}

/**
 * An opaque directory: what lower layers put in it goes, and so does a directory made as a
 * parent (UnpackLayer keeps what this layer's entries unpacked).
 */
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

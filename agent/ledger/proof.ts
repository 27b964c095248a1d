import { VouchError } from '../core/errors';
import { checkIndex, consistencyProof, inclusionProof, treeRoot } from '../core/merkle';
import { readCheckpoint, readConfig } from './logdir';
import { publishedReader } from './published';

/** A proof against the tree of `size` leaves with root `root`, from the published tiles. */
export interface LogProof {
  readonly size: number;
  readonly root: Uint8Array;
  /** RFC 9162 §2.1.3.1 inclusion path, or §2.1.4.1 consistency path, leaf side first. */
  readonly proof: readonly Uint8Array[];
}

async function published(dir: string, size: number | undefined) {
  const config = await readConfig(dir);
  const { checkpoint } = await readCheckpoint(dir, config);
  const treeSize = size ?? checkpoint.size;
  checkIndex(treeSize, 'tree size');
  const reader = publishedReader(dir, checkpoint.size, treeSize);
  const root = await treeRoot(treeSize, reader);
  if (treeSize === checkpoint.size && Buffer.compare(root, checkpoint.root) !== 0) {
    throw new VouchError('LOG_INVALID', 'the published tiles do not match the checkpoint');
  }
  return { size: treeSize, root, reader };
}

/** An inclusion proof for entry `index` in the published tree of `size` (default: the latest). */
export async function proveInclusion(dir: string, index: number, size?: number): Promise<LogProof> {
  const tree = await published(dir, size);
  if (index >= tree.size) {
    throw new VouchError('BAD_DATA', `entry ${index} is not in the tree of size ${tree.size}`);
  }
  return {
    size: tree.size,
    root: tree.root,
    proof: await inclusionProof(index, tree.size, tree.reader),
  };
}

/** A consistency proof from the tree of size `old` to the published tree of `size`. */
export async function proveConsistency(dir: string, old: number, size?: number): Promise<LogProof> {
  const tree = await published(dir, size);
  return {
    size: tree.size,
    root: tree.root,
    proof: await consistencyProof(old, tree.size, tree.reader),
  };
}

import { createHash } from 'node:crypto';
import { type ErrorCode, VouchError } from './errors';

/**
 * RFC 6962 Merkle tree hashing and RFC 9162 §2.1.3–2.1.4 inclusion and consistency
 * proofs. Tree sizes and indexes are checked safe integers (trees up to 2^53 − 1 leaves),
 * and halving is `Math.floor(x / 2)`, never `>>`, which would wrap at 2^31.
 */

export const hashSize = 32;

/** RFC 6962 §2.1: MTH({d(0)}) = SHA-256(0x00 ‖ d(0)). */
export function hashLeaf(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(leafPrefix).update(data).digest());
}

/** RFC 6962 §2.1: SHA-256(0x01 ‖ MTH(left) ‖ MTH(right)). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHash('sha256').update(nodePrefix).update(left).update(right).digest(),
  );
}

/** RFC 6962 §2.1: the hash of an empty tree is SHA-256 of the empty string. */
export const emptyRoot: Uint8Array = new Uint8Array(createHash('sha256').digest());

/** RFC 6962 §2.1: a leaf's hash input starts with 0x00 (hashLeaf, or a leaf hashed in pieces). */
export const leafPrefix = new Uint8Array([0x00]);
const nodePrefix = new Uint8Array([0x01]);

/** A complete subtree: MTH(D[index·2^level : (index+1)·2^level]). Level 0 is a leaf. */
export interface NodeId {
  readonly level: number;
  readonly index: number;
}

/**
 * The nodes whose hashes make up a proof. Each proof element is one complete subtree, or
 * — for the incomplete subtree MTH(D[k:n]) on the right border — several adjacent
 * complete subtrees, largest first, hashed together right to left.
 */
export type ProofPlan = readonly (readonly NodeId[])[];

/** Fetches the hashes of complete subtrees, in order, e.g. from tiles (c2sp.org/tlog-tiles). */
export type HashReader = (ids: readonly NodeId[]) => Promise<readonly Uint8Array[]>;

/** A tree size or leaf index: a non-negative safe integer, else a VouchError with `code`. */
export function checkIndex(value: number, what: string, code: ErrorCode = 'BAD_DATA'): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new VouchError(code, `${what} must be an integer from 0 to 2^53-1, got ${value}`);
  }
  return value;
}

/** Hashes one proof element: adjacent complete subtrees folded right to left. */
function fold(hashes: readonly Uint8Array[]): Uint8Array {
  let result = hashes.at(-1);
  if (result === undefined) throw new VouchError('INTERNAL', 'empty proof element');
  for (let i = hashes.length - 2; i >= 0; i--)
    result = hashChildren(hashes[i] as Uint8Array, result);
  return result;
}

/** The largest power of two strictly below n (n ≥ 2): RFC 9162 §2.1.1's k. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * D[start:end] as complete subtrees, largest first: for a range on the right border of an
 * RFC 9162 tree these are exactly the subtrees MTH(D[start:end]) is built from.
 */
export function rangeNodes(start: number, end: number): NodeId[] {
  const nodes: NodeId[] = [];
  let at = start;
  while (at < end) {
    let width = 1;
    let level = 0;
    while (at % (width * 2) === 0 && at + width * 2 <= end) {
      width *= 2;
      level++;
    }
    nodes.push({ level, index: at / width });
    at += width;
  }
  return nodes;
}

/** RFC 9162 §2.1.3.1: PATH(m, D[n]), leaf to root. */
export function inclusionProofPlan(index: number, size: number): ProofPlan {
  checkIndex(index, 'leaf index');
  checkIndex(size, 'tree size');
  if (index >= size) {
    throw new VouchError('BAD_DATA', `leaf index ${index} is not in a tree of size ${size}`);
  }
  const plan: NodeId[][] = [];
  const path = (lo: number, hi: number): void => {
    if (hi - lo === 1) return;
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      path(lo, lo + k);
      plan.push(rangeNodes(lo + k, hi));
    } else {
      path(lo + k, hi);
      plan.push(rangeNodes(lo, lo + k));
    }
  };
  path(0, size);
  return plan;
}

/** RFC 9162 §2.1.4.1: PROOF(m, D[n]) = SUBPROOF(m, D[n], true), for 0 < m ≤ n. */
export function consistencyProofPlan(size1: number, size2: number): ProofPlan {
  checkIndex(size1, 'old tree size');
  checkIndex(size2, 'tree size');
  if (size1 === 0 || size1 > size2) {
    throw new VouchError(
      'BAD_DATA',
      `no consistency proof from size ${size1} to size ${size2}: need 0 < old size ≤ size`,
    );
  }
  const plan: NodeId[][] = [];
  const subproof = (lo: number, hi: number, whole: boolean): void => {
    if (size1 === hi) {
      if (!whole) plan.push(rangeNodes(lo, hi));
      return;
    }
    const k = splitPoint(hi - lo);
    if (size1 <= lo + k) {
      subproof(lo, lo + k, whole);
      plan.push(rangeNodes(lo + k, hi));
    } else {
      subproof(lo + k, hi, false);
      plan.push(rangeNodes(lo, lo + k));
    }
  };
  subproof(0, size2, true);
  return plan;
}

/** Fetches a plan's hashes (each node once, in one batch) and folds them into a proof. */
export async function resolvePlan(plan: ProofPlan, read: HashReader): Promise<Uint8Array[]> {
  const keys = new Map<string, NodeId>();
  for (const element of plan) for (const id of element) keys.set(`${id.level}/${id.index}`, id);
  const ids = [...keys.values()];
  const hashes = await read(ids);
  if (hashes.length !== ids.length) {
    throw new VouchError('INTERNAL', `hash reader returned ${hashes.length} of ${ids.length}`);
  }
  const byKey = new Map(ids.map((id, i) => [`${id.level}/${id.index}`, hashes[i] as Uint8Array]));
  return plan.map((element) =>
    fold(element.map((id) => byKey.get(`${id.level}/${id.index}`) as Uint8Array)),
  );
}

export function inclusionProof(index: number, size: number, read: HashReader) {
  return resolvePlan(inclusionProofPlan(index, size), read);
}

export function consistencyProof(size1: number, size2: number, read: HashReader) {
  return resolvePlan(consistencyProofPlan(size1, size2), read);
}

/** MTH(D[0:size]) from the complete subtrees on the right edge. */
export async function treeRoot(size: number, read: HashReader): Promise<Uint8Array> {
  checkIndex(size, 'tree size');
  if (size === 0) return emptyRoot;
  const [root] = await resolvePlan([rangeNodes(0, size)], read);
  return root as Uint8Array;
}

function checkHash(hash: Uint8Array, what: string): void {
  if (hash.length !== hashSize) {
    throw new VouchError('PROOF_INVALID', `${what} is ${hash.length} bytes, not ${hashSize}`);
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

const isOdd = (n: number): boolean => n % 2 === 1;
const half = (n: number): number => Math.floor(n / 2);

/**
 * RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or PROOF_INVALID when the proof
 * cannot be a proof for this index and size.
 */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
): Uint8Array {
  checkIndex(index, 'leaf index', 'PROOF_INVALID');
  checkIndex(size, 'tree size', 'PROOF_INVALID');
  // Step 1.
  if (index >= size) {
    throw new VouchError('PROOF_INVALID', `leaf index ${index} is not in a tree of size ${size}`);
  }
  checkHash(leafHash, 'leaf hash');
  // Steps 2–3.
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  // Step 4.
  for (const p of proof) {
    checkHash(p, 'proof hash');
    if (sn === 0) throw new VouchError('PROOF_INVALID', 'inclusion proof is too long');
    if (isOdd(fn) || fn === sn) {
      r = hashChildren(p, r);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // Step 5.
  if (sn !== 0) throw new VouchError('PROOF_INVALID', 'inclusion proof is too short');
  return r;
}

/** RFC 9162 §2.1.3.2: throws PROOF_INVALID unless the proof shows the leaf under the root. */
export function verifyInclusion(
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  if (!equalBytes(rootFromInclusionProof(index, size, leafHash, proof), root)) {
    throw new VouchError('PROOF_INVALID', 'inclusion proof does not lead to the root');
  }
}

/**
 * RFC 9162 §2.1.4.2: throws PROOF_INVALID unless the tree of size2 with root2 extends the tree
 * of size1 with root1. A proof from the empty tree proves nothing and is refused; equal
 * sizes need equal roots and an empty proof.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): void {
  checkIndex(size1, 'old tree size', 'PROOF_INVALID');
  checkIndex(size2, 'tree size', 'PROOF_INVALID');
  if (size1 === 0) throw new VouchError('PROOF_INVALID', 'a consistency proof from size 0 is void');
  if (size1 > size2) {
    throw new VouchError('PROOF_INVALID', `old size ${size1} is larger than size ${size2}`);
  }
  if (size1 === size2) {
    if (proof.length > 0) throw new VouchError('PROOF_INVALID', 'equal sizes need an empty proof');
    if (!equalBytes(root1, root2))
      throw new VouchError('PROOF_INVALID', 'equal sizes, other roots');
    return;
  }
  // Step 1.
  if (proof.length === 0) throw new VouchError('PROOF_INVALID', 'consistency proof is empty');
  for (const p of proof) checkHash(p, 'proof hash');
  // Step 2: when size1 is a power of two, the old root itself is the first path element.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : proof;
  // Steps 3–4.
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // Step 5.
  let fr = path[0] as Uint8Array;
  let sr = fr;
  // Step 6.
  for (const c of path.slice(1)) {
    if (sn === 0) throw new VouchError('PROOF_INVALID', 'consistency proof is too long');
    if (isOdd(fn) || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // Step 7.
  if (sn !== 0) throw new VouchError('PROOF_INVALID', 'consistency proof is too short');
  if (!equalBytes(fr, root1))
    throw new VouchError('PROOF_INVALID', 'proof does not match old root');
  if (!equalBytes(sr, root2))
    throw new VouchError('PROOF_INVALID', 'proof does not match new root');
}

function isPowerOfTwo(n: number): boolean {
  let x = n;
  while (x > 1 && !isOdd(x)) x = half(x);
  return x === 1;
}

/**
 * The right edge of a tree: the roots of its complete subtrees, largest first
 * (github.com/transparency-dev/merkle, docs/compact_ranges.md). A client that holds a
 * verified compact range extends it with new leaves and checks the new root without
 * the old leaves.
 */
export class CompactRange {
  #size = 0;
  readonly #hashes: Uint8Array[] = [];

  /** A range for `size` leaves from its subtree roots, as returned by {@link hashes}. */
  static of(size: number, hashes: readonly Uint8Array[]): CompactRange {
    checkIndex(size, 'tree size');
    const expected = rangeNodes(0, size).length;
    if (hashes.length !== expected) {
      throw new VouchError(
        'BAD_DATA',
        `a compact range of size ${size} has ${expected} hashes, got ${hashes.length}`,
      );
    }
    for (const hash of hashes) {
      if (hash.length !== hashSize) throw new VouchError('BAD_DATA', 'compact range hash size');
    }
    const range = new CompactRange();
    range.#size = size;
    range.#hashes.push(...hashes.map((hash) => new Uint8Array(hash)));
    return range;
  }

  get size(): number {
    return this.#size;
  }

  get hashes(): readonly Uint8Array[] {
    return [...this.#hashes];
  }

  /** The nodes whose hashes make up the compact range of a tree of `size` leaves. */
  static nodes(size: number): NodeId[] {
    return rangeNodes(0, checkIndex(size, 'tree size'));
  }

  append(leafHash: Uint8Array): void {
    if (leafHash.length !== hashSize) throw new VouchError('BAD_DATA', 'leaf hash size');
    if (this.#size === Number.MAX_SAFE_INTEGER) throw new VouchError('BAD_DATA', 'tree is full');
    // Every trailing 1-bit of the old size is a complete subtree the new leaf completes.
    let hash = leafHash;
    let carry = this.#size;
    while (isOdd(carry)) {
      hash = hashChildren(this.#hashes.pop() as Uint8Array, hash);
      carry = half(carry);
    }
    this.#hashes.push(hash);
    this.#size++;
  }

  root(): Uint8Array {
    return this.#hashes.length === 0 ? emptyRoot : fold(this.#hashes);
  }
}

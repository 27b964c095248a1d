import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CompactRange,
  consistencyProof,
  consistencyProofPlan,
  emptyRoot,
  type HashReader,
  hashChildren,
  hashLeaf,
  inclusionProof,
  inclusionProofPlan,
  treeRoot,
  verifyConsistency,
  verifyInclusion,
} from '../../agent/core/merkle';
import { encodeTile, tileHashReader } from '../../agent/core/tiles';
import { failure } from '../helpers/errors';

const vectors = join(__dirname, '../vectors/rfc9162');

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
function b64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'));
}

function jsonFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.json'))
    .map((file) => join(dir, file))
    .sort();
}

/** The eight RFC 6962 reference leaves (transparency-dev/merkle testdata). */
const referenceLeaves = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map((text) => hashLeaf(Buffer.from(text, 'hex')));

/** An independent RFC 6962 §2.1 MTH over leaf hashes in memory, by the recursive definition. */
function mth(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return emptyRoot;
  if (leaves.length === 1) return leaves[0] as Uint8Array;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return hashChildren(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

/** A reader over leaves held in memory, for small trees. */
function memoryReader(leaves: readonly Uint8Array[]): HashReader {
  return async (ids) =>
    ids.map(({ level, index }) => mth(leaves.slice(index * 2 ** level, (index + 1) * 2 ** level)));
}

/**
 * A tree of up to millions of leaves that never exists in memory: leaf i is the 8-byte
 * big-endian i, and tiles are computed on request. Complete subtrees of height ≥ 8 are
 * remembered (a few thousand hashes for 10^6 leaves), the rest recomputed.
 */
const virtual = (() => {
  const memo = new Map<string, Uint8Array>();
  const leaf = (i: number): Uint8Array => {
    const data = Buffer.alloc(8);
    data.writeBigUInt64BE(BigInt(i));
    return hashLeaf(data);
  };
  const subtree = (level: number, index: number): Uint8Array => {
    if (level === 0) return leaf(index);
    const key = `${level}/${index}`;
    const known = memo.get(key);
    if (known) return known;
    const hash = hashChildren(subtree(level - 1, 2 * index), subtree(level - 1, 2 * index + 1));
    if (level >= 8) memo.set(key, hash);
    return hash;
  };
  /** RFC 6962 §2.1 MTH(D[lo:hi]), recursively, splitting at the largest power of two. */
  const root = (lo: number, hi: number): Uint8Array => {
    const n = hi - lo;
    if (n === 0) return emptyRoot;
    let k = 1;
    while (k * 2 <= n) k *= 2;
    if (k === n && lo % n === 0) return subtree(Math.log2(n), lo / n);
    k = 1;
    while (k * 2 < n) k *= 2;
    return hashChildren(root(lo, lo + k), root(lo + k, hi));
  };
  const reader = (size: number): HashReader =>
    tileHashReader(size, async ({ level, index, width }) => {
      const hashes: Uint8Array[] = [];
      for (let i = 0; i < width; i++) hashes.push(subtree(8 * level, index * 256 + i));
      return encodeTile(hashes);
    });
  return { leaf, root: (size: number) => root(0, size), reader };
})();

describe('RFC 6962 hashing', () => {
  it('gives the reference root of the eight RFC 6962 leaves', () => {
    expect(hex(mth(referenceLeaves))).toBe(
      '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
    );
    const range = new CompactRange();
    for (const leaf of referenceLeaves) range.append(leaf);
    expect(hex(range.root())).toBe(
      '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
    );
  });

  it('hashes the empty tree to SHA-256 of nothing', async () => {
    expect(hex(emptyRoot)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(await treeRoot(0, memoryReader([]))).toEqual(emptyRoot);
    expect(new CompactRange().root()).toEqual(emptyRoot);
  });
});

describe('RFC 9162 vectors (transparency-dev/merkle testdata)', () => {
  const inclusion = jsonFiles(join(vectors, 'inclusion'));
  const consistency = jsonFiles(join(vectors, 'consistency'));

  it('has every case', () => {
    expect(inclusion.length + consistency.length).toBe(196);
  });

  it.each(inclusion.map((file) => [relative(vectors, file), file]))('%s', (_name, file) => {
    const v = JSON.parse(readFileSync(file, 'utf8'));
    const check = () =>
      verifyInclusion(
        v.leafIdx,
        v.treeSize,
        b64(v.leafHash),
        (v.proof ?? []).map(b64),
        b64(v.root),
      );
    if (v.wantErr) expect(failure(check).code).toBe('PROOF_INVALID');
    else check();
  });

  it.each(consistency.map((file) => [relative(vectors, file), file]))('%s', (_name, file) => {
    const v = JSON.parse(readFileSync(file, 'utf8'));
    const check = () =>
      verifyConsistency(v.size1, v.size2, b64(v.root1), b64(v.root2), (v.proof ?? []).map(b64));
    if (v.wantErr) expect(failure(check).code).toBe('PROOF_INVALID');
    else check();
  });

  it('generates exactly the happy-path proofs of the vectors', async () => {
    const reader = memoryReader(referenceLeaves);
    for (const file of [...inclusion, ...consistency].filter((f) =>
      f.endsWith('happy-path.json'),
    )) {
      const v = JSON.parse(readFileSync(file, 'utf8'));
      const proof =
        'leafIdx' in v
          ? await inclusionProof(v.leafIdx, v.treeSize, memoryReader(referenceLeaves))
          : await consistencyProof(v.size1, v.size2, reader);
      expect(
        proof.map((p) => Buffer.from(p).toString('base64')),
        file,
      ).toEqual(v.proof ?? []);
    }
  });
});

describe('proof plans', () => {
  it('refuse what has no proof', () => {
    expect(failure(() => inclusionProofPlan(3, 3)).code).toBe('BAD_DATA');
    expect(failure(() => inclusionProofPlan(-1, 3)).code).toBe('BAD_DATA');
    expect(failure(() => inclusionProofPlan(0, 2 ** 53)).code).toBe('BAD_DATA');
    expect(failure(() => consistencyProofPlan(0, 3)).code).toBe('BAD_DATA');
    expect(failure(() => consistencyProofPlan(4, 3)).code).toBe('BAD_DATA');
    expect(consistencyProofPlan(3, 3)).toEqual([]);
  });

  it('stay logarithmic for trees beyond 2^32 leaves, where 32-bit shifts would wrap', () => {
    const size = 2 ** 52 + 12345;
    const plan = inclusionProofPlan(2 ** 40 + 7, size);
    expect(plan.length).toBe(53);
    expect(plan[0]).toEqual([{ level: 0, index: 2 ** 40 + 6 }]);
    // The last element is the right border D[2^52 : size] as its complete subtrees.
    const border = plan.at(-1) ?? [];
    expect(border.map((node) => node.level)).toEqual([13, 12, 5, 4, 3, 0]);
    let at = 2 ** 52;
    for (const node of border) {
      expect(node.index * 2 ** node.level).toBe(at);
      at += 2 ** node.level;
    }
    expect(at).toBe(size);
    expect(consistencyProofPlan(2 ** 33 + 1, size).length).toBeGreaterThan(20);
  });
});

describe('proofs from tiles (property)', () => {
  const size = fc.integer({ min: 1, max: 1_000_000 });

  it('every inclusion proof verifies and every mutation of it fails', async () => {
    await fc.assert(
      fc.asyncProperty(
        size.chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }))),
        fc.nat(),
        async ([n, index], seed) => {
          const reader = virtual.reader(n);
          const root = virtual.root(n);
          expect(await treeRoot(n, reader)).toEqual(root);
          const proof = await inclusionProof(index, n, reader);
          const leaf = virtual.leaf(index);
          verifyInclusion(index, n, leaf, proof, root);
          for (const mutated of mutations(proof, seed)) {
            expect(failure(() => verifyInclusion(index, n, leaf, mutated, root)).code).toBe(
              'PROOF_INVALID',
            );
          }
          if (n > 1) {
            const other = (index + 1 + (seed % (n - 1))) % n;
            expect(failure(() => verifyInclusion(other, n, leaf, proof, root)).code).toBe(
              'PROOF_INVALID',
            );
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('every consistency proof verifies and every mutation of it fails', async () => {
    await fc.assert(
      fc.asyncProperty(
        size.chain((n) => fc.tuple(fc.integer({ min: 1, max: n }), fc.constant(n))),
        fc.nat(),
        async ([m, n], seed) => {
          const proof = await consistencyProof(m, n, virtual.reader(n));
          const [root1, root2] = [virtual.root(m), virtual.root(n)];
          verifyConsistency(m, n, root1, root2, proof);
          for (const mutated of mutations(proof, seed)) {
            expect(failure(() => verifyConsistency(m, n, root1, root2, mutated)).code).toBe(
              'PROOF_INVALID',
            );
          }
          if (m < n) {
            expect(failure(() => verifyConsistency(m, n, root2, root1, proof)).code).toBe(
              'PROOF_INVALID',
            );
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a compact range extended with new leaves gives the root of a full recomputation', async () => {
    await fc.assert(
      fc.asyncProperty(size, fc.integer({ min: 0, max: 600 }), async (m, extra) => {
        const hashes = await virtual.reader(m)(CompactRange.nodes(m));
        const range = CompactRange.of(m, hashes);
        expect(range.root()).toEqual(virtual.root(m));
        for (let i = m; i < m + extra; i++) range.append(virtual.leaf(i));
        expect(range.size).toBe(m + extra);
        expect(range.root()).toEqual(virtual.root(m + extra));
      }),
      { numRuns: 60 },
    );
  });

  it('a compact range grown leaf by leaf from empty matches the recursive definition', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 8 }), { maxLength: 300 }), (data) => {
        const leaves = data.map(hashLeaf);
        const range = new CompactRange();
        for (const leaf of leaves) range.append(leaf);
        expect(range.root()).toEqual(mth(leaves));
        expect(CompactRange.of(range.size, range.hashes).root()).toEqual(mth(leaves));
      }),
    );
  });

  it('refuses a compact range with the wrong number of hashes', () => {
    expect(failure(() => CompactRange.of(3, [emptyRoot])).code).toBe('BAD_DATA');
    expect(failure(() => CompactRange.of(1, [new Uint8Array(31)])).code).toBe('BAD_DATA');
  });
});

/** Every single-element damage to a proof: a flipped bit, a dropped, added or doubled element. */
function mutations(proof: readonly Uint8Array[], seed: number): Uint8Array[][] {
  const out: Uint8Array[][] = [
    [...proof, new Uint8Array(32)],
    [new Uint8Array(32), ...proof],
  ];
  if (proof.length > 0) {
    const at = seed % proof.length;
    const flipped = new Uint8Array(proof[at] as Uint8Array);
    flipped[seed % 32] = (flipped[seed % 32] as number) ^ (1 << (seed % 8));
    out.push(proof.map((p, i) => (i === at ? flipped : p)));
    out.push(proof.filter((_, i) => i !== at));
    out.push([...proof.slice(0, at + 1), ...proof.slice(at)]);
  }
  return out;
}

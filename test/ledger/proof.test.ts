import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { VouchError } from '../../agent/core/errors';
import {
  CompactRange,
  hashLeaf,
  verifyConsistency,
  verifyInclusion,
} from '../../agent/core/merkle';
import {
  appendEntries,
  proveConsistency,
  proveInclusion,
  publicDir,
  publishLog,
} from '../../agent/ledger';
import { entries, tempLog } from '../helpers/log';

async function rejection(promise: Promise<unknown>): Promise<VouchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VouchError);
  return error as VouchError;
}

const leaves = entries(0, 70_000).map(hashLeaf);
function rootOf(size: number): Uint8Array {
  const range = new CompactRange();
  for (const leaf of leaves.slice(0, size)) range.append(leaf);
  return range.root();
}

describe('proofs from the published tiles', () => {
  let dir: string;
  beforeAll(async () => {
    const log = await tempLog();
    dir = log.dir;
    // Published at 300 and at 70,000: tree sizes in between have no tiles of their own.
    await appendEntries(dir, entries(0, 300));
    await publishLog(dir, log.key);
    await appendEntries(dir, entries(300, 70_000));
    await publishLog(dir, log.key);
  });

  it.each([
    [0, undefined],
    [69_999, undefined],
    [12_345, undefined],
    [299, 300],
    [150, 200],
    [65_535, 65_537],
    [0, 1],
  ])('proves entry %d in the tree of size %s', async (index, size) => {
    const proof = await proveInclusion(dir, index, size);
    expect(proof.size).toBe(size ?? 70_000);
    expect(Buffer.from(proof.root)).toEqual(Buffer.from(rootOf(proof.size)));
    verifyInclusion(index, proof.size, leaves[index] as Uint8Array, proof.proof, proof.root);
  });

  it.each([
    [1, undefined],
    [300, undefined],
    [299, 301],
    [65_536, 69_999],
    [7, 7],
    [70_000, undefined],
  ])('proves the tree of size %d consistent with size %s', async (old, size) => {
    const proof = await proveConsistency(dir, old, size);
    expect(Buffer.from(proof.root)).toEqual(Buffer.from(rootOf(proof.size)));
    verifyConsistency(old, proof.size, rootOf(old), proof.root, proof.proof);
  });

  it('refuses what the published log cannot prove', async () => {
    expect((await rejection(proveInclusion(dir, 70_000))).code).toBe('BAD_DATA');
    expect((await rejection(proveInclusion(dir, 5, 70_001))).code).toBe('BAD_DATA');
    expect((await rejection(proveInclusion(dir, 5, 2 ** 53))).code).toBe('BAD_DATA');
    expect((await rejection(proveConsistency(dir, 0))).code).toBe('BAD_DATA');
    expect((await rejection(proveConsistency(dir, 9, 8))).code).toBe('BAD_DATA');
  });

  it('detects tiles that do not match the checkpoint', async () => {
    const log = await tempLog();
    await appendEntries(log.dir, entries(0, 5));
    await publishLog(log.dir, log.key);
    await writeFile(join(publicDir(log.dir), 'tile/0/000.p/5'), Buffer.alloc(32 * 5));
    expect((await rejection(proveInclusion(log.dir, 1))).code).toBe('LOG_INVALID');
    await writeFile(join(publicDir(log.dir), 'tile/0/000.p/5'), Buffer.alloc(32 * 5 + 1));
    expect((await rejection(proveInclusion(log.dir, 1))).code).toBe('TILE_INVALID');
  });
});

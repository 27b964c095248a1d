import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { logCosigner, verifyCosignatures } from '../../agent/core/cosignature';
import { VouchError } from '../../agent/core/errors';
import { generateKey, type PublicKey, parseVerifierString } from '../../agent/core/keys';
import { CompactRange, hashLeaf } from '../../agent/core/merkle';
import { parseNote } from '../../agent/core/note';
import {
  appendEntries,
  cosignLog,
  publicDir,
  publishLog,
  readCheckpoint,
  readConfig,
  readState,
} from '../../agent/ledger';
import { entries, tempLog, verifyPublished } from '../helpers/log';

async function rejection(promise: Promise<unknown>): Promise<VouchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VouchError);
  return error as VouchError;
}

/** Every file under public/ with a digest of its content. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const root = publicDir(dir);
  const files = await readdir(root, { recursive: true, withFileTypes: true });
  const result = new Map<string, string>();
  for (const file of files.filter((f) => f.isFile())) {
    const path = join(file.parentPath, file.name);
    const digest = createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
    result.set(path.slice(root.length + 1), digest);
  }
  return result;
}

function changed(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after]
    .filter(([path, digest]) => before.get(path) !== digest)
    .map(([p]) => p)
    .sort();
}

/** The published checkpoint's verified cosignature times: the log's own and a witness's. */
async function signedTimes(dir: string, witness?: PublicKey) {
  const config = await readConfig(dir);
  const { note } = await readCheckpoint(dir, config);
  const [own] = verifyCosignatures(note, [logCosigner(config.key)], 1);
  const [witnessed] = witness ? verifyCosignatures(note, [witness], 1) : [];
  return { log: own?.timestamp, ...(witnessed ? { witness: witnessed.timestamp } : {}) };
}

function rootOf(from: number, to: number): Uint8Array {
  const range = new CompactRange();
  for (const entry of entries(from, to)) range.append(hashLeaf(entry));
  return range.root();
}

describe('publishLog', () => {
  it('publishes 70,000 entries as the tlog-tiles layout the specification describes', async () => {
    const { dir, key } = await tempLog();
    await appendEntries(dir, entries(0, 70_000));
    const result = await publishLog(dir, key);
    expect(result).toMatchObject({ previousSize: 0, size: 70_000, tiles: 277, bundles: 274 });
    expect(Buffer.from(result.root)).toEqual(Buffer.from(rootOf(0, 70_000)));

    const files = [...(await snapshot(dir)).keys()];
    const full0 = files.filter((f) => /^tile\/0\/(x\d{3}\/)*\d{3}$/.test(f));
    expect(full0).toHaveLength(273);
    expect(files.filter((f) => /^tile\/entries\/(x\d{3}\/)*\d{3}$/.test(f))).toHaveLength(273);
    expect(files.filter((f) => f.includes('.p/')).sort()).toEqual([
      'tile/0/273.p/112',
      'tile/1/001.p/17',
      'tile/2/000.p/1',
      'tile/entries/273.p/112',
    ]);
    expect(files).toContain('tile/1/000');
    expect((await verifyPublished(dir)).size).toBe(70_000);
  });

  it('rewrites only the tiles that change when k entries are appended', async () => {
    const { dir, key } = await tempLog();
    await appendEntries(dir, entries(0, 70_000));
    await publishLog(dir, key);

    let before = await snapshot(dir);
    await appendEntries(dir, entries(70_000, 70_001));
    expect((await publishLog(dir, key)).tiles).toBe(1);
    let after = await snapshot(dir);
    expect(changed(before, after)).toEqual([
      'checkpoint',
      'tile/0/273.p/113',
      'tile/entries/273.p/113',
    ]);
    // The partial tiles of the earlier checkpoint stay: a reader may still be on it.
    expect(after.get('tile/0/273.p/112')).toBe(before.get('tile/0/273.p/112'));

    before = after;
    await appendEntries(dir, entries(70_001, 70_144));
    await publishLog(dir, key);
    after = await snapshot(dir);
    expect(changed(before, after)).toEqual([
      'checkpoint',
      'tile/0/273',
      'tile/1/001.p/18',
      'tile/entries/273',
    ]);
    expect((await verifyPublished(dir)).size).toBe(70_144);
  });

  it('grows by any steps to the same tree as one publish (consistency checked each time)', async () => {
    const { dir, key } = await tempLog();
    const steps = [1, 255, 256, 257, 511, 512, 65_535, 65_536, 65_537, 66_000];
    let size = 0;
    for (const next of steps) {
      await appendEntries(dir, entries(size, next));
      const result = await publishLog(dir, key);
      expect(result.previousSize).toBe(size);
      expect(Buffer.from(result.root)).toEqual(Buffer.from(rootOf(0, next)));
      await verifyPublished(dir);
      size = next;
    }
  });

  it('timestamps every checkpoint it writes with the log key, from the empty one on', async () => {
    const { dir, key } = await tempLog(new Date('2026-01-01T00:00:00Z'));
    expect(await signedTimes(dir)).toEqual({ log: Date.parse('2026-01-01T00:00:00Z') / 1000 });
    await appendEntries(dir, entries(0, 3));
    const result = await publishLog(dir, key, new Date('2026-01-02T00:00:00.900Z'));
    expect(result.timestamp).toBe(Date.parse('2026-01-02T00:00:00Z') / 1000);
    expect(await signedTimes(dir)).toEqual({ log: result.timestamp });
  });

  it('signs the same checkpoint at a new time when nothing is new, keeping the witnesses', async () => {
    const { dir, key } = await tempLog(new Date('2026-01-01T00:00:00Z'));
    await appendEntries(dir, entries(0, 3));
    const first = await publishLog(dir, key, new Date('2026-01-02T00:00:00Z'));
    const witness = await cosignLog(dir, generateKey().key, 'w', new Date('2026-01-03T00:00:00Z'));
    const tiles = await snapshot(dir);

    const again = await publishLog(dir, key, new Date('2026-01-09T00:00:00Z'));
    expect(again).toMatchObject({ previousSize: 3, size: 3, tiles: 0, bundles: 0 });
    expect(Buffer.from(again.root)).toEqual(Buffer.from(first.root));
    expect(changed(tiles, await snapshot(dir))).toEqual(['checkpoint']);
    const before = parseNote(first.checkpoint);
    const after = parseNote(again.checkpoint);
    expect(after.text).toBe(before.text);
    expect(after.signatures[0]).toEqual(before.signatures[0]);
    expect(await signedTimes(dir, parseVerifierString(witness.verifier))).toEqual({
      log: Date.parse('2026-01-09T00:00:00Z') / 1000,
      witness: Date.parse('2026-01-03T00:00:00Z') / 1000,
    });
  });

  it('never signs a time before the last one, whatever its clock says', async () => {
    const { dir, key } = await tempLog(new Date('2026-01-05T00:00:00Z'));
    await appendEntries(dir, entries(0, 3));
    const result = await publishLog(dir, key, new Date('2026-01-01T00:00:00Z'));
    expect(result.timestamp).toBe(Date.parse('2026-01-05T00:00:00Z') / 1000);
    expect(await signedTimes(dir)).toEqual({ log: result.timestamp });
  });

  it('refuses another key than the log key', async () => {
    const { dir } = await tempLog();
    expect((await rejection(publishLog(dir, generateKey().key))).code).toBe('BAD_KEY');
  });

  it.each([
    ['a malformed checkpoint', 'garbage\n', 'NOTE_INVALID'],
    ['a checkpoint with a bad signature', null, 'NOTE_UNVERIFIED'],
    ['a checkpoint that is not UTF-8', Buffer.from([0xc3, 0x28, 0x0a, 0x0a]), 'NOTE_INVALID'],
  ])('refuses to publish over %s, writing nothing', async (_what, content, code) => {
    const { dir, key } = await tempLog();
    await appendEntries(dir, entries(0, 10));
    const path = join(publicDir(dir), 'checkpoint');
    const original = await readFile(path, 'utf8');
    const bad =
      content ??
      original.replace(/ (\S{10})/, (_m, sig: string) => ` ${sig.split('').reverse().join('')}`);
    await writeFile(path, bad);
    const before = await snapshot(dir);
    expect((await rejection(publishLog(dir, key))).code).toBe(code);
    expect(await snapshot(dir)).toEqual(before);
    expect(await readState(dir)).toBe(10);
  });

  it('refuses to sign a tree inconsistent with its last checkpoint', async () => {
    const { dir, key } = await tempLog();
    await appendEntries(dir, entries(0, 300));
    await publishLog(dir, key);
    // Entries 256…299 are hashed again for the next partial tile: alter one of them.
    const staged = join(dir, 'entries', '1');
    const bytes = await readFile(staged);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 1, bytes.length - 1);
    await writeFile(staged, bytes);
    await appendEntries(dir, entries(300, 301));
    expect((await rejection(publishLog(dir, key))).code).toBe('PROOF_INVALID');
  });

  it('reports a missing or truncated tile of the published tree', async () => {
    const { dir, key } = await tempLog();
    await appendEntries(dir, entries(0, 300));
    await publishLog(dir, key);
    await appendEntries(dir, entries(300, 600));
    // Growing to 600 extends the level-1 tile of size 300, read back from its file.
    await writeFile(join(publicDir(dir), 'tile/1/000.p/1'), Buffer.alloc(31));
    expect((await rejection(publishLog(dir, key))).code).toBe('TILE_INVALID');
    await rm(join(publicDir(dir), 'tile/1/000.p/1'));
    expect((await rejection(publishLog(dir, key))).code).toBe('LOG_INVALID');
  });
});

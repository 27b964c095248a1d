import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../agent/core/checkpoint';
import { logCosigner, verifyCosignatures } from '../../agent/core/cosignature';
import { VouchError } from '../../agent/core/errors';
import { generateKey, parseVerifierString } from '../../agent/core/keys';
import { appendEntries, cosignLog, publicDir, publishLog, readConfig } from '../../agent/ledger';
import { entries, tempLog } from '../helpers/log';

async function rejection(promise: Promise<unknown>): Promise<VouchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VouchError);
  return error as VouchError;
}

async function published(dir: string) {
  const text = await readFile(join(publicDir(dir), 'checkpoint'));
  return openCheckpoint(text, (await readConfig(dir)).key);
}

describe('cosignLog', () => {
  it('adds one timestamped cosignature per witness, which a quorum check accepts', async () => {
    const { dir, key } = await tempLog();
    await appendEntries(dir, entries(0, 500));
    await publishLog(dir, key);
    const [a, b] = [generateKey().key, generateKey().key];
    const first = await cosignLog(dir, a, 'witness.example/a', new Date(1_700_000_000_500));
    expect(first).toMatchObject({ name: 'witness.example/a', size: 500, timestamp: 1_700_000_000 });
    const witnessA = parseVerifierString(first.verifier);
    const second = await cosignLog(dir, b, 'witness.example/b', new Date(1_700_000_100_000));
    const witnessB = parseVerifierString(second.verifier);
    // Cosigning again replaces the witness's line.
    await cosignLog(dir, a, 'witness.example/a', new Date(1_700_000_200_000));

    const { note } = await published(dir);
    // The log's signature and cosignature, one line per witness.
    expect(note.signatures).toHaveLength(4);
    expect(verifyCosignatures(note, [logCosigner((await readConfig(dir)).key)], 1)).toHaveLength(1);
    expect(verifyCosignatures(note, [witnessA, witnessB], 2)).toEqual([
      { name: 'witness.example/b', timestamp: 1_700_000_100 },
      { name: 'witness.example/a', timestamp: 1_700_000_200 },
    ]);
  });

  it('witnesses growth with a consistency proof, and refuses a smaller tree or a fork', async () => {
    const { dir, key } = await tempLog();
    const witness = generateKey().key;
    await appendEntries(dir, entries(0, 300));
    await publishLog(dir, key);
    await cosignLog(dir, witness, 'w', new Date());
    await appendEntries(dir, entries(300, 70_000));
    await publishLog(dir, key);
    expect((await cosignLog(dir, witness, 'w', new Date())).size).toBe(70_000);

    // The witness remembers 70,000 entries; a rolled-back or forked log is refused.
    const files = await readdir(join(dir, 'witnesses'));
    expect(files).toHaveLength(1);
    const path = join(dir, 'witnesses', files[0] as string);
    const saved = JSON.parse(await readFile(path, 'utf8'));
    await writeFile(path, JSON.stringify({ ...saved, size: 70_001 }));
    expect((await rejection(cosignLog(dir, witness, 'w', new Date()))).code).toBe(
      'CHECKPOINT_INVALID',
    );
    await writeFile(path, JSON.stringify({ ...saved, root: Buffer.alloc(32).toString('base64') }));
    expect((await rejection(cosignLog(dir, witness, 'w', new Date()))).code).toBe('PROOF_INVALID');
    await writeFile(path, JSON.stringify({ ...saved, size: 69_999 }));
    expect((await rejection(cosignLog(dir, witness, 'w', new Date()))).code).toBe('PROOF_INVALID');
  });

  it('refuses a checkpoint whose root is not the root of the tiles', async () => {
    const { dir, key } = await tempLog();
    await appendEntries(dir, entries(0, 5));
    await publishLog(dir, key);
    await writeFile(join(publicDir(dir), 'tile/0/000.p/5'), Buffer.alloc(5 * 32));
    expect((await rejection(cosignLog(dir, generateKey().key, 'w', new Date()))).code).toBe(
      'CHECKPOINT_INVALID',
    );
  });
});

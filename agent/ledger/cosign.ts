import { join } from 'node:path';
import { z } from 'zod';
import { cosignNote } from '../core/cosignature';
import { decodeBase64, encodeBase64, toHex } from '../core/encoding';
import { VouchError } from '../core/errors';
import { describeIssues, parseJson } from '../core/json';
import { KeyType, keyIdOf, namePublicKey, type PrivateKey, verifierString } from '../core/keys';
import { consistencyProof, treeRoot, verifyConsistency } from '../core/merkle';
import { formatNote } from '../core/note';
import { makeDirectory, readFileCapped, writeFileDurably } from '../files';
import { layout, lockLog, publicDir, readCheckpoint, readConfig } from './logdir';
import { publishedReader } from './published';

export interface CosignResult {
  readonly name: string;
  /** The witness's verifier string (key type 0x04), for the trust root's witness list. */
  readonly verifier: string;
  readonly size: number;
  readonly timestamp: number;
  readonly checkpoint: string;
}

const witnessState = z.strictObject({
  name: z.string(),
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  root: z.string().max(64),
});

/**
 * Acts as a witness (c2sp.org/tlog-cosignature) for the published checkpoint: checks the
 * log's signature, recomputes the root from the tiles, proves the tree consistent with
 * the one this witness cosigned last (kept in witnesses/<key ID>.json) — refusing a
 * smaller or forked tree — and adds its timestamped cosignature to public/checkpoint.
 */
export async function cosignLog(
  dir: string,
  key: PrivateKey,
  name: string,
  now: Date,
): Promise<CosignResult> {
  return lockLog(dir, async () => {
    const config = await readConfig(dir);
    const { checkpoint, note } = await readCheckpoint(dir, config);
    const reader = publishedReader(dir, checkpoint.size, checkpoint.size);
    const root = await treeRoot(checkpoint.size, reader);
    if (Buffer.compare(root, checkpoint.root) !== 0) {
      throw new VouchError(
        'CHECKPOINT_INVALID',
        'the checkpoint root is not the root of the tiles',
      );
    }

    const keyId = keyIdOf(name, KeyType.Cosignature, key.raw);
    const statePath = join(dir, layout.witnesses, `${toHex(keyId)}.json`);
    const saved = await readFileCapped(statePath, 4096, 'witness state');
    if (saved !== undefined) {
      const result = witnessState.safeParse(parseJson(saved, 'LOG_INVALID', statePath));
      if (!result.success)
        throw new VouchError('LOG_INVALID', `${statePath}: ${describeIssues(result.error)}`);
      const last = { size: result.data.size, root: decodeBase64(result.data.root) };
      if (checkpoint.size < last.size) {
        throw new VouchError(
          'CHECKPOINT_INVALID',
          `${name} cosigned size ${last.size} before; refusing the smaller ${checkpoint.size}`,
        );
      }
      if (last.size > 0) {
        const proof =
          last.size < checkpoint.size
            ? await consistencyProof(last.size, checkpoint.size, reader)
            : [];
        verifyConsistency(last.size, checkpoint.size, last.root, root, proof);
      }
    }

    const timestamp = Math.floor(now.getTime() / 1000);
    const text = formatNote(cosignNote(note, key, name, timestamp));
    await writeFileDurably(join(publicDir(dir), layout.checkpoint), text);
    await makeDirectory(join(dir, layout.witnesses));
    const state = { name, size: checkpoint.size, root: encodeBase64(root) };
    await writeFileDurably(statePath, `${JSON.stringify(state)}\n`);
    return {
      name,
      verifier: verifierString(namePublicKey(name, key.raw, KeyType.Cosignature)),
      size: checkpoint.size,
      timestamp,
      checkpoint: text,
    };
  });
}

import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { VouchError } from '../../core/errors';
import { ExitCode } from '../../core/exit-codes';
import { generateKey, isValidKeyName, namePublicKey, verifierString } from '../../core/keys';
import { escapeText } from '../../core/text';
import { fsPath, makeDirectory, requireAbsent, writeFileDurably } from '../../files';
import type { Context } from '../context';

/**
 * One key pair per `--signer`, all or none: every file name is checked free first, and a
 * failure removes the files already written, so no half key pair or half set is left.
 */
export async function keygen(_ctx: Context, options: { signer: string[]; out: string }) {
  for (const name of options.signer) {
    if (!isValidKeyName(name)) throw new VouchError('USAGE', `--signer ${name}: no spaces or '+'`);
    if (name.includes('/')) {
      throw new VouchError('USAGE', `--signer ${name}: no '/' (it names files)`);
    }
  }
  const twice = options.signer.find((name, at) => options.signer.indexOf(name) !== at);
  if (twice !== undefined) throw new VouchError('USAGE', `--signer ${twice} is given twice`);
  const pairs = options.signer.map((signer) => ({
    signer,
    privateKey: join(options.out, `${signer}.key`),
    publicKey: join(options.out, `${signer}.pub`),
  }));
  requireAbsent(pairs.flatMap((pair) => [pair.privateKey, pair.publicKey]));
  await makeDirectory(options.out);
  const written: string[] = [];
  const keys = [];
  try {
    for (const pair of pairs) {
      const { privatePem, publicPem, key } = generateKey();
      await writeFileDurably(pair.privateKey, privatePem, { mode: 0o600, exclusive: true });
      written.push(pair.privateKey);
      await writeFileDurably(pair.publicKey, publicPem, { exclusive: true });
      written.push(pair.publicKey);
      keys.push({ ...pair, verifier: verifierString(namePublicKey(pair.signer, key.raw)) });
    }
  } catch (error) {
    await Promise.all(written.map((path) => unlink(fsPath(path)).catch(() => {})));
    throw error;
  }
  return {
    exitCode: ExitCode.OK,
    // One key: the object scripts already read; several: an array of them.
    data: keys.length === 1 ? keys[0] : keys,
    text: keys.map((key) => escapeText(key.verifier)).join('\n'),
  };
}

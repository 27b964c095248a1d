import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { VouchError } from '../../core/errors';
import { generateKey, isValidKeyName, namePublicKey, verifierString } from '../../core/keys';
import { escapeText } from '../../core/text';
import { fsPath, makeDirectory, requireAbsent, writeFileDurably } from '../../files';
import type { Context } from '../context';
import { ExitCode } from '../exit';

export async function keygen(_ctx: Context, options: { signer: string; out: string }) {
  if (!isValidKeyName(options.signer)) {
    throw new VouchError('USAGE', `--signer ${options.signer}: no spaces or '+'`);
  }
  if (options.signer.includes('/')) {
    throw new VouchError('USAGE', `--signer ${options.signer}: no '/' (it names files)`);
  }
  const privatePath = join(options.out, `${options.signer}.key`);
  const publicPath = join(options.out, `${options.signer}.pub`);
  requireAbsent([privatePath, publicPath]);
  await makeDirectory(options.out);
  const { privatePem, publicPem, key } = generateKey();
  await writeFileDurably(privatePath, privatePem, { mode: 0o600, exclusive: true });
  try {
    await writeFileDurably(publicPath, publicPem, { exclusive: true });
  } catch (error) {
    // Nothing is left behind on error, not even half a key pair.
    await unlink(fsPath(privatePath));
    throw error;
  }
  const verifier = verifierString(namePublicKey(options.signer, key.raw));
  return {
    exitCode: ExitCode.OK,
    data: {
      signer: options.signer,
      privateKey: privatePath,
      publicKey: publicPath,
      verifier,
    },
    text: escapeText(verifier),
  };
}

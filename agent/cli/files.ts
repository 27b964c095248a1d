import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { VouchError } from '../core/errors';
import {
  type KeyType,
  type PrivateKey,
  type PublicKey,
  parsePrivateKey,
  parsePublicKey,
} from '../core/keys';
import { fsPath, ioError, openExistingFile, readExistingFile, readOpenFileCapped } from '../files';

/** Key files for commands (with the private key's permission check) and file digests. */

/** A PEM key is ~120 bytes and a verifier string < 1 KiB. */
const maxKeyFileBytes = 16 * 1024;

const verifierShape = /^[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/;

/**
 * A PKCS#8 PEM Ed25519 private key. Like ssh, refuses a file that group or others may
 * access: the key might already have leaked, and the user should know.
 */
export async function readPrivateKeyFile(path: string): Promise<PrivateKey> {
  const handle = await openExistingFile(path, 'private key');
  try {
    const text = Buffer.from(
      await readOpenFileCapped(handle, path, maxKeyFileBytes, 'private key'),
    ).toString('utf8');
    // Before the permission check: a public key is readable by design, so "chmod 600"
    // would be the wrong advice; the user gave the wrong file of the pair.
    if (text.includes('-----BEGIN PUBLIC KEY-----') || verifierShape.test(text.trim())) {
      const privatePath = extname(path) === '.pub' ? `${path.slice(0, -'.pub'.length)}.key` : '';
      throw new VouchError(
        'BAD_KEY',
        `${path} is a public key; sign with the private key${privatePath ? `, e.g. ${privatePath}` : ''}`,
      );
    }
    // fstat the open file, not the path: what we check is what we read.
    const { mode } = await handle.stat();
    if ((mode & 0o077) !== 0) {
      throw new VouchError(
        'KEY_PERMISSIONS',
        `private key ${path} is accessible by group or others (mode ${(mode & 0o777).toString(8)}); run chmod 600 ${path}`,
      );
    }
    return parsePrivateKey(text);
  } finally {
    await handle.close();
  }
}

/**
 * A public key given on the command line: a verifier string, or a file holding one or an
 * SPKI PEM. A PEM key has no name of its own, so it takes `name`, else the file's base
 * name without extension (`vouch keygen --signer ID` writes `ID.pub`).
 */
export async function readPublicKey(
  arg: string,
  options: { readonly name?: string; readonly type?: KeyType } = {},
): Promise<PublicKey> {
  if (verifierShape.test(arg) && !existsSync(fsPath(arg))) {
    return parsePublicKey(arg, undefined, options.type);
  }
  const text = Buffer.from(await readExistingFile(arg, maxKeyFileBytes, 'public key')).toString(
    'utf8',
  );
  const pem = text.includes('-----BEGIN');
  const name = options.name ?? basename(arg, extname(arg));
  try {
    return parsePublicKey(text, pem ? name : undefined, options.type);
  } catch (error) {
    if (error instanceof VouchError) {
      throw new VouchError(error.code, `${arg}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/** Lowercase hex SHA-256 of a regular file, streamed (files may be disk images of gigabytes). */
export async function sha256File(path: string): Promise<string> {
  const handle = await openExistingFile(path, 'file');
  const hash = createHash('sha256');
  try {
    await pipeline(handle.createReadStream({ autoClose: false }), hash);
  } catch (error) {
    throw ioError('read', path, error);
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { type FileHandle, link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { VouchError } from '../core/errors';
import {
  type KeyType,
  type PrivateKey,
  type PublicKey,
  parsePrivateKey,
  parsePublicKey,
} from '../core/keys';

/**
 * File input and output for commands: capped reads, key files with their permission check,
 * and atomic writes (temp file, fsync, rename), so a failed command leaves nothing behind.
 */

/** A PEM key is ~120 bytes and a verifier string < 1 KiB. */
const maxKeyFileBytes = 16 * 1024;

/** Reads a whole file of at most `maxBytes`; a missing or unreadable file is an IO error. */
export async function readFileCapped(
  path: string,
  maxBytes: number,
  what: string,
): Promise<Uint8Array> {
  const handle = await openForReading(path, what);
  try {
    return await readAll(handle, path, maxBytes, what);
  } finally {
    await handle.close();
  }
}

/**
 * A PKCS#8 PEM Ed25519 private key. Like ssh, refuses a file that group or others may
 * access: the key might already have leaked, and the user should know.
 */
export async function readPrivateKeyFile(path: string): Promise<PrivateKey> {
  const handle = await openForReading(path, 'private key');
  try {
    // fstat the open file, not the path: what we check is what we read.
    const { mode } = await handle.stat();
    if ((mode & 0o077) !== 0) {
      throw new VouchError(
        'KEY_PERMISSIONS',
        `private key ${path} is accessible by group or others (mode ${(mode & 0o777).toString(8)}); run chmod 600 ${path}`,
      );
    }
    const pem = Buffer.from(await readAll(handle, path, maxKeyFileBytes, 'private key'));
    return parsePrivateKey(pem.toString('utf8'));
  } finally {
    await handle.close();
  }
}

const verifierShape = /^[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/;

/**
 * A public key given on the command line: a verifier string, or a file holding one or an
 * SPKI PEM. A PEM key has no name of its own, so it takes `name`, else the file's base
 * name without extension (`vouch keygen --signer ID` writes `ID.pub`).
 */
export async function readPublicKey(
  arg: string,
  options: { readonly name?: string; readonly type?: KeyType } = {},
): Promise<PublicKey> {
  if (verifierShape.test(arg) && !existsSync(arg)) {
    return parsePublicKey(arg, undefined, options.type);
  }
  const text = Buffer.from(await readFileCapped(arg, maxKeyFileBytes, 'public key')).toString(
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

/** Lowercase hex SHA-256 of a file, streamed (files may be disk images of gigabytes). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    await pipeline(createReadStream(path), hash);
  } catch (error) {
    throw new VouchError('IO', `cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return hash.digest('hex');
}

/**
 * Writes `data` to `path` atomically: a temp file in the same directory, fsync, then
 * rename over `path` — or, with `exclusive`, a hard link that fails if `path` exists (for
 * keys and new roots, which must never replace a file).
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: { readonly mode?: number; readonly exclusive?: boolean } = {},
): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', options.mode ?? 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.exclusive) await link(temp, path);
    else await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new VouchError('FILE_EXISTS', `${path} exists; not replacing it`, { cause: error });
    }
    throw new VouchError('IO', `cannot write ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (options.exclusive) await unlink(temp).catch(() => {});
}

/** Fails with FILE_EXISTS when any of `paths` exists (before writing a set of files). */
export function requireAbsent(paths: readonly string[]): void {
  const present = paths.find((path) => existsSync(path));
  if (present !== undefined) {
    throw new VouchError('FILE_EXISTS', `${present} exists; not replacing it`);
  }
}

async function openForReading(path: string, what: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (error) {
    throw new VouchError('IO', `cannot read ${what} ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

async function readAll(
  handle: FileHandle,
  path: string,
  maxBytes: number,
  what: string,
): Promise<Uint8Array> {
  const tooLarge = () =>
    new VouchError('PAYLOAD_TOO_LARGE', `${what} ${path} is larger than ${maxBytes} bytes`);
  if ((await handle.stat()).size > maxBytes) throw tooLarge();
  // Count while reading too: a file can grow after the stat.
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
    if (bytesRead === 0) break;
    total += bytesRead;
    if (total > maxBytes) throw tooLarge();
    chunks.push(chunk.subarray(0, bytesRead));
  }
  return new Uint8Array(Buffer.concat(chunks));
}

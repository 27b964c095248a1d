import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { maxEnvelopeBytes, serializeEnvelope } from '../core/dsse';
import { VouchError } from '../core/errors';
import { rootPath, rootsDir, rootVersions } from '../core/layout';
import { parseRootEnvelope, type Root, verifyRoot } from '../core/root';
import { fsPath, ioError, makeDirectory, readExistingFile, writeFileDurably } from '../files';
import { type LogConfig, lockLog, publicDir, readConfig } from './logdir';

/**
 * The trust root chain a log serves beside its tiles, `roots/<V>.json`, so devices take
 * root rotations from any mirror (docs/formats.md "Trust root"; TUF §5.3). Each version is
 * published once and must be a valid rotation from the one before it, so a mirror never
 * serves a chain a device would reject.
 */

/** The root's log must be this log: origin and key. */
export function requireRootForLog(config: LogConfig, root: Root): void {
  const sameKey = Buffer.compare(root.log.key.raw, config.key.raw) === 0;
  if (root.log.origin !== config.origin || root.log.key.name !== config.origin || !sameKey) {
    throw new VouchError(
      'ROOT_INVALID',
      `the trust root is for log ${root.log.origin}, not ${config.origin} with this log's key`,
    );
  }
}

/** The versions published so far, ascending. */
export async function publishedRootVersions(dir: string): Promise<number[]> {
  const names = await readdir(fsPath(join(publicDir(dir), rootsDir))).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [] as string[];
    throw ioError('list', join(publicDir(dir), rootsDir), error);
  });
  return rootVersions(names);
}

/**
 * The newest root the log serves, verified, or undefined before the first `publish-root`:
 * the root that `log add` checks statements against when none is given.
 */
export async function newestPublishedRoot(dir: string): Promise<Root | undefined> {
  const newest = (await publishedRootVersions(dir)).at(-1);
  if (newest === undefined) return undefined;
  const path = join(publicDir(dir), rootPath(newest));
  return verifyRoot(
    parseRootEnvelope(await readExistingFile(path, maxEnvelopeBytes, 'trust root')),
  );
}

export interface PublishedRoot {
  readonly version: number;
  /** False when this exact root was already published. */
  readonly written: boolean;
}

/**
 * Publishes a signed root as `roots/<V>.json`. The first may have any version; later ones
 * must rotate from the newest published (version + 1, signed by thresholds of both).
 */
export async function publishRoot(dir: string, rootBytes: Uint8Array): Promise<PublishedRoot> {
  const config = await readConfig(dir);
  const envelope = parseRootEnvelope(rootBytes);
  const bytes = serializeEnvelope(envelope);
  return lockLog(dir, async () => {
    const versions = await publishedRootVersions(dir);
    const newest = versions.at(-1);
    const pathOf = (version: number) => join(publicDir(dir), rootPath(version));
    const read = async (version: number) =>
      Buffer.from(await readExistingFile(pathOf(version), maxEnvelopeBytes, 'trust root'));
    const trusted =
      newest === undefined ? undefined : verifyRoot(parseRootEnvelope(await read(newest)));
    const root = verifyRoot(envelope);
    requireRootForLog(config, root);
    if (versions.includes(root.version)) {
      if ((await read(root.version)).equals(Buffer.from(bytes))) {
        return { version: root.version, written: false };
      }
      throw new VouchError(
        'ROOT_ROLLBACK',
        `a different root version ${root.version} is already published; publish version ${(newest ?? 0) + 1}`,
      );
    }
    // A rotation: version N+1, signed by a threshold of N's keys and of its own.
    if (trusted) verifyRoot(envelope, trusted);
    await makeDirectory(join(publicDir(dir), rootsDir));
    await writeFileDurably(pathOf(root.version), bytes, { exclusive: true });
    return { version: root.version, written: true };
  });
}

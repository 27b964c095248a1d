import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { VouchError } from '../core/errors';
import { rootPath, rootsDir, rootVersions } from '../core/layout';
import {
  checkpointName,
  maxCheckpointBytes,
  maxRootBytes,
  snapshotBundles,
} from '../core/snapshot-format';
import { entryBundlePath, maxBundleBytes } from '../core/tiles';
import { fsPath, readFileCapped } from '../files';
import { type ExportResult, type SnapshotSource, writeSnapshot } from '../snapshot-writer';
import { publicDir } from './logdir';

/**
 * `vouch snapshot export --log` (core/snapshot-format.ts): a snapshot of what a log
 * directory publishes, its public/ (or the directory itself when it is a copy of one). The
 * files are read as a device reads a file:// mirror of that directory, under the caps an
 * import applies, and their errors worded the same: the snapshot holds what that mirror serves.
 */
export async function exportLogSnapshot(options: {
  readonly out: string;
  readonly logDir: string;
  readonly maxBytes: number;
  readonly maxBundleBytes: number;
}): Promise<ExportResult> {
  const source = await publishedSource(options.logDir, options.maxBundleBytes);
  return writeSnapshot(options.out, source, options.maxBytes);
}

async function publishedSource(logDir: string, bundleCap: number): Promise<SnapshotSource> {
  const published = publicDir(logDir);
  const base = (await stat(fsPath(published)).catch(() => undefined))?.isDirectory()
    ? published
    : logDir;
  const url = pathToFileURL(base).href;
  const read = (path: string, maxBytes: number) => readPublished(base, url, path, maxBytes);
  const note = await read(checkpointName, maxCheckpointBytes);
  // Named by its absolute path, the one the URL stands for.
  if (!note) throw new VouchError('LOG_INVALID', `${fileURLToPath(url)} has no checkpoint`);
  // Root files a publisher placed beside its tiles (roots.ts), ascending.
  const versions = rootVersions(
    await readdir(fsPath(join(base, rootsDir))).catch(() => [] as string[]),
  );
  const roots: { version: number; bytes: Uint8Array }[] = [];
  for (const version of versions) {
    const bytes = await read(rootPath(version), maxRootBytes);
    if (bytes) roots.push({ version, bytes });
  }
  return {
    note,
    roots,
    async *bundles(size) {
      for (const tile of snapshotBundles(size)) {
        const path = entryBundlePath(tile);
        const bytes = await read(path, maxBundleBytes(tile.width, bundleCap));
        if (!bytes) throw new VouchError('LOG_INVALID', `${base}: ${path} is missing`);
        yield { tile, bytes };
      }
    },
  };
}

/**
 * The file `path` of the published directory `base` (file:// `url`) under `maxBytes`, or
 * undefined when it is not there; errors name the directory by its URL, as a mirror's do.
 */
async function readPublished(
  base: string,
  url: string,
  path: string,
  maxBytes: number,
): Promise<Uint8Array | undefined> {
  try {
    return await readFileCapped(join(base, path), maxBytes, path);
  } catch (error) {
    if (error instanceof VouchError && error.code === 'PAYLOAD_TOO_LARGE') {
      throw new VouchError('PAYLOAD_TOO_LARGE', `mirror ${url}: ${path} is over ${maxBytes} bytes`);
    }
    throw new VouchError('UNAVAILABLE', `mirror ${url}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

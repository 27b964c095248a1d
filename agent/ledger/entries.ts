import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { VouchError } from '../core/errors';
import { hashLeaf, hashSize } from '../core/merkle';
import {
  encodeEntryBundle,
  fullWidth,
  maxBundleBytes,
  maxEntrySize,
  splitEntries,
} from '../core/tiles';
import { fsPath, ioError, readExistingFile, syncDirectory } from '../files';
import { layout, lockLog, readConfig, readState, writeState } from './logdir';

/**
 * Committed entries: entries/<N> holds entries N·256 … N·256+255 in the entry bundle
 * encoding (c2sp.org/tlog-tiles §Log entries), so a full staged file is its published
 * bundle byte for byte; `hashes` holds their leaf hashes. Both only grow; bytes beyond
 * what state.json commits are the remains of an interrupted append and are cut off by
 * the next one.
 */

const bundleCap = maxBundleBytes(fullWidth);

function stagedPath(dir: string, bundle: number): string {
  return join(dir, layout.entries, String(bundle));
}

/**
 * The first `count` entries of the staged file `path` (`bytes`), and where they end: those
 * state.json commits; what follows is the remains of an interrupted append.
 */
function committedEntries(
  bytes: Uint8Array,
  count: number,
  path: string,
): { readonly entries: Uint8Array[]; readonly end: number } {
  const committed = splitEntries(bytes, count);
  if (committed.entries.length < count) {
    throw new VouchError('LOG_INVALID', `${path} lost committed entries`);
  }
  return committed;
}

/** The committed entries [start, end). */
export async function readEntries(dir: string, start: number, end: number): Promise<Uint8Array[]> {
  const entries: Uint8Array[] = [];
  for (let bundle = Math.floor(start / fullWidth); bundle * fullWidth < end; bundle++) {
    const path = stagedPath(dir, bundle);
    const first = bundle * fullWidth;
    const count = Math.min(fullWidth, end - first);
    const bytes = await readExistingFile(path, bundleCap, 'staged entries', 'LOG_INVALID');
    entries.push(...committedEntries(bytes, count, path).entries.slice(Math.max(0, start - first)));
  }
  return entries;
}

/** The leaf hashes of the first `size` entries, as one buffer. */
async function readLeafHashes(dir: string, size: number): Promise<Buffer> {
  const path = join(dir, layout.hashes);
  const bytes = await readExistingFile(path, Number.MAX_SAFE_INTEGER, 'leaf hashes', 'LOG_INVALID');
  if (bytes.length < size * hashSize) {
    throw new VouchError('LOG_INVALID', `${path} lost committed leaf hashes`);
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, size * hashSize);
}

export interface AppendResult {
  /** Index of the first appended entry. */
  readonly first: number;
  /** Committed entries after the append. */
  readonly size: number;
  readonly leafHashes: readonly Uint8Array[];
}

/**
 * Appends entries, all or none: each at most 65535 bytes (uint16 length prefix), none
 * already in the log or twice in the batch. Durable when it returns.
 */
export async function appendEntries(
  dir: string,
  entries: readonly Uint8Array[],
): Promise<AppendResult> {
  return lockLog(dir, async () => {
    await readConfig(dir);
    const size = await readState(dir);
    const known = await readLeafHashes(dir, size);
    const seen = new Set<string>();
    for (let at = 0; at < known.length; at += hashSize) {
      seen.add(known.toString('latin1', at, at + hashSize));
    }
    const leafHashes = entries.map((entry, i) => {
      if (entry.length > maxEntrySize) {
        throw new VouchError(
          'PAYLOAD_TOO_LARGE',
          `entry ${i + 1} is ${entry.length} bytes; a tlog-tiles entry is at most ${maxEntrySize}`,
        );
      }
      const hash = hashLeaf(entry);
      const key = Buffer.from(hash).toString('latin1');
      if (seen.has(key))
        throw new VouchError(
          'ENTRY_DUPLICATE',
          `entry ${i + 1} of the batch is already in the log`,
        );
      seen.add(key);
      return hash;
    });
    if (entries.length > 0) {
      await writeStaged(dir, size, entries);
      await writeAt(join(dir, layout.hashes), size * hashSize, Buffer.concat(leafHashes));
      await writeState(dir, size + entries.length);
    }
    return { first: size, size: size + entries.length, leafHashes };
  });
}

/** Appends entries to entries/<N> from index `size` on, cutting uncommitted tails first. */
async function writeStaged(dir: string, size: number, entries: readonly Uint8Array[]) {
  for (let i = 0; i < entries.length; ) {
    const index = size + i;
    const bundle = Math.floor(index / fullWidth);
    const path = stagedPath(dir, bundle);
    const committed = index - bundle * fullWidth;
    const take = Math.min(entries.length - i, fullWidth - committed);
    let offset = 0;
    if (committed > 0)
      offset = committedEntries(
        await readExistingFile(path, bundleCap, 'staged entries', 'LOG_INVALID'),
        committed,
        path,
      ).end;
    await writeAt(path, offset, encodeEntryBundle(entries.slice(i, i + take)));
    i += take;
  }
  await syncDirectory(join(dir, layout.entries));
}

/** Writes `data` at `offset` of `path` (created if absent), drops what followed, fsyncs. */
async function writeAt(path: string, offset: number, data: Uint8Array): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(fsPath(path), offset === 0 ? 'w' : 'r+', 0o644);
    await handle.truncate(offset);
    await handle.write(data, 0, data.length, offset);
    await handle.sync();
  } catch (error) {
    throw ioError('write', path, error);
  } finally {
    await handle?.close();
  }
}

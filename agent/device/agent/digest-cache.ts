import type { BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { ChunkedDigest, Digest, OpenFile } from '../../content/pool';
import { asVouchError, VouchError } from '../../core/errors';
import { describeIssues, parseJson } from '../../core/json';
import { merkleLeafSize } from '../../core/statement';
import {
  fsPath,
  ioError,
  makeDirectory,
  openExistingFile,
  readFileCapped,
  writeFileDurably,
} from '../../files';
import type { Logger } from '../../logger';
import { sealIntact, sealRecord } from '../store/sealed';
import type { Digester } from '../verify/chunked';
import type { IdlePool } from './idle-pool';

/**
 * What the agent keeps of expensive work across verifications and restarts: files' digests
 * and images' deep-check results, never a verdict (each answer is looked up afresh in the
 * trust state, so a revocation holds at once).
 *
 * A file's digests are kept under what stat(2) says of it: device, inode, size, and the
 * modification and change times in nanoseconds. Writing the file moves its mtime; chmod,
 * chown, rename and link move its ctime, which no system call sets back (utimensat(2) sets
 * the mtime, and the ctime to now). Digests are kept only when that key was the same before
 * and after hashing, read from the open file that was hashed (content/pool/ OpenFile), so a
 * file changed or replaced meanwhile is not kept; and, as in git's index
 * (Documentation/technical/racy-git.txt), only of a file whose times are older than the
 * hashing by more than the coarsest timestamp granularity, so that a write after it shows
 * even within one tick of the file system's clock.
 *
 * The files (`cache/` in the state directory, docs/formats.md) are sealed
 * (store/sealed.ts), validated and bounded, the least recently used dropped; they are
 * written durably, once for a burst of changes. A damaged or unreadable one is logged and
 * ignored (the cache starts empty): never fatal, and nothing in it counts but under its key.
 */

export const cacheFiles = {
  dir: 'cache',
  digests: join('cache', 'digests.json'),
  deep: join('cache', 'deep.json'),
} as const;

/** What a file's digests are kept under: BigIntStats has these fields. */
export type FileKey = Pick<BigIntStats, 'dev' | 'ino' | 'size' | 'mtimeNs' | 'ctimeNs'>;

export interface CachedDigests {
  /** null: not computed yet. */
  readonly sha256: string | null;
  /** The merkle-sha256-1mib root; null: not computed yet. */
  readonly merkle: string | null;
  readonly size: number;
}

export interface DigestCacheOptions {
  readonly stateDir: string;
  readonly logger: Logger;
  /** Files kept at most; default 10,000. */
  readonly maxFiles?: number;
  /** Images' deep-check results kept at most; default 1,000. */
  readonly maxImages?: number;
  /** Changes are written this long after the first of a burst (ms); default 5 s. */
  readonly writeDelayMs?: number;
  readonly clock?: () => number;
}

/** One deep-check result's JSON, at most: a few hundred layers' diff IDs and sizes. */
export const maxDeepResultBytes = 64 * 1024;
/** All of them, at most: with `maxImages`, what bounds deep.json. */
const maxDeepBytes = 4 * 2 ** 20;
/** A file's entry as written, at most (two 20-digit numbers, two times, two digests). */
const maxFileEntryBytes = 512;
/** An image's entry as written, besides its result. */
const maxImageEntryBytes = 256;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const unsigned = z.string().regex(/^(0|[1-9][0-9]{0,19})$/);
/** Nanoseconds since the epoch: before it for a file dated so. */
const nanoseconds = z.string().regex(/^(0|-?[1-9][0-9]{0,19})$/);
const imageId = /^sha256:[0-9a-f]{64}$/;

const fileEntry = z.strictObject({
  dev: unsigned,
  ino: unsigned,
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  mtimeNs: nanoseconds,
  ctimeNs: nanoseconds,
  sha256: hex64.nullable(),
  merkle: hex64.nullable(),
});
type FileEntry = z.infer<typeof fileEntry>;

const digestsFile = z.strictObject({
  format: z.literal('vouch-digest-cache/v1'),
  /** Least recently used first. */
  files: z.array(fileEntry),
  recordSha256: z.string(),
});

const imageEntry = z.strictObject({
  id: z.string().regex(imageId),
  /** When it was stored (ms since the epoch). */
  at: z.number().int().min(0),
  result: z.json(),
});

const deepFile = z.strictObject({
  format: z.literal('vouch-deep-cache/v1'),
  /** Least recently used first. */
  images: z.array(imageEntry),
  recordSha256: z.string(),
});

interface ImageEntry {
  readonly at: number;
  readonly result: unknown;
  /** Of its result's JSON. */
  readonly bytes: number;
}

type Part = 'digests' | 'deep';

export class DigestCache {
  readonly #options: DigestCacheOptions;
  readonly #maxFiles: number;
  readonly #maxImages: number;
  /** By `dev:ino`, least recently used first (a Map keeps insertion order). */
  readonly #files = new Map<string, FileEntry>();
  readonly #images = new Map<string, ImageEntry>();
  #imageBytes = 0;
  readonly #dirty = new Set<Part>();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  private constructor(options: DigestCacheOptions) {
    this.#options = options;
    this.#maxFiles = options.maxFiles ?? 10_000;
    this.#maxImages = options.maxImages ?? 1_000;
  }

  /** The cache as its files left it; whatever cannot be read of them is logged, and left out. */
  static async load(options: DigestCacheOptions): Promise<DigestCache> {
    const cache = new DigestCache(options);
    await cache.#load();
    return cache;
  }

  /** A file's digests, when they were kept under this key; they count as used. */
  file(key: FileKey): CachedDigests | undefined {
    const entry = this.#files.get(identity(key));
    if (!entry || !matches(entry, key)) return undefined;
    touch(this.#files, identity(key), entry);
    return { sha256: entry.sha256, merkle: entry.merkle, size: entry.size };
  }

  /** Keeps digests of the file with this key, beside those kept under the same key. */
  putFile(key: FileKey, digests: { readonly sha256?: string; readonly merkle?: string }): void {
    const id = identity(key);
    const known = this.#files.get(id);
    const same = known && matches(known, key) ? known : undefined;
    touch(this.#files, id, {
      dev: String(key.dev),
      ino: String(key.ino),
      size: Number(key.size),
      mtimeNs: String(key.mtimeNs),
      ctimeNs: String(key.ctimeNs),
      sha256: digests.sha256 ?? same?.sha256 ?? null,
      merkle: digests.merkle ?? same?.merkle ?? null,
    });
    for (const [oldest] of this.#files) {
      if (this.#files.size <= this.#maxFiles) break;
      this.#files.delete(oldest);
    }
    this.#changed('digests');
  }

  /**
   * The deep-check result kept for image `id` (`sha256:<hex>`), and when it was (ms); it
   * counts as used. It is the caller's JSON, as read back from a file: the caller parses it.
   */
  deepResult(id: string): { readonly result: unknown; readonly at: number } | undefined {
    const entry = this.#images.get(id);
    if (!entry) return undefined;
    touch(this.#images, id, entry);
    return { result: entry.result, at: entry.at };
  }

  /**
   * Keeps a deep-check result (JSON) for image `id`, as of now. False when its JSON is over
   * {@link maxDeepResultBytes}: not kept.
   */
  putDeepResult(id: string, result: unknown): boolean {
    if (!imageId.test(id)) throw new VouchError('INTERNAL', `digest cache: not an image ID: ${id}`);
    const json = JSON.stringify(result);
    if (json === undefined) throw new VouchError('INTERNAL', 'digest cache: a result must be JSON');
    const bytes = Buffer.byteLength(json);
    if (bytes > maxDeepResultBytes) return false;
    // A copy that is JSON, as it will be when read back.
    this.#setImage(id, {
      at: (this.#options.clock ?? Date.now)(),
      result: JSON.parse(json),
      bytes,
    });
    this.#changed('deep');
    return true;
  }

  /** Writes what changed and is not written yet, now (the agent stopping). */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#write();
  }

  #setImage(id: string, entry: ImageEntry): void {
    this.#imageBytes += entry.bytes - (this.#images.get(id)?.bytes ?? 0);
    touch(this.#images, id, entry);
    for (const [oldest, { bytes }] of this.#images) {
      if (this.#images.size <= this.#maxImages && this.#imageBytes <= maxDeepBytes) break;
      this.#images.delete(oldest);
      this.#imageBytes -= bytes;
    }
  }

  /**
   * Writes `part` a while after its first change. Only changes count: using an entry moves
   * it in memory and is written with the next change, not by itself (an SD card wears).
   */
  #changed(part: Part): void {
    this.#dirty.add(part);
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#write();
    }, this.#options.writeDelayMs ?? 5000);
    // The agent flushes when it stops; a pending write is no reason to stay alive.
    this.#timer.unref();
  }

  /** Writes the changed parts, one write at a time; a failure is logged, and not fatal. */
  #write(): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      const parts = [...this.#dirty];
      this.#dirty.clear();
      for (const part of parts) {
        const path = this.#path(part);
        try {
          await makeDirectory(join(this.#options.stateDir, cacheFiles.dir));
          // On one line: thousands of entries, read by the agent alone.
          await writeFileDurably(path, sealRecord(this.#record(part), { compact: true }));
        } catch (error) {
          this.#options.logger.warn(
            { file: path },
            `cannot write the digest cache: ${asVouchError(error).message}`,
          );
        }
      }
    });
    return this.#writing;
  }

  #record(part: Part): object {
    return part === 'digests'
      ? { format: 'vouch-digest-cache/v1', files: [...this.#files.values()] }
      : {
          format: 'vouch-deep-cache/v1',
          images: [...this.#images].map(([id, { at, result }]) => ({ id, at, result })),
        };
  }

  #path(part: Part): string {
    return join(this.#options.stateDir, cacheFiles[part]);
  }

  async #load(): Promise<void> {
    await this.#removeTemp();
    const digests = await this.#read(
      'digests',
      4096 + this.#maxFiles * maxFileEntryBytes,
      digestsFile,
    );
    for (const entry of digests?.files.slice(-this.#maxFiles) ?? []) {
      this.#files.set(`${entry.dev}:${entry.ino}`, entry);
    }
    const deep = await this.#read(
      'deep',
      4096 + this.#maxImages * maxImageEntryBytes + maxDeepBytes,
      deepFile,
    );
    for (const { id, at, result } of deep?.images ?? []) {
      const bytes = Buffer.byteLength(JSON.stringify(result));
      if (bytes <= maxDeepResultBytes) this.#setImage(id, { at, result, bytes });
    }
  }

  /** A cache file as validated; undefined when it is absent, or cannot be read (logged). */
  async #read<T>(part: Part, maxBytes: number, schema: z.ZodType<T>): Promise<T | undefined> {
    const path = this.#path(part);
    try {
      const bytes = await readFileCapped(path, maxBytes, 'digest cache');
      if (bytes === undefined) return undefined;
      const json = parseJson(bytes, 'STATE_INVALID', path);
      const parsed = schema.safeParse(json);
      if (!parsed.success) throw new VouchError('STATE_INVALID', describeIssues(parsed.error));
      if (!sealIntact(json)) {
        throw new VouchError('STATE_INVALID', 'does not match its own digest (recordSha256)');
      }
      return parsed.data;
    } catch (error) {
      this.#options.logger.warn(
        { file: path },
        `ignoring the digest cache ${path}, starting without it: ${asVouchError(error).message}`,
      );
      return undefined;
    }
  }

  /** Temp files of writes a crash cut short (files.ts writeFileDurably): only the agent writes here. */
  async #removeTemp(): Promise<void> {
    const dir = join(this.#options.stateDir, cacheFiles.dir);
    const names = await readdir(fsPath(dir)).catch(() => [] as string[]);
    for (const name of names.filter((name) => /^\..*\.tmp$/.test(name))) {
      await unlink(fsPath(join(dir, name))).catch(() => {});
    }
  }
}

/**
 * The coarsest file timestamps a device may hash files on: FAT's mtime, in steps of 2 s
 * (ext4, f2fs and the like take the kernel's clock, which ticks every few ms).
 */
const timestampGranularityMs = 2000;

/**
 * A Digester (verify/chunked.ts) that answers from the cache when the file's key matches,
 * and else hashes on the agent's pool (idle-pool.ts) and keeps what it computed, as the top
 * of this file says. Of chunked digests, only merkle-sha256-1mib's leaf size is kept: the
 * one statements name.
 */
export class CachingDigester implements Digester {
  constructor(
    private readonly cache: DigestCache,
    private readonly hashing: Pick<IdlePool, 'use'>,
    private readonly clock: () => number = Date.now,
  ) {}

  hash(path: string, onProgress?: (bytes: number) => void): Promise<Digest> {
    return this.#through(
      path,
      ({ sha256, size }) => (sha256 === null ? undefined : { sha256, size }),
      (file) => this.hashing.use((pool) => pool.hash(file, onProgress)),
      (digest) => ({ sha256: digest.sha256 }),
    );
  }

  hashChunked(
    path: string,
    leafSize: number,
    onProgress?: (bytes: number) => void,
  ): Promise<ChunkedDigest> {
    if (leafSize !== merkleLeafSize) {
      return this.hashing.use((pool) => pool.hashChunked(path, leafSize, onProgress));
    }
    return this.#through(
      path,
      ({ merkle, size }) =>
        merkle === null
          ? undefined
          : { root: merkle, leafSize, chunks: Math.ceil(size / leafSize), size },
      (file) => this.hashing.use((pool) => pool.hashChunked(file, leafSize, onProgress)),
      (digest) => ({ merkle: digest.root }),
    );
  }

  async #through<T extends { readonly size: number }>(
    path: string,
    cached: (digests: CachedDigests) => T | undefined,
    compute: (file: OpenFile) => Promise<T>,
    keep: (digest: T) => { readonly sha256?: string; readonly merkle?: string },
  ): Promise<T> {
    // Before the first stat: a write after this moment gets a time a settled file has not.
    const started = Math.floor(this.clock());
    // files.ts's rule, as when the pool opens a file: a FIFO would block, a device never end.
    const handle = await openExistingFile(path, 'file');
    try {
      const before = await statOf(handle, path);
      const found = this.cache.file(before);
      const hit = found && cached(found);
      if (hit) return hit;
      const digest = await compute({ path, handle });
      const after = await statOf(handle, path);
      if (
        sameKey(before, after) &&
        settled(before, started) &&
        BigInt(digest.size) === before.size
      ) {
        this.cache.putFile(before, keep(digest));
      }
      return digest;
    } finally {
      await handle.close();
    }
  }
}

async function statOf(handle: FileHandle, path: string): Promise<BigIntStats> {
  try {
    return await handle.stat({ bigint: true });
  } catch (error) {
    throw ioError('read', path, error);
  }
}

/** Whether any write after `started` (ms) gives the file other times (racy-git.txt). */
function settled(key: FileKey, started: number): boolean {
  const bound = BigInt(started - timestampGranularityMs) * 1_000_000n;
  return key.mtimeNs < bound && key.ctimeNs < bound;
}

function sameKey(a: FileKey, b: FileKey): boolean {
  return (
    a.dev === b.dev &&
    a.ino === b.ino &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs
  );
}

function identity(key: FileKey): string {
  return `${key.dev}:${key.ino}`;
}

/** Whether `entry` was kept under `key` (its identity matched already). */
function matches(entry: FileEntry, key: FileKey): boolean {
  return (
    entry.size === Number(key.size) &&
    entry.mtimeNs === String(key.mtimeNs) &&
    entry.ctimeNs === String(key.ctimeNs)
  );
}

/** Sets `key` as the most recently used. */
function touch<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
}

import { createWriteStream } from 'node:fs';
import { type FileHandle, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type ExtractEvents, extract, pack } from 'tar-stream';
import { parseCheckpoint } from '../../core/checkpoint';
import { maxEnvelopeBytes } from '../../core/dsse';
import { VouchError } from '../../core/errors';
import { rootPath, rootsDir, rootVersionOfPath, rootVersions } from '../../core/layout';
import { maxNoteSize, parseNote } from '../../core/note';
import {
  encodeEntryBundle,
  entryBundlePath,
  fullWidth,
  maxEntrySize,
  type TileId,
} from '../../core/tiles';
import {
  fsPath,
  ioError,
  openExistingFile,
  requireReplaceable,
  syncDirectory,
  writeFailure,
} from '../../files';
import type { Logger } from '../../logger';
import { loadState, type RootFile, verifiedEntries } from '../store/state';
import {
  type Applied,
  applyEntries,
  type Bundle,
  type Context,
  checkAgainstAnchor,
  commitUnchanged,
  type Incoming,
  updateRoots,
} from './apply';
import { openMirror } from './mirror';
import { type Repaired, restoreRoots, trustOf, verifyCheckpointFrom, withState } from './sync';

/**
 * Snapshots for air-gapped devices (docs/formats.md "Snapshot file"): one POSIX tar file holding a
 * checkpoint and every entry it covers, as the log serves them, in this order:
 *
 *   vouch-snapshot.json          {"format":"vouch-snapshot/v1","origin":…,"size":…}
 *   checkpoint                   the signed checkpoint note, with its cosignatures
 *   roots/<V>.json …             the trust root chain, ascending (may be empty)
 *   tile/entries/<N>[.p/<W>] …   every entry bundle of the tree, in order (c2sp.org/tlog-tiles)
 *
 * Import reads it as one stream, in that order, with a cap on each member and on the
 * file, and applies it exactly like a sync: nothing in it is trusted before it verifies.
 */

type TarEntry = ExtractEvents['entry'][1];

const manifestName = 'vouch-snapshot.json';
const format = 'vouch-snapshot/v1';
const maxManifestBytes = 4096;

export interface ExportResult {
  readonly out: string;
  readonly origin: string;
  readonly size: number;
  readonly roots: number;
  readonly bytes: number;
}

/** What a snapshot is made from: its checkpoint note, roots and entry bundles. */
interface SnapshotSource {
  readonly note: Uint8Array;
  readonly roots: readonly RootFile[];
  bundles(size: number): AsyncIterable<{ readonly tile: TileId; readonly bytes: Uint8Array }>;
}

/**
 * `vouch snapshot export`: from the device's state (its entries, re-hashed on the way and
 * checked against its verified root), or with `logDir` from a publisher's log directory,
 * read through its published files exactly as a file:// mirror would be.
 */
export async function exportSnapshot(options: {
  readonly out: string;
  readonly stateDir: string;
  readonly logDir?: string | undefined;
  readonly maxBytes: number;
  readonly maxBundleBytes: number;
}): Promise<ExportResult> {
  const source = options.logDir
    ? await logSource(options.logDir, options.maxBundleBytes)
    : await stateSource(options.stateDir);
  const note = parseNote(source.note);
  const { origin, size } = parseCheckpoint(note.text);
  await requireReplaceable(options.out);
  const temp = join(dirname(options.out), `.${basename(options.out)}.${process.pid}.tmp`);
  const tar = pack();
  let bytes = 0;
  const written = pipeline(
    tar,
    async function* (chunks: AsyncIterable<unknown>) {
      for await (const chunk of chunks) {
        bytes += (chunk as Buffer).length;
        if (bytes > options.maxBytes) {
          throw new VouchError('PAYLOAD_TOO_LARGE', `snapshot is over ${options.maxBytes} bytes`);
        }
        yield chunk;
      }
    },
    createWriteStream(fsPath(temp), { flags: 'wx', mode: 0o644 }),
  );
  written.catch(() => {});
  const add = (name: string, data: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      tar.entry(
        { name, size: data.length, mode: 0o644, mtime: new Date(0) },
        Buffer.from(data),
        (error) => (error ? reject(error) : resolve()),
      );
    });
  try {
    await add(manifestName, Buffer.from(JSON.stringify({ format, origin, size })));
    await add('checkpoint', source.note);
    for (const root of source.roots) await add(rootPath(root.version), root.bytes);
    for await (const { tile, bytes: bundle } of source.bundles(size)) {
      await add(entryBundlePath(tile), bundle);
    }
    tar.finalize();
    await written;
    const handle = await open(fsPath(temp), 'r');
    await handle.sync();
    await handle.close();
    await rename(fsPath(temp), fsPath(options.out));
    await syncDirectory(dirname(options.out));
  } catch (error) {
    tar.destroy();
    // A tar entry refused because the output failed ("already finalized or destroyed")
    // says nothing: the output's own error (no directory, disk full) is the cause.
    const failure =
      error instanceof VouchError
        ? error
        : await written.then(
            () => error,
            (cause) => cause,
          );
    await unlink(fsPath(temp)).catch(() => {});
    if (failure instanceof VouchError) throw failure;
    throw await writeFailure(options.out, failure);
  }
  return { out: options.out, origin, size, roots: source.roots.length, bytes };
}

async function stateSource(stateDir: string): Promise<SnapshotSource> {
  const state = await loadState(stateDir);
  if (!state) throw new VouchError('NO_TRUST_ROOT', `${stateDir} holds no trust state to export`);
  return {
    note: new Uint8Array(Buffer.from(state.note, 'utf8')),
    roots: state.chain,
    async *bundles() {
      let batch: Uint8Array[] = [];
      let count = 0;
      const flush = () => {
        const tile = { level: 0, index: Math.floor((count - 1) / fullWidth), width: batch.length };
        const bundle = { tile, bytes: encodeEntryBundle(batch) };
        batch = [];
        return bundle;
      };
      // Re-hashed on the way: only entries that give the verified root are exported.
      for await (const entry of verifiedEntries(state)) {
        count++;
        batch.push(entry);
        if (batch.length === fullWidth) yield flush();
      }
      if (batch.length > 0) yield flush();
    },
  };
}

/** A publisher's log directory, read through its published files like a file:// mirror. */
async function logSource(logDir: string, maxBundleBytes: number): Promise<SnapshotSource> {
  const published = join(logDir, 'public');
  const base = (await stat(fsPath(published)).catch(() => undefined))?.isDirectory()
    ? published
    : logDir;
  const mirror = openMirror(pathToFileURL(base).href, { timeoutMs: 0 });
  const note = await mirror.get('checkpoint', maxNoteSize);
  if (!note) throw new VouchError('LOG_INVALID', `${fileURLToPath(mirror.url)} has no checkpoint`);
  // Root files a publisher placed beside its tiles (roots/<V>.json), ascending.
  const versions = rootVersions(
    await readdir(fsPath(join(base, rootsDir))).catch(() => [] as string[]),
  );
  const roots: RootFile[] = [];
  for (const version of versions) {
    const bytes = await mirror.get(rootPath(version), maxEnvelopeBytes);
    if (bytes) roots.push({ version, bytes });
  }
  return {
    note,
    roots,
    async *bundles(size) {
      for (let index = 0; index * fullWidth < size; index++) {
        const tile = { level: 0, index, width: Math.min(fullWidth, size - index * fullWidth) };
        const path = entryBundlePath(tile);
        const bytes = await mirror.get(
          path,
          Math.min(maxBundleBytes, tile.width * (2 + maxEntrySize)),
        );
        if (!bytes) throw new VouchError('LOG_INVALID', `${base}: ${path} is missing`);
        yield { tile, bytes };
      }
    },
  };
}

/** `vouch snapshot import`: verifies a snapshot fully and applies it like a sync. */
export async function importSnapshot(options: {
  readonly file: string;
  readonly stateDir: string;
  readonly rootPath?: string | undefined;
  readonly maxBytes: number;
  readonly maxBundleBytes: number;
  readonly logger: Logger;
  readonly clock?: () => number;
}): Promise<Repaired<Applied & { readonly source: string }>> {
  // A regular file only: a FIFO would block the read, a device never end.
  const file = await openExistingFile(options.file, 'snapshot');
  const info = await file.stat().catch(async (error) => {
    await file.close();
    throw ioError('read snapshot', options.file, error);
  });
  const refusal =
    info.size > options.maxBytes
      ? new VouchError(
          'PAYLOAD_TOO_LARGE',
          `snapshot ${options.file} is over ${options.maxBytes} bytes`,
        )
      : await notATar(file, options.file, info.size);
  if (refusal) {
    await file.close();
    throw refusal;
  }
  return withState(options, 'import', options.file, [], async (local, now) => {
    // Root files the state lost may come back from the snapshot's own, read below.
    let trust =
      local && local.lostRoots.length > 0 ? undefined : await trustOf(local, options.rootPath);
    const ctx: Context = {
      dir: options.stateDir,
      source: options.file,
      now,
      logger: options.logger,
    };
    const reader = new SnapshotReader(file, options.file, info.size);
    try {
      const manifest = await reader.member(manifestName, maxManifestBytes);
      const declared = parseManifest(manifest);
      const noteBytes = await reader.member('checkpoint', maxNoteSize);
      const roots = new Map<number, Uint8Array>();
      for (;;) {
        const name = await reader.peek();
        const version = rootVersionOfPath(name ?? '');
        if (version === undefined) break;
        roots.set(version, await reader.member(name as string, maxEnvelopeBytes));
      }
      trust ??= await trustOf(
        local && (await restoreRoots(ctx, local, async (version) => roots.get(version))),
        options.rootPath,
      );
      const { root, newRoots } = await updateRoots(ctx, trust, async (v) => roots.get(v));
      const checkpoint = verifyCheckpointFrom(`the snapshot ${options.file}`, noteBytes, root);
      const { size, origin } = checkpoint.checkpoint;
      if (declared.size !== size || declared.origin !== origin) {
        throw invalid('vouch-snapshot.json does not describe its checkpoint');
      }
      const incoming: Incoming = {
        root,
        newRoots,
        checkpoint,
        note: Buffer.from(noteBytes).toString('utf8'),
      };
      await checkAgainstAnchor(ctx, trust.anchor, incoming);
      const applied =
        size === trust.held.size
          ? await commitUnchanged(ctx, trust, incoming)
          : await applyEntries(
              ctx,
              trust,
              incoming,
              reader.bundles(size, options.maxBundleBytes),
              0,
              () => {
                throw new VouchError(
                  'TILE_INVALID',
                  `${options.file}: the entries do not give the checkpoint's root`,
                );
              },
            );
      return { ...applied, source: options.file };
    } finally {
      reader.close();
    }
  }).finally(() => file.close());
}

/**
 * Why a file is no snapshot before reading it as one: a tar starts with a ustar header
 * (POSIX magic "ustar" at byte 257), so anything else — a text file, a log directory's
 * checkpoint — is told apart from a snapshot that was cut short.
 */
async function notATar(
  file: FileHandle,
  path: string,
  size: number,
): Promise<VouchError | undefined> {
  const header = Buffer.alloc(block);
  const { bytesRead } = await file.read(header, 0, block, 0).catch((error) => {
    throw ioError('read snapshot', path, error);
  });
  if (bytesRead === block && header.toString('latin1', 257, 262) === 'ustar') return undefined;
  const what =
    bytesRead < block
      ? `${size} bytes, too short for a tar file (a snapshot cut short, or no snapshot)`
      : 'not a tar file';
  return new VouchError('SNAPSHOT_INVALID', `${path} is not a vouch snapshot: ${what}`);
}

function invalid(message: string): VouchError {
  return new VouchError('SNAPSHOT_INVALID', `snapshot: ${message}`);
}

function parseManifest(bytes: Uint8Array): { origin: string; size: number } {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw invalid('vouch-snapshot.json is not JSON');
  }
  const manifest = value as { format?: unknown; origin?: unknown; size?: unknown };
  if (
    manifest?.format !== format ||
    typeof manifest.origin !== 'string' ||
    !Number.isSafeInteger(manifest.size)
  ) {
    throw invalid(`not a ${format} file`);
  }
  return { origin: manifest.origin, size: manifest.size as number };
}

/** Where a member's data starts in the tar file, and how long it is. */
interface MemberSpan {
  readonly name: string;
  readonly start: number;
  readonly size: number;
}

/** tar: a 512-byte header, then the data padded to whole 512-byte blocks (POSIX ustar). */
const block = 512;

/** The members of a snapshot tar, read one at a time in order, each under a cap. */
class SnapshotReader {
  readonly #members: AsyncIterator<TarEntry>;
  readonly #input: ReturnType<FileHandle['createReadStream']>;
  readonly #file: string;
  readonly #size: number;
  #peeked: TarEntry | undefined;
  #done = false;
  /** Where the next header starts (as the members we write are laid out: no extended headers). */
  #offset = 0;
  /** The member whose data is being read, and the last one read whole. */
  #current: MemberSpan | undefined;
  #last: string | undefined;

  /**
   * `handle` (of the file at `path`, named in errors) stays open: it is the caller's to
   * close. `size`: the file's, checked against the cap before.
   */
  constructor(handle: FileHandle, path: string, size: number) {
    const tar = extract();
    this.#file = path;
    this.#size = size;
    this.#input = handle.createReadStream({ end: size, autoClose: false });
    this.#input.on('error', (error) => tar.destroy(error));
    this.#input.pipe(tar);
    this.#members = tar[Symbol.asyncIterator]();
  }

  async #next(): Promise<TarEntry | undefined> {
    if (this.#peeked) {
      const entry = this.#peeked;
      this.#peeked = undefined;
      return entry;
    }
    if (this.#done) return undefined;
    try {
      const { value, done } = await this.#members.next();
      if (done) {
        this.#done = true;
        return undefined;
      }
      const start = this.#offset + block;
      const size = value.header.size ?? 0;
      this.#current = { name: value.header.name, start, size };
      this.#offset = start + Math.ceil(size / block) * block;
      return value;
    } catch (error) {
      throw (
        this.#endedEarly(error) ??
        new VouchError(
          'SNAPSHOT_INVALID',
          `snapshot: not a readable tar file: ${(error as Error).message}`,
          { cause: error },
        )
      );
    }
  }

  /**
   * A read that failed because the file ends before the member or header being read
   * (tar-stream says "Unexpected end of data" or "Stream was destroyed"), or in the
   * blocks that end a tar (a whole tar is whole blocks): the real cause, with where the
   * file ends. Undefined when the file is long enough, so something else failed.
   */
  #endedEarly(cause: unknown): VouchError | undefined {
    const current = this.#current;
    if (current && current.name !== this.#last && this.#size < current.start + current.size) {
      const into = Math.max(0, this.#size - current.start);
      return this.#truncated(`${into} bytes into ${current.name} (of ${current.size})`, cause);
    }
    if (this.#size < this.#offset + block || this.#size % block !== 0) {
      return this.#truncated(`at byte ${this.#size}`, cause);
    }
    return undefined;
  }

  #truncated(where: string, cause?: unknown): VouchError {
    const after = this.#last === undefined ? 'in the first member' : `after member ${this.#last}`;
    return new VouchError(
      'SNAPSHOT_INVALID',
      `snapshot ${this.#file} ends early: ${after}, ${where}; the file is truncated or was not fully copied`,
      { cause },
    );
  }

  /** The name of the next member, without reading it. */
  async peek(): Promise<string | undefined> {
    this.#peeked ??= await this.#next();
    return this.#peeked?.header.name;
  }

  /** The next member, which must be `name`, of at most `maxBytes`. */
  async member(name: string, maxBytes: number): Promise<Uint8Array> {
    const entry = await this.#next();
    if (!entry) throw this.#truncated(`where ${name} was expected`);
    if (entry.header.name !== name || entry.header.type !== 'file') {
      throw invalid(`expected ${name}, found ${entry.header.name}`);
    }
    if ((entry.header.size ?? 0) > maxBytes) throw invalid(`${name} is over ${maxBytes} bytes`);
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total > maxBytes) throw invalid(`${name} is over ${maxBytes} bytes`);
        chunks.push(chunk);
      }
    } catch (error) {
      if (error instanceof VouchError) throw error;
      throw this.#endedEarly(error) ?? invalid(`${name}: ${(error as Error).message}`);
    }
    this.#last = name;
    return new Uint8Array(Buffer.concat(chunks));
  }

  /** The entry bundles of a tree of `size`, then the end of the file. */
  async *bundles(size: number, maxBundleBytes: number): AsyncGenerator<Bundle> {
    for (let index = 0; index * fullWidth < size; index++) {
      const tile = { level: 0, index, width: Math.min(fullWidth, size - index * fullWidth) };
      const cap = Math.min(maxBundleBytes, tile.width * (2 + maxEntrySize));
      yield { tile, bytes: await this.member(entryBundlePath(tile), cap) };
    }
    const extra = await this.peek();
    if (extra !== undefined) throw invalid(`unexpected member ${extra} after the last bundle`);
  }

  close(): void {
    this.#input.destroy();
  }
}

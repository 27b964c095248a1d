import type { FileHandle } from 'node:fs/promises';
import { type ExtractEvents, extract } from 'tar-stream';
import { VouchError } from '../../core/errors';
import { snapshotBundles, snapshotInvalid } from '../../core/snapshot-format';
import { entryBundlePath, maxBundleBytes } from '../../core/tiles';
import { ioError } from '../../files';
import type { Bundle } from './apply';

/**
 * Reading a snapshot file (core/snapshot-format.ts) as the tar it is: its members one at a
 * time, in order, each under a cap, and a file that ends early told by where it ends.
 */

type TarEntry = ExtractEvents['entry'][1];

/** tar: a 512-byte header, then the data padded to whole 512-byte blocks (POSIX ustar). */
const block = 512;

/**
 * Why a file is no snapshot before reading it as one: a tar starts with a ustar header
 * (POSIX magic "ustar" at byte 257), so anything else — a text file, a log directory's
 * checkpoint — is told apart from a snapshot that was cut short.
 */
export async function notATar(
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

/** Where a member's data starts in the tar file, and how long it is. */
interface MemberSpan {
  readonly name: string;
  readonly start: number;
  readonly size: number;
}

/** The members of a snapshot tar, read one at a time in order, each under a cap. */
export class SnapshotReader {
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
      throw snapshotInvalid(`expected ${name}, found ${entry.header.name}`);
    }
    if ((entry.header.size ?? 0) > maxBytes)
      throw snapshotInvalid(`${name} is over ${maxBytes} bytes`);
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total > maxBytes) throw snapshotInvalid(`${name} is over ${maxBytes} bytes`);
        chunks.push(chunk);
      }
    } catch (error) {
      if (error instanceof VouchError) throw error;
      throw this.#endedEarly(error) ?? snapshotInvalid(`${name}: ${(error as Error).message}`);
    }
    this.#last = name;
    return new Uint8Array(Buffer.concat(chunks));
  }

  /** The entry bundles of a tree of `size`, then the end of the file. */
  async *bundles(size: number, bundleCap: number): AsyncGenerator<Bundle> {
    for (const tile of snapshotBundles(size)) {
      const cap = maxBundleBytes(tile.width, bundleCap);
      yield { tile, bytes: await this.member(entryBundlePath(tile), cap) };
    }
    const extra = await this.peek();
    if (extra !== undefined)
      throw snapshotInvalid(`unexpected member ${extra} after the last bundle`);
  }

  close(): void {
    this.#input.destroy();
  }
}

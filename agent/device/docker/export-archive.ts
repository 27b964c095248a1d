import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { finished } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';
import type { HashPool } from '../../content/pool';
import { VouchError } from '../../core/errors';
import type { ImageExport } from './export';
import {
  archivePath,
  type ExportContents,
  type ExportLayout,
  type Hashed,
  type Member,
} from './export-compare';

/**
 * The `docker save` archive walked as it streams, never written to disk: every file entry
 * hashed on the hash pool (a gzip one gunzipped, as its diff_id is the digest of the
 * uncompressed tar), links noted, the config and the small metadata files kept, and the
 * stream's tail kept to find an error dockerd wrote into it. Both export layouts are read:
 * the legacy one (`<id>/layer.tar`, `<config hex>.json`, Docker < 25) and the OCI image
 * layout (`blobs/sha256/<hex>`, `index.json`; Docker 25+). What the entries mean is
 * export-compare.ts's.
 */

export type ExportRead =
  | { readonly kind: 'read'; readonly contents: ExportContents }
  /** The stream or the archive broke off; `tail` is the stream's last bytes (latin1). */
  | {
      readonly kind: 'broken';
      readonly layout: ExportLayout;
      readonly tail: string;
      readonly failure: unknown;
    };

/** manifest.json, index.json, an image config: kilobytes, capped well above that. */
const maxMetadataBytes = 8 * 2 ** 20;
/** Bytes of the export's end kept to find an error dockerd wrote into the stream. */
const tailBytes = 64 * 1024;
const gzipMagic = [0x1f, 0x8b] as const;
const zstdMagic = [0x28, 0xb5, 0x2f, 0xfd] as const;

/** While reading, a file's digest is still coming. */
type Reading =
  | { readonly kind: 'file'; readonly digest: Promise<Hashed> }
  | { readonly kind: 'link'; readonly target: string };

/**
 * Reads the export of image `hex`, hashing on `pool`. A hash that fails (a gzip layer that
 * does not decompress) throws; so does metadata over its cap (BAD_DATA).
 */
export async function readExport(
  { body, release }: ImageExport,
  hex: string,
  pool: HashPool,
): Promise<ExportRead> {
  const extract = tarExtract({ highWaterMark: 2 ** 20 });
  const tail = new Tail(tailBytes);
  const feeding = feed(body, extract, tail);
  // Awaited below when the archive reads through; its error is the loop's otherwise.
  feeding.catch(nothing);
  const members = new Map<string, Reading>();
  const metadata = new Map<string, Buffer>();
  let config: { readonly path: string; readonly bytes: Buffer } | undefined;
  let oci = false;
  let failure: unknown;
  try {
    for await (const entry of extract) {
      const { type, linkname } = entry.header;
      const name = archivePath(entry.header.name);
      // Every entry is read through, in order, so that its memory can be reused.
      const data = released(entry as unknown as AsyncIterable<Uint8Array>, release);
      if (name === 'oci-layout' || name === 'index.json' || name.startsWith('blobs/')) oci = true;
      if ((type === 'symlink' || type === 'link') && linkname) {
        // A symlink is relative to its directory; a hard link names a path in the archive.
        const target = type === 'symlink' ? posix.join(posix.dirname(name), linkname) : linkname;
        members.set(name, { kind: 'link', target: archivePath(target) });
        await drain(data.chunks);
      } else if (type !== 'file') {
        await drain(data.chunks);
      } else if (name === `${hex}.json` || name === `blobs/sha256/${hex}`) {
        config = { path: name, bytes: await collect(data.chunks, name) };
      } else if (name === 'manifest.json' || name === 'index.json') {
        metadata.set(name, await collect(data.chunks, name));
      } else if (
        /(^|\/)(json|VERSION)$/.test(name) ||
        name === 'oci-layout' ||
        name === 'repositories'
      ) {
        await drain(data.chunks);
      } else {
        const digest = hashEntry(data.chunks, pool);
        // A failed hash leaves its entry unread: stop the parser instead of waiting on it.
        digest.catch((error: unknown) => extract.destroy(error as Error));
        members.set(name, { kind: 'file', digest });
        // The next entry once this one's bytes are all with the pool, which may still be
        // hashing them: one layer hashed while the next is read.
        await Promise.race([data.pulled, digest.then(nothing, nothing)]);
      }
    }
    await feeding;
  } catch (error) {
    failure = error;
  }
  const digests = [...members.values()].flatMap((m) => (m.kind === 'file' ? [m.digest] : []));
  const settled = await Promise.allSettled(digests);
  const layout = oci ? 'oci' : 'docker';
  if (failure !== undefined) return { kind: 'broken', layout, tail: tail.text(), failure };
  const broken = settled.find((result) => result.status === 'rejected');
  if (broken) throw broken.reason;
  const hashed = new Map<string, Member>();
  for (const [name, member] of members) {
    hashed.set(
      name,
      member.kind === 'file' ? { kind: 'file', hashed: await member.digest } : member,
    );
  }
  return { kind: 'read', contents: { layout, config, metadata, members: hashed } };
}

/** Hashes one entry on the pool; a gzip entry gunzipped (streaming), as diff_ids are. */
async function hashEntry(entry: AsyncIterable<Uint8Array>, pool: HashPool): Promise<Hashed> {
  const iterator = entry[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done) {
    const sha256 = createHash('sha256').digest('hex');
    return { sha256, bytes: 0, gunzipped: false, zstd: false };
  }
  const head = first.value as Uint8Array;
  const rest = { [Symbol.asyncIterator]: () => iterator };
  const whole = prepend(head, rest);
  const starts = (magic: readonly number[]) => magic.every((byte, i) => head[i] === byte);
  if (starts(gzipMagic)) {
    const gunzip = createGunzip();
    const feeding = (async () => {
      // Each chunk is with zlib before the next is asked for (and this one released).
      for await (const chunk of whole) {
        await new Promise<void>((ok, fail) => {
          gunzip.write(chunk, (error) => (error ? fail(error) : ok()));
        });
      }
      gunzip.end();
    })();
    feeding.catch((error: unknown) => gunzip.destroy(error as Error));
    const digest = await pool.hash(gunzip).catch((error: unknown) => {
      throw new VouchError(
        'BAD_DATA',
        `a gzip layer does not decompress: ${(error as Error).message}`,
        { cause: error },
      );
    });
    await feeding;
    return { sha256: digest.sha256, bytes: digest.size, gunzipped: true, zstd: false };
  }
  const digest = await pool.hash(whole);
  return { sha256: digest.sha256, bytes: digest.size, gunzipped: false, zstd: starts(zstdMagic) };
}

const nothing = () => undefined;

/**
 * An entry's bytes, each released (ImageExport.release) once the reader asks for the next:
 * by then it has copied it (the hash pool copies into its own buffers). `pulled` settles
 * when the reader is done with the entry.
 */
function released(
  entry: AsyncIterable<Uint8Array>,
  release: (chunk: Uint8Array) => void,
): { readonly chunks: AsyncIterable<Uint8Array>; readonly pulled: Promise<void> } {
  let done: () => void = nothing;
  const pulled = new Promise<void>((resolve) => {
    done = resolve;
  });
  async function* chunks(): AsyncGenerator<Uint8Array> {
    let last: Uint8Array | undefined;
    try {
      for await (const chunk of entry) {
        if (last) release(last);
        last = chunk;
        yield chunk;
      }
      if (last) release(last);
    } finally {
      done();
    }
  }
  return { chunks: chunks(), pulled };
}

async function drain(chunks: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of chunks) {
    // Read and released; nothing to keep.
  }
}

async function* prepend(
  head: Uint8Array,
  rest: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  yield head;
  yield* rest;
}

/** Reads a small entry whole, refusing one over the metadata cap. */
async function collect(entry: AsyncIterable<Uint8Array>, name: string): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of entry) {
    size += chunk.length;
    if (size > maxMetadataBytes) {
      throw new VouchError('BAD_DATA', `${name} in the export is over ${maxMetadataBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Copies the export into the tar parser, keeping its tail; backpressure both ways. */
function feed(
  body: NodeJS.ReadableStream,
  extract: ReturnType<typeof tarExtract>,
  tail: Tail,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const resume = () => {
      extract.off('drain', resume);
      body.resume();
    };
    body.on('data', (chunk: Buffer) => {
      tail.push(chunk);
      if (!extract.write(chunk)) {
        body.pause();
        extract.on('drain', resume);
      }
    });
    // finished() also reports a body that failed before these listeners were added.
    finished(body, (error) => {
      if (error) {
        extract.destroy(error);
        reject(error);
      } else {
        // streamx's typings ask for a last chunk; undefined is none.
        extract.end(undefined);
        resolve();
      }
    });
    // The parser stopped early (a hash failed, a bad archive): nothing more to feed.
    extract.on('close', () => resolve());
  });
}

/**
 * The last `limit` bytes of a stream, copied into a ring of its own: the stream's buffers
 * are reused (export.ts), and the tail is read after the stream failed.
 */
class Tail {
  readonly #ring: Buffer;
  /** Bytes pushed so far. */
  #total = 0;

  constructor(readonly limit: number) {
    this.#ring = Buffer.alloc(limit);
  }

  push(chunk: Buffer): void {
    const bytes = chunk.subarray(Math.max(0, chunk.length - this.limit));
    let at = (this.#total + chunk.length - bytes.length) % this.limit;
    for (let from = 0; from < bytes.length; ) {
      const n = Math.min(bytes.length - from, this.limit - at);
      bytes.copy(this.#ring, at, from, from + n);
      from += n;
      at = (at + n) % this.limit;
    }
    this.#total += chunk.length;
  }

  text(): string {
    const size = Math.min(this.#total, this.limit);
    const end = this.#total % this.limit;
    const ordered =
      size < this.limit
        ? this.#ring.subarray(0, size)
        : Buffer.concat([this.#ring.subarray(end), this.#ring.subarray(0, end)]);
    return ordered.toString('latin1');
  }
}

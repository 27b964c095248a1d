import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { finished } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type Docker from 'dockerode';
import { extract as tarExtract } from 'tar-stream';
import { z } from 'zod';
import { dockerError } from '../../content/docker';
import { VouchError } from '../../core/errors';
import { describeIssues, parseJson } from '../../core/json';
import { type HashPool, plannedPool } from '../verify/pool';
import { exportImage, type ImageExport } from './export';

/**
 * `vouch verify image --deep`: export the image as Docker would hand it to anyone
 * (`docker save`, streamed, never written to disk), hash its config and every layer on the
 * hash pool, and check them against the image ID: the config's SHA-256 is the ID, and each
 * layer's uncompressed tar has the SHA-256 the config lists in `rootfs.diff_ids` (OCI image
 * spec, config.md "rootfs"; Docker image spec v1.2 "Image JSON"). So what Docker would run
 * is the image the statements name.
 *
 * Both export layouts are read: the legacy one (`<id>/layer.tar`, `<config hex>.json`,
 * Docker < 25) and the OCI image layout (`blobs/sha256/<hex>`, `index.json`; Docker 25+).
 * Both carry `manifest.json` (Docker's `docker load` manifest) naming the config and the
 * layers in diff_ids order. A gzip-compressed layer (an OCI export of a containerd image
 * store) is hashed gunzipped, as its diff_id is the digest of the uncompressed tar.
 *
 * dockerd rebuilds each layer tar from its tar-split metadata and the files on disk, and
 * stops with `file integrity checksum failed for "<file>"` when a file's content differs
 * from what the layer recorded, `open <layer dir>/<file>: no such file or directory` when
 * a recorded file with content is gone (tar-split skips empty ones, so their loss goes
 * unseen here: tree.ts sees it), or `could not verify layer data for: <diff_id>` when the
 * rebuilt tar does not hash to the diff_id: those are the same finding as a mismatch here.
 */

export interface DeepLayer {
  /** The config's diff_id for this layer (`sha256:<hex>`). */
  readonly diffId: string;
  /** Uncompressed bytes hashed. */
  readonly bytes: number;
}

export interface DeepCheck {
  /** The export's config and every layer match the image ID. */
  readonly matches: boolean;
  readonly layout: 'docker' | 'oci';
  /** In diff_ids order, as far as they were read. */
  readonly layers: readonly DeepLayer[];
  /** What does not match, when `matches` is false. */
  readonly mismatch: string | null;
}

/** manifest.json, index.json, an image config: kilobytes, capped well above that. */
const maxMetadataBytes = 8 * 2 ** 20;
/** Bytes of the export's end kept to find an error dockerd wrote into the stream. */
const tailBytes = 64 * 1024;
const gzipMagic = [0x1f, 0x8b] as const;
const zstdMagic = [0x28, 0xb5, 0x2f, 0xfd] as const;
/**
 * dockerd's export errors that are findings, not failures: a file whose content differs
 * from the layer's tar-split record (pkg/tarsplit), a file of the record missing from the
 * layer's directory in the vfs or overlay2 storage (it cannot be read to rebuild the tar),
 * and a layer whose rebuilt tar does not hash to its diff_id (layer store
 * "verifiedReadCloser").
 */
const integrityFailure = new RegExp(
  [
    /file integrity checksum failed for "(?:[^"\\]|\\.){0,4096}"/.source,
    // Only a layer's own directory; the error's end, so a name cannot smuggle the words in.
    /open \/[^\n]{0,4096}?\/(?:vfs\/dir\/[0-9a-f]{64}|overlay2\/[0-9a-f]{64}\/diff)\/[^\n]{0,4096}?: no such file or directory(?=["\s]|$)/
      .source,
    /could not verify layer data for: sha256:[0-9a-f]{64}/.source,
  ].join('|'),
);

const manifestSchema = z
  .array(z.looseObject({ Config: z.string().max(4096), Layers: z.array(z.string().max(4096)) }))
  .max(4096);
const configSchema = z.looseObject({
  rootfs: z.looseObject({
    type: z.literal('layers'),
    diff_ids: z.array(z.string().regex(/^sha256:[0-9a-f]{64}$/)).max(65_536),
  }),
});

/** What the export holds at one path: a hashed file, or a link to another path. */
type Member =
  | { readonly kind: 'file'; readonly digest: Promise<Hashed> }
  | { readonly kind: 'link'; readonly target: string };

interface Hashed {
  readonly sha256: string;
  readonly bytes: number;
  /** The entry was gzip: `sha256` is of the gunzipped bytes. */
  readonly gunzipped: boolean;
  readonly zstd: boolean;
}

/**
 * Exports image `id` (`sha256:<hex>`) and compares it with its ID. A mismatch is a result
 * (`matches: false`); a daemon that cannot be reached or an export that breaks off for
 * another reason is UNAVAILABLE, an export that is not a Docker image archive BAD_DATA.
 */
export async function deepCheck(docker: Docker, id: string, pool?: HashPool): Promise<DeepCheck> {
  const hex = /^sha256:([0-9a-f]{64})$/.exec(id)?.[1];
  if (!hex) throw new VouchError('BAD_DATA', `not an image ID: ${id}`);
  let exported: ImageExport;
  try {
    exported = await exportImage(docker, id);
  } catch (error) {
    // dockerd < 25 assembles the export before it answers: the check fails as an HTTP error.
    const found = integrityFailure.exec((error as Error).message ?? '');
    if (found) return { matches: false, layout: 'docker', layers: [], mismatch: found[0] };
    throw dockerError(error, `cannot export image ${id} from Docker`, id);
  }
  const ownPool = pool ? undefined : await deepPool();
  try {
    return await readExport(exported, hex, pool ?? (ownPool as HashPool));
  } finally {
    (exported.body as NodeJS.ReadableStream & { destroy(): void }).destroy();
    await ownPool?.close();
  }
}

/** A pool for exports: hashing one layer while the next is read needs two workers. */
export function deepPool(): Promise<HashPool> {
  return plannedPool([], { minWorkers: 2 });
}

async function readExport(
  { body, release }: ImageExport,
  hex: string,
  pool: HashPool,
): Promise<DeepCheck> {
  const extract = tarExtract({ highWaterMark: 2 ** 20 });
  const tail = new Tail(tailBytes);
  const feeding = feed(body, extract, tail);
  // Awaited below when the archive reads through; its error is the loop's otherwise.
  feeding.catch(nothing);
  const members = new Map<string, Member>();
  const metadata = new Map<string, Buffer>();
  let config: { readonly path: string; readonly bytes: Buffer } | undefined;
  let oci = false;
  let failure: unknown;
  try {
    for await (const entry of extract) {
      const { type, linkname } = entry.header;
      const name = clean(entry.header.name);
      // Every entry is read through, in order, so that its memory can be reused.
      const data = released(entry as unknown as AsyncIterable<Uint8Array>, release);
      if (name === 'oci-layout' || name === 'index.json' || name.startsWith('blobs/')) oci = true;
      if ((type === 'symlink' || type === 'link') && linkname) {
        // A symlink is relative to its directory; a hard link names a path in the archive.
        const target = type === 'symlink' ? posix.join(posix.dirname(name), linkname) : linkname;
        members.set(name, { kind: 'link', target: clean(target) });
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
  if (failure !== undefined) {
    // dockerd 25+ streams as it assembles: its error comes as JSON after the partial tar.
    const said = daemonMessage(tail.text());
    const found = said === undefined ? null : integrityFailure.exec(said);
    if (found) return { matches: false, layout, layers: [], mismatch: found[0] };
    if (failure instanceof VouchError) throw failure;
    throw new VouchError(
      'UNAVAILABLE',
      `docker save broke off: ${said ?? (failure as Error).message}`,
      { cause: failure },
    );
  }
  const broken = settled.find((result) => result.status === 'rejected');
  if (broken) throw broken.reason;
  return compare(hex, layout, config, metadata, members);
}

async function compare(
  hex: string,
  layout: 'docker' | 'oci',
  config: { readonly path: string; readonly bytes: Buffer } | undefined,
  metadata: ReadonlyMap<string, Buffer>,
  members: ReadonlyMap<string, Member>,
): Promise<DeepCheck> {
  const result = (layers: DeepLayer[], mismatch: string | null): DeepCheck => ({
    matches: mismatch === null,
    layout,
    layers,
    mismatch,
  });
  if (!config) return result([], `the export has no config ${hex.slice(0, 12)}`);
  const configDigest = createHash('sha256').update(config.bytes).digest('hex');
  if (configDigest !== hex) return result([], `config ${config.path} has sha256:${configDigest}`);
  const manifestBytes = metadata.get('manifest.json');
  if (!manifestBytes) throw new VouchError('BAD_DATA', 'docker save gave no manifest.json');
  const manifest = parseShape(manifestBytes, manifestSchema, 'docker save manifest.json');
  const entry = manifest.find((item) => clean(item.Config) === config.path);
  if (!entry) throw new VouchError('BAD_DATA', `manifest.json does not list ${config.path}`);
  const diffIds = parseShape(config.bytes, configSchema, `image config ${hex.slice(0, 12)}`).rootfs
    .diff_ids;
  if (entry.Layers.length !== diffIds.length) {
    return result(
      [],
      `manifest.json lists ${entry.Layers.length} layers, the config ${diffIds.length}`,
    );
  }
  const layers: DeepLayer[] = [];
  for (const [i, path] of entry.Layers.entries()) {
    const diffId = diffIds[i] as string;
    const member = resolve(members, clean(path));
    if (!member) return result(layers, `layer ${i + 1} (${path}) is missing from the export`);
    const hashed = await member.digest;
    if (hashed.zstd) {
      throw new VouchError(
        'BAD_DATA',
        `layer ${i + 1} (${path}) is zstd-compressed: not supported`,
      );
    }
    layers.push({ diffId, bytes: hashed.bytes });
    if (`sha256:${hashed.sha256}` !== diffId) {
      return result(
        layers,
        `layer ${i + 1} of ${diffIds.length} (${path}) has sha256:${hashed.sha256}, the image ID's config lists ${diffId}`,
      );
    }
  }
  // In the OCI layout a blob's name is its digest (OCI image-layout "Blobs"); an
  // uncompressed layer blob was hashed as it is stored.
  for (const [name, member] of members) {
    const named = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name)?.[1];
    if (!named || member.kind !== 'file') continue;
    const hashed = await member.digest;
    if (!hashed.gunzipped && !hashed.zstd && hashed.sha256 !== named) {
      return result(layers, `blob ${name} has sha256:${hashed.sha256}`);
    }
  }
  return result(layers, null);
}

function parseShape<T>(bytes: Uint8Array, schema: z.ZodType<T>, what: string): T {
  const parsed = schema.safeParse(parseJson(bytes, 'BAD_DATA', what));
  if (!parsed.success) throw new VouchError('BAD_DATA', `${what}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** A path's member, following links (a bounded number, in case they loop). */
function resolve(members: ReadonlyMap<string, Member>, path: string) {
  let member = members.get(path);
  for (let hops = 0; member?.kind === 'link' && hops < 16; hops++) {
    member = members.get(member.target);
  }
  return member?.kind === 'file' ? member : undefined;
}

/** An archive path without `./` or trailing `/`. */
function clean(path: string): string {
  return posix
    .normalize(path)
    .replace(/^(\.\/)+/, '')
    .replace(/\/$/, '');
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
 * The error dockerd wrote into the stream, if any: its JSON message
 * (`{"errorDetail":{"message":…},"error":…}`, pkg/streamformatter) near the end.
 */
function daemonMessage(tail: string): string | undefined {
  const literal = /\{"errorDetail":\{"message":("(?:[^"\\]|\\.){0,4096}")/.exec(tail)?.[1];
  if (literal === undefined) return undefined;
  try {
    return JSON.parse(literal) as string;
  } catch {
    return undefined;
  }
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

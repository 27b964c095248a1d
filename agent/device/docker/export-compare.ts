import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { z } from 'zod';
import { VouchError } from '../../core/errors';
import { describeIssues, parseJson } from '../../core/json';

/**
 * What a `docker save` archive held (export-archive.ts reads it) compared with the image ID,
 * without I/O: the config's SHA-256 is the ID, and each layer's uncompressed tar has the
 * SHA-256 the config lists in `rootfs.diff_ids` (OCI image spec, config.md "rootfs"; Docker
 * image spec v1.2 "Image JSON"). `manifest.json` (Docker's `docker load` manifest, in both
 * layouts) names the config and the layers in diff_ids order.
 */

export interface DeepLayer {
  /** The config's diff_id for this layer (`sha256:<hex>`). */
  readonly diffId: string;
  /** Uncompressed bytes hashed. */
  readonly bytes: number;
}

export type ExportLayout = 'docker' | 'oci';

export interface DeepCheck {
  /** The export's config and every layer match the image ID. */
  readonly matches: boolean;
  readonly layout: ExportLayout;
  /** In diff_ids order, as far as they were read. */
  readonly layers: readonly DeepLayer[];
  /** What does not match, when `matches` is false. */
  readonly mismatch: string | null;
}

/** An archive entry's content as hashed. */
export interface Hashed {
  readonly sha256: string;
  readonly bytes: number;
  /** The entry was gzip: `sha256` is of the gunzipped bytes. */
  readonly gunzipped: boolean;
  readonly zstd: boolean;
}

/** What the export holds at one path: a hashed file, or a link to another path. */
export type Member =
  | { readonly kind: 'file'; readonly hashed: Hashed }
  | { readonly kind: 'link'; readonly target: string };

export interface ExportContents {
  readonly layout: ExportLayout;
  /** The entry named by the image ID (`<hex>.json`, `blobs/sha256/<hex>`), if there was one. */
  readonly config: { readonly path: string; readonly bytes: Buffer } | undefined;
  /** `manifest.json` and `index.json`, as far as present. */
  readonly metadata: ReadonlyMap<string, Buffer>;
  /** Every other file and link, by archive path. */
  readonly members: ReadonlyMap<string, Member>;
}

const manifestSchema = z
  .array(z.looseObject({ Config: z.string().max(4096), Layers: z.array(z.string().max(4096)) }))
  .max(4096);
const configSchema = z.looseObject({
  rootfs: z.looseObject({
    type: z.literal('layers'),
    diff_ids: z.array(z.string().regex(/^sha256:[0-9a-f]{64}$/)).max(65_536),
  }),
});

/**
 * Compares the export of image `hex` with its ID. A difference is a result (`matches:
 * false`); an archive that is not a Docker image archive is BAD_DATA, and so is a zstd
 * layer, which cannot be read here (never UNTRUSTED for that).
 */
export function compareExport(
  hex: string,
  { layout, config, metadata, members }: ExportContents,
): DeepCheck {
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
  const entry = manifest.find((item) => archivePath(item.Config) === config.path);
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
    const member = resolve(members, archivePath(path));
    if (!member) return result(layers, `layer ${i + 1} (${path}) is missing from the export`);
    const { hashed } = member;
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
    const { hashed } = member;
    if (!hashed.gunzipped && !hashed.zstd && hashed.sha256 !== named) {
      return result(layers, `blob ${name} has sha256:${hashed.sha256}`);
    }
  }
  return result(layers, null);
}

/** An archive path without `./` or trailing `/`. */
export function archivePath(path: string): string {
  return posix
    .normalize(path)
    .replace(/^(\.\/)+/, '')
    .replace(/\/$/, '');
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

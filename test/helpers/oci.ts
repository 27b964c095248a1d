import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import type Docker from 'dockerode';
import { type ArchiveEntry, tarOf } from '../../scripts/lib/tar';

export { type ArchiveEntry, tarOf };

/**
 * Image archives made in the test, in the two layouts `docker save` writes and `docker
 * load` reads: the legacy one (`<id>/layer.tar`, `<config hex>.json`, Docker < 25) and the
 * OCI image layout Docker 25+ writes (`blobs/sha256/…`, `index.json`, `oci-layout`, and
 * `manifest.json` beside them). Entries are kept as a list, so a test can alter, drop or
 * reorder them before packing.
 */

export interface ImageArchive {
  readonly entries: ArchiveEntry[];
  /** `sha256:<hex>` of the config. */
  readonly id: string;
  readonly diffIds: readonly string[];
  /** Per layer, the entry name that holds it. */
  readonly layerPaths: readonly string[];
}

export type LayerMember = string | { readonly link: string } | { readonly hardlink: string };

export interface ArchiveOptions {
  /** Per layer: path in the image → content, or a symbolic or hard link; or a layer tar. */
  readonly layers: readonly (Readonly<Record<string, LayerMember>> | Uint8Array)[];
  readonly layout: 'docker' | 'oci';
  /** OCI layout only: store layers gzip-compressed (as a containerd image store exports). */
  readonly gzip?: boolean;
  readonly repoTag?: string;
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

export async function imageArchive(options: ArchiveOptions): Promise<ImageArchive> {
  const layerTars = await Promise.all(
    options.layers.map((files) =>
      files instanceof Uint8Array
        ? Buffer.from(files)
        : tarOf(
            Object.entries(files).map(([name, member]) =>
              typeof member === 'string'
                ? { name, data: Buffer.from(member) }
                : { name, ...member },
            ),
          ),
    ),
  );
  const diffIds = layerTars.map((tar) => `sha256:${sha256(tar)}`);
  const config = json({
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map(() => ({ created_by: 'test' })),
  });
  const idHex = sha256(config);
  const repoTags = options.repoTag ? [options.repoTag] : null;
  const entries: ArchiveEntry[] = [];
  const layerPaths: string[] = [];
  if (options.layout === 'docker') {
    for (const [i, tar] of layerTars.entries()) {
      const dir = sha256(Buffer.from(`${idHex} layer ${i}`));
      entries.push(
        { name: `${dir}/VERSION`, data: Buffer.from('1.0') },
        { name: `${dir}/json`, data: json({ id: dir }) },
        { name: `${dir}/layer.tar`, data: tar },
      );
      layerPaths.push(`${dir}/layer.tar`);
    }
    entries.push({ name: `${idHex}.json`, data: config });
  } else {
    const blobs = layerTars.map((tar) => (options.gzip ? gzipSync(tar) : tar));
    for (const blob of blobs) {
      const path = `blobs/sha256/${sha256(blob)}`;
      entries.push({ name: path, data: blob });
      layerPaths.push(path);
    }
    entries.push({ name: `blobs/sha256/${idHex}`, data: config });
    const mediaType = `application/vnd.oci.image.layer.v1.tar${options.gzip ? '+gzip' : ''}`;
    const manifest = json({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: `sha256:${idHex}`,
        size: config.length,
      },
      layers: blobs.map((blob) => ({
        mediaType,
        digest: `sha256:${sha256(blob)}`,
        size: blob.length,
      })),
    });
    entries.push(
      { name: `blobs/sha256/${sha256(manifest)}`, data: manifest },
      {
        name: 'index.json',
        data: json({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [
            {
              mediaType: 'application/vnd.oci.image.manifest.v1+json',
              digest: `sha256:${sha256(manifest)}`,
              size: manifest.length,
              ...(options.repoTag && {
                annotations: { 'io.containerd.image.name': options.repoTag },
              }),
            },
          ],
        }),
      },
      { name: 'oci-layout', data: json({ imageLayoutVersion: '1.0.0' }) },
    );
  }
  const configPath = options.layout === 'docker' ? `${idHex}.json` : `blobs/sha256/${idHex}`;
  entries.push({
    name: 'manifest.json',
    data: json([{ Config: configPath, RepoTags: repoTags, Layers: layerPaths }]),
  });
  return { entries, id: `sha256:${idHex}`, diffIds, layerPaths };
}

/** A Docker client whose `getImage(…).get()` streams `body` (in 64 KiB chunks) or fails. */
export function exportingDocker(body: Uint8Array | AsyncIterable<Uint8Array> | Error): Docker {
  return {
    getImage: () => ({
      get: async () => {
        if (body instanceof Error) throw body;
        if (!(body instanceof Uint8Array)) return Readable.from(body);
        const chunks: Uint8Array[] = [];
        for (let at = 0; at < body.length; at += 65_536)
          chunks.push(body.subarray(at, at + 65_536));
        return Readable.from(chunks);
      },
    }),
  } as unknown as Docker;
}

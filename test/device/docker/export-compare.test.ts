import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareExport,
  type ExportContents,
  type Hashed,
  type Member,
} from '../../../agent/device/docker/export-compare';
import { expectVouchError } from '../../helpers/errors';

/**
 * The comparison of what an export held with the image ID, on archives described as data:
 * no tar, no dockerd, no hashing of layers (their digests are given).
 */

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');
const hex = (n: number) => sha256(`layer ${n}`);
const file = (sha: string, extra: Partial<Hashed> = {}): Member => ({
  kind: 'file',
  hashed: { sha256: sha, bytes: 2048, gunzipped: false, zstd: false, ...extra },
});

/** A consistent legacy export of layers with these digests, and the image ID it has. */
function legacy(digests: readonly string[]): { id: string; contents: ExportContents } {
  const config = Buffer.from(
    JSON.stringify({ rootfs: { type: 'layers', diff_ids: digests.map((d) => `sha256:${d}`) } }),
  );
  const id = sha256(config);
  const layers = digests.map((_, i) => `l${i}/layer.tar`);
  return {
    id,
    contents: {
      layout: 'docker',
      config: { path: `${id}.json`, bytes: config },
      metadata: new Map([
        ['manifest.json', Buffer.from(JSON.stringify([{ Config: `${id}.json`, Layers: layers }]))],
      ]),
      members: new Map(layers.map((path, i) => [path, file(digests[i] as string)])),
    },
  };
}

/** `contents` with `members` changed as `edit` says. */
function edited(
  contents: ExportContents,
  edit: (members: Map<string, Member>) => void,
): ExportContents {
  const members = new Map(contents.members);
  edit(members);
  return { ...contents, members };
}

describe('compareExport', () => {
  const digests = [hex(1), hex(2), hex(3)];
  const { id, contents } = legacy(digests);

  it('matches an export whose config is the ID and whose layers are its diff_ids', () => {
    expect(compareExport(id, contents)).toEqual({
      matches: true,
      layout: 'docker',
      layers: digests.map((d) => ({ diffId: `sha256:${d}`, bytes: 2048 })),
      mismatch: null,
    });
  });

  it('finds every layer of any image, and the first one altered (property)', () => {
    const digest = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => sha256(b));
    fc.assert(
      fc.property(
        fc.array(digest, { minLength: 1, maxLength: 12 }),
        fc.nat(),
        (layerDigests, pick) => {
          const image = legacy(layerDigests);
          expect(compareExport(image.id, image.contents).matches).toBe(true);
          const altered = pick % layerDigests.length;
          const wrong = edited(image.contents, (members) =>
            members.set(`l${altered}/layer.tar`, file(sha256('other'))),
          );
          const result = compareExport(image.id, wrong);
          expect(result.matches).toBe(false);
          // The layers before it were compared, and matched.
          expect(result.layers).toHaveLength(altered + 1);
          expect(result.mismatch).toBe(
            `layer ${altered + 1} of ${layerDigests.length} (l${altered}/layer.tar) has sha256:${sha256('other')}, the image ID's config lists sha256:${layerDigests[altered]}`,
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('finds a config that is missing or is not the ID', () => {
    expect(compareExport(id, { ...contents, config: undefined }).mismatch).toBe(
      `the export has no config ${id.slice(0, 12)}`,
    );
    const other = { path: `${id}.json`, bytes: Buffer.from('{}') };
    expect(compareExport(id, { ...contents, config: other }).mismatch).toBe(
      `config ${id}.json has sha256:${sha256('{}')}`,
    );
  });

  it('finds a layer missing, or a count that differs from the config', () => {
    const without = edited(contents, (members) => members.delete('l2/layer.tar'));
    expect(compareExport(id, without)).toMatchObject({
      matches: false,
      layers: [{}, {}],
      mismatch: 'layer 3 (l2/layer.tar) is missing from the export',
    });
    const manifest = JSON.stringify([
      { Config: `./${id}.json`, Layers: ['l0/layer.tar', 'l1/layer.tar'] },
    ]);
    const shorter = { ...contents, metadata: new Map([['manifest.json', Buffer.from(manifest)]]) };
    expect(compareExport(id, shorter).mismatch).toBe('manifest.json lists 2 layers, the config 3');
  });

  it('follows links to a layer, a bounded number of hops', () => {
    const linked = edited(contents, (members) => {
      members.set('blob', members.get('l1/layer.tar') as Member);
      members.set('hop', { kind: 'link', target: 'blob' });
      members.set('l1/layer.tar', { kind: 'link', target: 'hop' });
    });
    expect(compareExport(id, linked).matches).toBe(true);
    const looping = edited(contents, (members) => {
      members.set('l1/layer.tar', { kind: 'link', target: 'loop' });
      members.set('loop', { kind: 'link', target: 'l1/layer.tar' });
    });
    expect(compareExport(id, looping).mismatch).toBe(
      'layer 2 (l1/layer.tar) is missing from the export',
    );
  });

  it('finds an OCI blob whose content is not its name, unless it was gunzipped', () => {
    const blob = `blobs/sha256/${hex(9)}`;
    const oci = (member: Member) =>
      edited({ ...contents, layout: 'oci' }, (members) => members.set(blob, member));
    expect(compareExport(id, oci(file(hex(9)))).matches).toBe(true);
    expect(compareExport(id, oci(file(hex(8)))).mismatch).toBe(`blob ${blob} has sha256:${hex(8)}`);
    expect(compareExport(id, oci(file(hex(8), { gunzipped: true }))).matches).toBe(true);
  });

  it('refuses what is not a Docker image archive, and a zstd layer, as BAD_DATA', () => {
    const metadata = (manifest: string) => ({
      ...contents,
      metadata: new Map([['manifest.json', Buffer.from(manifest)]]),
    });
    for (const [bad, message] of [
      [{ ...contents, metadata: new Map() }, /^docker save gave no manifest\.json$/],
      [metadata('[{"Config": 1}]'), /^docker save manifest\.json: 0\.Config: /],
      [metadata('not json'), /docker save manifest\.json/],
      [metadata('[{"Config": "other.json", "Layers": []}]'), /does not list /],
      [
        edited(contents, (members) => members.set('l0/layer.tar', file(hex(1), { zstd: true }))),
        /^layer 1 \(l0\/layer\.tar\) is zstd-compressed: not supported$/,
      ],
    ] as const) {
      expect(expectVouchError(() => compareExport(id, bad), 'BAD_DATA').message).toMatch(message);
    }
    const config = Buffer.from('{"rootfs":{"type":"layers","diff_ids":["md5:x"]}}');
    const badConfig = legacy([]);
    const withConfig: ExportContents = {
      ...badConfig.contents,
      config: { path: `${sha256(config)}.json`, bytes: config },
      metadata: new Map([
        [
          'manifest.json',
          Buffer.from(JSON.stringify([{ Config: `${sha256(config)}.json`, Layers: [] }])),
        ],
      ]),
    };
    expectVouchError(() => compareExport(sha256(config), withConfig), 'BAD_DATA');
  });
});

import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { HashPool } from '../../../agent/content/pool';
import { deepCheck } from '../../../agent/device/docker/deep';
import { rejectsWith } from '../../helpers/errors';
import { exportingDocker, imageArchive, tarOf } from '../../helpers/oci';

const pool = new HashPool({ workers: 2, chunkSize: 2 ** 20, inFlightBytes: 8 * 2 ** 20 });
afterAll(() => pool.close());

const layers: Record<string, string>[] = [
  { 'a.txt': 'one' },
  { 'b.txt': 'two', 'dir/c.txt': 'three' },
  { 'd.txt': 'four' },
];
const check = async (body: Parameters<typeof exportingDocker>[0], id: string) =>
  deepCheck(exportingDocker(body), id, pool);

describe('deepCheck: intact exports', () => {
  for (const [layout, gzip] of [
    ['docker', false],
    ['oci', false],
    ['oci', true],
  ] as const) {
    it(`matches the image ID: ${layout} layout${gzip ? ', gzip layers' : ''}`, async () => {
      const archive = await imageArchive({ layers, layout, gzip, repoTag: 'x/y:1' });
      const result = await check(await tarOf(archive.entries), archive.id);
      expect(result).toEqual({
        matches: true,
        layout,
        // Uncompressed sizes: a layer tar of one or two small files.
        layers: archive.diffIds.map((diffId, i) => ({ diffId, bytes: i === 1 ? 3072 : 2048 })),
        mismatch: null,
      });
    });
  }

  it('follows a layer that is a symlink to a blob (legacy paths beside an OCI layout)', async () => {
    const archive = await imageArchive({ layers, layout: 'oci' });
    const manifest = archive.entries.find((entry) => entry.name === 'manifest.json');
    const legacy = archive.layerPaths.map((_, i) => `legacy${i}/layer.tar`);
    const entries = [
      ...archive.entries.filter((entry) => entry !== manifest),
      ...archive.layerPaths.map((path, i) => ({ name: legacy[i] as string, link: `../${path}` })),
      {
        name: 'manifest.json',
        data: Buffer.from(
          JSON.stringify([{ Config: `blobs/sha256/${archive.id.slice(7)}`, Layers: legacy }]),
        ),
      },
    ];
    expect((await check(await tarOf(entries), archive.id)).matches).toBe(true);
  });

  it('reads an archive whose entries come in any order', async () => {
    const archive = await imageArchive({ layers, layout: 'docker' });
    const result = await check(await tarOf([...archive.entries].reverse()), archive.id);
    expect(result.matches).toBe(true);
  });
});

describe('deepCheck: content that does not match the image ID', () => {
  it('names the layer whose tar does not hash to its diff_id', async () => {
    const archive = await imageArchive({ layers, layout: 'docker' });
    const other = await tarOf([{ name: 'b.txt', data: Buffer.from('TWO') }]);
    const entries = archive.entries.map((entry) =>
      entry.name === archive.layerPaths[1] ? { ...entry, data: other } : entry,
    );
    const result = await check(await tarOf(entries), archive.id);
    const found = createHash('sha256').update(other).digest('hex');
    expect(result.matches).toBe(false);
    expect(result.mismatch).toBe(
      `layer 2 of 3 (${archive.layerPaths[1]}) has sha256:${found}, the image ID's config lists ${archive.diffIds[1]}`,
    );
    expect(result.layers.map((layer) => layer.diffId)).toEqual(archive.diffIds.slice(0, 2));
  });

  it('catches a gzip layer whose content differs', async () => {
    const archive = await imageArchive({ layers, layout: 'oci', gzip: true });
    const twin = await imageArchive({
      layers: [
        layers[0] as Record<string, string>,
        { 'b.txt': 'evil' },
        layers[2] as Record<string, string>,
      ],
      layout: 'oci',
      gzip: true,
    });
    // The altered blob keeps the original's name and place in manifest.json.
    const evil = twin.entries.find((entry) => entry.name === twin.layerPaths[1]);
    const entries = archive.entries.map((entry) =>
      entry.name === archive.layerPaths[1] ? { ...entry, data: evil?.data } : entry,
    );
    const result = await check(await tarOf(entries), archive.id);
    expect(result.mismatch).toMatch(/^layer 2 of 3 \(blobs\/sha256\/[0-9a-f]{64}\) has sha256:/);
  });

  it('catches a config that is not the image ID', async () => {
    const archive = await imageArchive({ layers, layout: 'docker' });
    const configName = `${archive.id.slice(7)}.json`;
    const entries = archive.entries.map((entry) =>
      entry.name === configName ? { ...entry, data: Buffer.from('{"rootfs":{}}') } : entry,
    );
    const result = await check(await tarOf(entries), archive.id);
    expect(result.matches).toBe(false);
    expect(result.mismatch).toMatch(new RegExp(`^config ${configName} has sha256:`));
    // No config at all: nothing ties the layers to the ID.
    const without = archive.entries.filter((entry) => entry.name !== configName);
    expect((await check(await tarOf(without), archive.id)).mismatch).toBe(
      `the export has no config ${archive.id.slice(7, 19)}`,
    );
  });

  it('catches a layer missing from the export, or one too many', async () => {
    const archive = await imageArchive({ layers, layout: 'docker' });
    const without = archive.entries.filter((entry) => entry.name !== archive.layerPaths[2]);
    expect((await check(await tarOf(without), archive.id)).mismatch).toBe(
      `layer 3 (${archive.layerPaths[2]}) is missing from the export`,
    );
    const extra = archive.entries.map((entry) =>
      entry.name === 'manifest.json'
        ? {
            ...entry,
            data: Buffer.from(
              JSON.stringify([
                { Config: `${archive.id.slice(7)}.json`, Layers: [...archive.layerPaths, 'x'] },
              ]),
            ),
          }
        : entry,
    );
    expect((await check(await tarOf(extra), archive.id)).mismatch).toBe(
      'manifest.json lists 4 layers, the config 3',
    );
  });

  it('catches an OCI blob whose content is not its name', async () => {
    const archive = await imageArchive({ layers, layout: 'oci' });
    const manifestBlob = archive.entries.find(
      (entry) =>
        entry.name.startsWith('blobs/') &&
        Buffer.from(entry.data ?? []).includes('"schemaVersion"'),
    );
    const entries = archive.entries.map((entry) =>
      entry === manifestBlob ? { ...entry, data: Buffer.from('{}') } : entry,
    );
    expect((await check(await tarOf(entries), archive.id)).mismatch).toMatch(
      new RegExp(`^blob ${manifestBlob?.name} has sha256:`),
    );
  });

  it("takes dockerd's own integrity failures as the same finding", async () => {
    const id = `sha256:${'a'.repeat(64)}`;
    // dockerd < 25: the export is assembled before the answer, so it fails with HTTP 500.
    const http = Object.assign(
      new Error('(HTTP code 500) server error - file integrity checksum failed for "usr/bin/app" '),
      { statusCode: 500 },
    );
    expect(await check(http, id)).toEqual({
      matches: false,
      layout: 'docker',
      layers: [],
      mismatch: 'file integrity checksum failed for "usr/bin/app"',
    });
    const layerStore = Object.assign(
      new Error(
        `(HTTP code 500) server error - could not verify layer data for: sha256:${'b'.repeat(64)}. This may be because internal files in the layer store were modified.`,
      ),
      { statusCode: 500 },
    );
    expect((await check(layerStore, id)).mismatch).toBe(
      `could not verify layer data for: sha256:${'b'.repeat(64)}`,
    );
    // A recorded file gone from a layer's own directory (vfs, overlay2 diff) is a finding;
    // elsewhere (a merged mount), or another error of a file so named, is not.
    const layerDir = `/var/lib/docker/vfs/dir/${'c'.repeat(64)}`;
    const gone = (path: string, why = 'no such file or directory') =>
      Object.assign(new Error(`(HTTP code 500) server error - open ${path}: ${why} `), {
        statusCode: 500,
      });
    expect((await check(gone(`${layerDir}/etc/app.conf`), id)).mismatch).toBe(
      `open ${layerDir}/etc/app.conf: no such file or directory`,
    );
    const overlayDiff = `/var/lib/docker/overlay2/${'d'.repeat(64)}/diff/bin/x`;
    expect((await check(gone(overlayDiff), id)).matches).toBe(false);
    for (const failure of [
      gone(`/var/lib/docker/overlay2/${'d'.repeat(64)}/merged/bin/x`),
      gone(`${layerDir}/a: no such file or directory/b`, 'permission denied'),
      gone('/var/lib/docker/tmp/docker-export-1/repositories'),
    ]) {
      await rejectsWith(check(failure, id), 'UNAVAILABLE');
    }
    // dockerd 25+: it streams, and writes the error as JSON after the partial tar.
    const archive = await imageArchive({ layers, layout: 'oci' });
    const whole = await tarOf(archive.entries);
    const cut = Buffer.concat([
      whole.subarray(0, 1536 + 700),
      Buffer.from(
        '{"errorDetail":{"message":"file integrity checksum failed for \\"b.txt\\""},"error":"file integrity checksum failed for \\"b.txt\\""}\r\n',
      ),
    ]);
    expect(await check(cut, archive.id)).toEqual({
      matches: false,
      layout: 'oci',
      layers: [],
      mismatch: 'file integrity checksum failed for "b.txt"',
    });
  });
});

describe('deepCheck: exports that cannot be checked', () => {
  it('is UNAVAILABLE when the export breaks off, with dockerd’s message when it sent one', async () => {
    const archive = await imageArchive({ layers, layout: 'docker' });
    const whole = await tarOf(archive.entries);
    const broken = await rejectsWith(check(whole.subarray(0, 3000), archive.id), 'UNAVAILABLE');
    expect(broken.message).toMatch(/^docker save broke off: /);
    const said = Buffer.concat([
      whole.subarray(0, 3000),
      Buffer.from('{"errorDetail":{"message":"no space left on device"},"error":"x"}'),
    ]);
    const told = await rejectsWith(check(said, archive.id), 'UNAVAILABLE');
    expect(told.message).toBe('docker save broke off: no space left on device');
  });

  it('maps Docker failures: no image, no daemon', async () => {
    const id = `sha256:${'c'.repeat(64)}`;
    const missing = Object.assign(new Error('(HTTP code 404) no such image'), { statusCode: 404 });
    await rejectsWith(check(missing, id), 'IMAGE_NOT_FOUND');
    const down = Object.assign(new Error('connect ECONNREFUSED /x.sock'), { code: 'ECONNREFUSED' });
    await rejectsWith(check(down, id), 'UNAVAILABLE');
    await rejectsWith(check(Buffer.alloc(0), 'not-an-id'), 'BAD_DATA');
  });

  it('refuses an export without manifest.json, or with bad JSON, as BAD_DATA', async () => {
    const archive = await imageArchive({ layers, layout: 'docker' });
    const without = archive.entries.filter((entry) => entry.name !== 'manifest.json');
    await rejectsWith(check(await tarOf(without), archive.id), 'BAD_DATA');
    const garbled = archive.entries.map((entry) =>
      entry.name === 'manifest.json' ? { ...entry, data: Buffer.from('[{"Config": 1}]') } : entry,
    );
    const error = await rejectsWith(check(await tarOf(garbled), archive.id), 'BAD_DATA');
    expect(error.message).toMatch(/^docker save manifest.json: 0\.Config: /);
  });

  it('does not call a zstd layer UNTRUSTED: it cannot be read here, BAD_DATA', async () => {
    const archive = await imageArchive({ layers: [{ 'a.txt': 'one' }], layout: 'oci' });
    const zstd = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]);
    const entries = archive.entries.map((entry) =>
      entry.name === archive.layerPaths[0] ? { ...entry, data: zstd } : entry,
    );
    const error = await rejectsWith(check(await tarOf(entries), archive.id), 'BAD_DATA');
    expect(error.message).toMatch(/zstd-compressed/);
  });

  it('refuses metadata over its cap while reading it', async () => {
    const archive = await imageArchive({ layers, layout: 'docker' });
    const huge = archive.entries.map((entry) =>
      entry.name === 'manifest.json' ? { ...entry, data: Buffer.alloc(9 * 2 ** 20, 0x20) } : entry,
    );
    const error = await rejectsWith(check(await tarOf(huge), archive.id), 'BAD_DATA');
    expect(error.message).toMatch(/manifest\.json in the export is over/);
  });
});

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DockerStorage,
  describeTreeDifference,
  dockerStorage,
  treeCheck,
} from '../../../agent/device/docker/tree';
import { buildScratchImage, type Dockerd, layerStorage, startDockerd } from '../../helpers/dockerd';
import { rejectsWith } from '../../helpers/errors';
import { imageArchive, tarOf } from '../../helpers/oci';
import { describeWith } from '../../helpers/services';

/**
 * The tree check against real dockerds, one with vfs storage and one with overlay2 (this
 * VM mounts overlay): images `docker load`ed from archives made here (ustar and pax headers
 * from tar-stream, GNU long names from GNU tar, whiteouts, an opaque directory, a hard
 * link, a fifo) and one built FROM scratch (Docker's own layer tars), then their layer
 * directories changed on disk.
 */

const longName = `gnu/${'n'.repeat(120)}.txt`;
const longTarget = `/${'t'.repeat(150)}`;

/** A layer tar as GNU tar writes it: GNU long names ('L', 'K'), `./` paths, a fifo. */
async function gnuLayer(): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'vouch-gnu-layer-'));
  try {
    await mkdir(join(dir, 'gnu'));
    await writeFile(join(dir, longName), 'long name');
    await writeFile(join(dir, 'gnu/empty'), '');
    await symlink(longTarget, join(dir, 'gnu/link'));
    execFileSync('mkfifo', [join(dir, 'gnu/fifo')]);
    return execFileSync('tar', ['--format=gnu', '--sort=name', '-C', dir, '-cf', '-', '.']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function load(docker: Docker, archive: Buffer): Promise<void> {
  const stream = await docker.loadImage(Readable.from([archive]));
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString();
  if (text.includes('"error"')) throw new Error(`docker load: ${text}`);
}

const intact = (diffIds: readonly string[]) =>
  diffIds.map((diffId) => ({ diffId, added: [], removed: [], changed: [] }));

for (const driver of ['vfs', 'overlay2'] as const) {
  describeWith('docker', `treeCheck (${driver} storage)`, () => {
    let daemon: Dockerd;
    let storage: DockerStorage;
    const diffIds = async (ref: string) =>
      (await daemon.docker.getImage(ref).inspect()).RootFS.Layers ?? [];
    const check = async (ref: string) => treeCheck(storage, await diffIds(ref));
    const dirOf = async (ref: string, index: number) =>
      (await layerStorage(daemon.docker, ref, index)).dir;

    beforeAll(async () => {
      daemon = await startDockerd({ storageDriver: driver });
      storage = await dockerStorage(daemon.docker);
      const archive = await imageArchive({
        layout: 'docker',
        repoTag: 'vouch-test/tree:1',
        layers: [
          {
            'a.txt': 'one',
            // No entry for dir/ or dir/sub/: unpacking makes them.
            'dir/b.txt': 'two',
            'dir/sub/c.txt': 'three',
            'gone.txt': 'deleted by layer 2',
            link: { link: 'a.txt' },
            // pax headers: a long path, a long symlink target.
            [`pax/${'p'.repeat(120)}.txt`]: 'pax',
            'pax/link': { link: longTarget },
          },
          {
            '.wh.gone.txt': '',
            'dir/.wh..wh..opq': '',
            'dir/new.txt': 'new',
            hard: { hardlink: 'dir/new.txt' },
          },
          await gnuLayer(),
        ],
      });
      await load(daemon.docker, await tarOf(archive.entries));
      await buildScratchImage(daemon.docker, 'vouch-test/built:1', [
        { 'a.txt': 'A', 'd/e.txt': 'E' },
        { 'f.txt': 'F content', 'g/h.txt': 'H' },
        { 'i.txt': 'I' },
      ]);
    }, 120_000);

    afterAll(async () => {
      await daemon?.stop();
    });

    it('reads where Docker keeps its layers', () => {
      expect(storage).toEqual({ root: expect.stringMatching(/^\/tmp\/vouch-dockerd-/), driver });
    });

    it('finds intact layers as recorded: files, dirs, links, whiteouts, long names, a fifo', async () => {
      for (const ref of ['vouch-test/tree:1', 'vouch-test/built:1']) {
        const result = await check(ref);
        expect(result, ref).toEqual({ matches: true, driver, layers: intact(await diffIds(ref)) });
        expect(describeTreeDifference(result)).toBeNull();
      }
    });

    it('reports a file added, one removed and one changed (same size) in a layer directory', async () => {
      const dir = await dirOf('vouch-test/built:1', 1);
      await writeFile(join(dir, 'g/added.txt'), 'not in any layer');
      await rm(join(dir, 'g/h.txt'));
      expect(await readFile(join(dir, 'f.txt'), 'utf8')).toBe('F content');
      await writeFile(join(dir, 'f.txt'), 'F CONTENT');
      const ids = await diffIds('vouch-test/built:1');
      const result = await check('vouch-test/built:1');
      expect(result).toEqual({
        matches: false,
        driver,
        layers: [
          intact(ids)[0],
          { diffId: ids[1], added: ['/g/added.txt'], removed: ['/g/h.txt'], changed: ['/f.txt'] },
          intact(ids)[2],
        ],
      });
      expect(describeTreeDifference(result)).toBe(
        'layer 2 of 3 differs on disk: 1 added (/g/added.txt), 1 removed (/g/h.txt), 1 changed (/f.txt)',
      );
    });

    it('sees a changed type or symlink target, and what a whiteout deleted come back', async () => {
      const first = await dirOf('vouch-test/tree:1', 0);
      await rm(join(first, 'a.txt'));
      await mkdir(join(first, 'a.txt'));
      await rm(join(first, 'link'));
      await symlink('dir/b.txt', join(first, 'link'));
      const second = await dirOf('vouch-test/tree:1', 1);
      // Under the opaque dir/, b.txt of layer 1 is gone; a new one is added.
      await writeFile(join(second, 'dir/b.txt'), 'two');
      if (driver === 'vfs') {
        // The layer's directory is the whole filesystem: the deleted file, back.
        await writeFile(join(second, 'gone.txt'), 'deleted by layer 2');
      } else {
        // overlay2 keeps the deletion as a 0/0 character device: without it, layer 1's
        // gone.txt shows through again.
        await rm(join(second, 'gone.txt'));
      }
      const ids = await diffIds('vouch-test/tree:1');
      const result = await check('vouch-test/tree:1');
      expect(result.layers).toEqual([
        { diffId: ids[0], added: [], removed: [], changed: ['/a.txt', '/link'] },
        driver === 'vfs'
          ? { diffId: ids[1], added: ['/dir/b.txt', '/gone.txt'], removed: [], changed: [] }
          : { diffId: ids[1], added: ['/dir/b.txt'], removed: ['/gone.txt'], changed: [] },
        intact(ids)[2],
      ]);
      expect(describeTreeDifference(result)).toBe(
        'layer 1 of 3 differs on disk: 0 added, 0 removed, 2 changed (/a.txt, /link); 1 more layer differs',
      );
    });
  });
}

describeWith('docker', 'treeCheck: storage it cannot check', () => {
  let daemon: Dockerd;
  let storage: DockerStorage;
  let ids: string[];
  const ref = 'vouch-test/cannot:1';

  beforeAll(async () => {
    daemon = await startDockerd();
    storage = await dockerStorage(daemon.docker);
    await buildScratchImage(daemon.docker, ref, [{ 'a.txt': 'A' }, { 'b.txt': 'B' }]);
    ids = (await daemon.docker.getImage(ref).inspect()).RootFS.Layers ?? [];
  }, 120_000);

  afterAll(async () => {
    await daemon?.stop();
  });

  it('is IO, saying it needs root, for a user who cannot read the storage', () => {
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'test/device/docker/tree-child.ts', storage.root, 'vfs', ...ids],
      { uid: 65534, gid: 65534, encoding: 'utf8' },
    );
    expect(child.status, child.stderr).toBe(0);
    const { error } = JSON.parse(child.stdout) as { error: { code: string; message: string } };
    expect(error.code).toBe('IO');
    expect(error.message).toMatch(/^cannot read Docker's storage: EACCES: permission denied, /);
    expect(error.message).toMatch(/ \(the tree check needs root\)$/);
  });

  it('is IO for storage that is not on this machine', async () => {
    const error = await rejectsWith(
      treeCheck({ root: '/nonexistent/docker', driver: 'vfs' }, ids),
      'IO',
    );
    expect(error.message).toMatch(/^cannot read Docker's storage: ENOENT: /);
  });

  it('is BAD_DATA for a record that is not a tar-split record', async () => {
    const { tarSplit } = await layerStorage(daemon.docker, ref, 1);
    const original = await readFile(tarSplit);
    try {
      await writeFile(tarSplit, 'not gzip');
      const garbage = await rejectsWith(treeCheck(storage, ids), 'BAD_DATA');
      expect(garbage.message).toBe(`tar-split record ${tarSplit}: incorrect header check`);
      // A tar header changed without its checksum.
      const lines = gunzipSync(original).toString().split('\n');
      const header = lines.findIndex((line) => line.includes('"type":2'));
      const segment = JSON.parse(lines[header] as string) as { payload: string };
      const bytes = Buffer.from(segment.payload, 'base64');
      bytes[0] = 0x78; // the first byte of the name
      lines[header] = JSON.stringify({ ...segment, payload: bytes.toString('base64') });
      await writeFile(tarSplit, gzipSync(lines.join('\n')));
      const checksum = await rejectsWith(treeCheck(storage, ids), 'BAD_DATA');
      expect(checksum.message).toBe(
        `tar-split record ${tarSplit}: a tar header's checksum does not match`,
      );
    } finally {
      await writeFile(tarSplit, original);
    }
    expect((await treeCheck(storage, ids)).matches).toBe(true);
  });
});

describe('dockerStorage', () => {
  it('is USAGE for a storage driver other than vfs and overlay2', async () => {
    // A btrfs or containerd-snapshotter dockerd cannot run here: its info, as it answers.
    const docker = {
      info: async () => ({ Driver: 'overlayfs', DockerRootDir: '/var/lib/docker' }),
    } as unknown as Docker;
    const error = await rejectsWith(dockerStorage(docker), 'USAGE');
    expect(error.message).toBe(
      'the tree check reads the vfs and overlay2 storage drivers; Docker uses overlayfs',
    );
  });
});

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DockerStorage,
  describeTreeDifference,
  dockerStorage,
  treeCheck,
} from '../../../agent/device/docker/tree';
import {
  buildScratchImage,
  type Dockerd,
  layerStorage,
  loadArchive,
  startDockerd,
} from '../../../scripts/lib/dockerd';
import { rejectsWith } from '../../helpers/errors';
import { imageArchive, tarOf } from '../../helpers/oci';
import { describeWith } from '../../helpers/services';

/**
 * The tree check against real dockerds, one with vfs storage and one with overlay2 (this
 * VM mounts overlay): images `docker load`ed from archives made here (ustar and pax headers
 * from tar-stream, GNU long names from GNU tar, whiteouts, an opaque directory, hard
 * links to a file, a symlink and a fifo, AUFS metadata) and one built FROM scratch
 * (Docker's own layer tars), then their layer directories changed on disk.
 */

const longName = `gnu/${'n'.repeat(120)}.txt`;
const longTarget = `/${'t'.repeat(150)}`;

/** A layer tar GNU tar writes of what `make` puts in a temporary directory. */
async function gnuTar(make: (dir: string) => Promise<void>): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'vouch-gnu-layer-'));
  try {
    await make(dir);
    return execFileSync('tar', ['--format=gnu', '--sort=name', '-C', dir, '-cf', '-', '.']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** GNU long names ('L', 'K'), `./` paths, a fifo and a hard link to it. */
const gnuLayer = () =>
  gnuTar(async (dir) => {
    await mkdir(join(dir, 'gnu'));
    await writeFile(join(dir, longName), 'long name');
    await writeFile(join(dir, 'gnu/empty'), '');
    await symlink(longTarget, join(dir, 'gnu/link'));
    execFileSync('mkfifo', [join(dir, 'gnu/fifo')]);
    execFileSync('ln', [join(dir, 'gnu/fifo'), join(dir, 'gnu/fifo-link')]);
  });

/**
 * AUFS metadata, as an image from Docker's old aufs driver may hold (moby
 * pkg/archive/whiteouts.go): `.wh..wh.aufs`, and `.wh..wh.plnk/` with a file that `hl`, a
 * hard link, names.
 */
const aufsLayer = () =>
  gnuTar(async (dir) => {
    await writeFile(join(dir, '.wh..wh.aufs'), '');
    await mkdir(join(dir, '.wh..wh.plnk'));
    await writeFile(join(dir, '.wh..wh.plnk/12.34'), 'kept aside');
    execFileSync('ln', [join(dir, '.wh..wh.plnk/12.34'), join(dir, 'hl')]);
  });

/**
 * AUFS metadata directories alone: `.wh..wh.orph/sub/` with no file in it. UnpackLayer
 * makes the parent of every entry it reads, directories too, before it skips metadata.
 */
const aufsDirLayer = () =>
  gnuTar(async (dir) => {
    await mkdir(join(dir, '.wh..wh.orph/sub'), { recursive: true });
  });

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
            // Docker's archiver writes a hard link for any non-directory with two links.
            hardsym: { hardlink: 'link' },
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
      await loadArchive(daemon.docker, await tarOf(archive.entries));
      const aufs = await imageArchive({
        layout: 'docker',
        repoTag: 'vouch-test/aufs:1',
        layers: [{ 'a.txt': 'A' }, await aufsLayer()],
      });
      await loadArchive(daemon.docker, await tarOf(aufs.entries));
      const aufsDir = await imageArchive({
        layout: 'docker',
        repoTag: 'vouch-test/aufs-dir:1',
        layers: [{ 'a.txt': 'A' }, await aufsDirLayer()],
      });
      await loadArchive(daemon.docker, await tarOf(aufsDir.entries));
      const opaqueLate = await imageArchive({
        layout: 'docker',
        repoTag: 'vouch-test/opaque-late:1',
        layers: [
          { 'dir/old': 'old', top: 'T' },
          // dir/sub is made as x's parent, by no entry of its own, before the marker.
          { 'dir/sub/x': 'x', 'dir/.wh..wh..opq': '' },
        ],
      });
      await loadArchive(daemon.docker, await tarOf(opaqueLate.entries));
      await buildScratchImage(daemon.docker, 'vouch-test/built:1', [
        { 'a.txt': 'A', 'd/e.txt': 'E' },
        { 'f.txt': 'F content', 'g/h.txt': 'H' },
        { 'i.txt': 'I' },
      ]);
    }, 120_000);

    afterAll(async () => {
      await daemon?.stop();
    });

    it('reads where Docker keeps its layers', async () => {
      expect(storage).toEqual({ root: expect.stringMatching(/^\/tmp\/vouch-dockerd-/), driver });
      // The status dockerStorage reads to refuse overlay2 with naive diff, as dockerd gives it.
      const { DriverStatus } = await daemon.docker.info();
      if (driver === 'overlay2')
        expect(DriverStatus).toContainEqual(['Native Overlay Diff', 'true']);
    });

    it('finds intact layers as recorded: files, dirs, links, whiteouts, long names, a fifo', async () => {
      for (const ref of ['vouch-test/tree:1', 'vouch-test/built:1', 'vouch-test/aufs:1']) {
        const result = await check(ref);
        expect(result, ref).toEqual({ matches: true, driver, layers: intact(await diffIds(ref)) });
        expect(describeTreeDifference(result)).toBeNull();
      }
    });

    it('expects AUFS metadata where Docker unpacks it: vfs skips it, overlay2 does not', async () => {
      const names = (await readdir(await dirOf('vouch-test/aufs:1', 1))).sort();
      expect(names).toEqual(
        driver === 'vfs'
          ? // UnpackLayer skips it, but makes .wh..wh.plnk as the parent of a file in it;
            // hl is a copy of that file (vfs: the whole filesystem, a.txt included).
            ['.wh..wh.plnk', 'a.txt', 'hl']
          : // Unpack makes `.wh.` names whiteouts and unpacks the rest.
            ['.wh..wh.plnk', '.wh.aufs', '.wh.plnk', 'hl'],
      );
    });

    it('expects the directory UnpackLayer makes for a directory in AUFS metadata', async () => {
      const ref = 'vouch-test/aufs-dir:1';
      const names = (await readdir(await dirOf(ref, 1))).sort();
      expect(names).toEqual(
        driver === 'vfs'
          ? // The parent of .wh..wh.orph/sub, made before the entry is skipped.
            ['.wh..wh.orph', 'a.txt']
          : // A whiteout for .wh..wh.orph, and the directory itself as sub's parent.
            ['.wh..wh.orph', '.wh.orph'],
      );
      expect(await check(ref)).toEqual({
        matches: true,
        driver,
        layers: intact(await diffIds(ref)),
      });
    });

    it('expects what an opaque marker after a made parent leaves: vfs removes it', async () => {
      const ref = 'vouch-test/opaque-late:1';
      const dir = await dirOf(ref, 1);
      const names = (await readdir(dir, { recursive: true })).sort();
      // UnpackLayer's opaque walk keeps only paths this layer's entries unpacked: dir/sub
      // was made as a parent, so it goes with the x in it. overlay2 marks dir opaque (an
      // extended attribute) and keeps this layer's files.
      expect(names).toEqual(driver === 'vfs' ? ['dir', 'top'] : ['dir', 'dir/sub', 'dir/sub/x']);
      expect(await check(ref)).toEqual({
        matches: true,
        driver,
        layers: intact(await diffIds(ref)),
      });
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
  const answering = (info: object) => ({ info: async () => info }) as unknown as Docker;

  it('is USAGE for a storage driver other than vfs and overlay2', async () => {
    // A btrfs or containerd-snapshotter dockerd cannot run here: its info, as it answers.
    const docker = answering({ Driver: 'overlayfs', DockerRootDir: '/var/lib/docker' });
    const error = await rejectsWith(dockerStorage(docker), 'USAGE');
    expect(error.message).toBe(
      'the tree check reads the vfs and overlay2 storage drivers; Docker uses overlayfs',
    );
  });

  it('is USAGE for overlay2 without native diff', async () => {
    // dockerd picks naive diff when its probe (overlay2 check.go doesSupportNativeDiff)
    // finds overlay's redirect_dir on or the opaque copy-up bug of kernels before 4.8. Here
    // redirect_dir is a kernel-wide module parameter, off, that no test should turn on for
    // the whole machine: this is dockerd's info then (the real one's shape is checked above).
    const docker = answering({
      Driver: 'overlay2',
      DockerRootDir: '/var/lib/docker',
      DriverStatus: [
        ['Backing Filesystem', 'extfs'],
        ['Supports d_type', 'true'],
        ['Native Overlay Diff', 'false'],
        ['userxattr', 'false'],
      ],
    });
    const error = await rejectsWith(dockerStorage(docker), 'USAGE');
    expect(error.message).toBe(
      'the tree check reads overlay2 storage only with native overlay diff; Docker reports Native Overlay Diff: false',
    );
  });
});

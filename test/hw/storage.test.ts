import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseMountInfo, readStorage } from '../../hw/storage';

const sysroot = (board: string) => join(import.meta.dirname, '../fixtures/sysroot', board);

describe('parseMountInfo', () => {
  it('takes device numbers and mount points, undoing octal escapes', () => {
    const text =
      '36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n' +
      '37 36 259:8 /media /media/my\\040files\\134x rw - ext4 /dev/nvme0n1p8 rw\n' +
      'garbage\n\n';
    expect(parseMountInfo(text)).toEqual([
      { device: '98:0', point: '/mnt2' },
      { device: '259:8', point: '/media/my files\\x' },
    ]);
  });
});

describe('readStorage on fixture trees', () => {
  it.each([
    ['pi3b-sd', '/mnt/data/docker/image', '/mnt/data', 'mmcblk0p8', 'sd'],
    // A bind mount of the same partition, mounted later and deeper: it wins.
    ['pi3b-sd', '/var/lib/docker/overlay2', '/var/lib/docker', 'mmcblk0p8', 'sd'],
    ['pi3b-sd', '/etc/hostname', '/', 'mmcblk0p3', 'sd'],
    ['pi4-usb', '/mnt/data', '/mnt/data', 'sda8', 'usb'],
    ['pi4-usb', '/mnt/database', '/', 'sda3', 'usb'],
    ['pi4-usb', '/tmp/x', '/tmp', null, 'other'],
    ['pi5-nvme', '/var/lib/docker', '/var/lib/docker', 'nvme0n1p8', 'nvme'],
    ['rk3588-emmc', '/home/user/update.raucb', '/', 'mmcblk0p2', 'emmc'],
    ['x86-64-container', '/data/vouch', '/data', 'nvme0n1p8', 'nvme'],
    ['x86-64-container', '/media/my files/a.iso', '/media/my files', 'nvme0n1p8', 'nvme'],
    // The container's own root is an overlay: no block device behind it.
    ['x86-64-container', '/usr/bin/vouch', '/', null, 'other'],
  ])('%s: %s is on %s (%s), %s', async (board, path, mount, device, kind) => {
    expect(await readStorage(sysroot(board), [path])).toEqual([
      { path, mount, device, class: kind },
    ]);
  });

  it('resolves relative paths against / on the target, and copes without mountinfo', async () => {
    const [storage] = await readStorage(sysroot('pi4-usb'), ['mnt/data/../data/x']);
    expect(storage).toMatchObject({ path: '/mnt/data/x', class: 'usb' });
    expect(await readStorage('/nonexistent', ['/x'])).toEqual([
      { path: '/x', mount: null, device: null, class: 'other' },
    ]);
  });
});

describe('readStorage on this machine', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vouch-storage-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('follows symlinks to the real path first', async () => {
    writeFileSync(join(dir, 'file'), 'x');
    symlinkSync('/proc/self', join(dir, 'link'));
    const [file, link] = await readStorage('/', [join(dir, 'file'), join(dir, 'link')]);
    expect(file?.mount).not.toBeNull();
    // /proc/self → /proc/<pid>, on procfs: an anonymous device, no block device.
    expect(link).toMatchObject({ mount: '/proc', device: null, class: 'other' });
    expect(link?.path).toMatch(/^\/proc\/\d+$/);
  });
});

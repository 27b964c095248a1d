import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, truncate } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readProfile } from '../../hw/profile';

const sysroot = (board: string) => join(import.meta.dirname, '../fixtures/sysroot', board);
const kB = 1024;

describe('readProfile on fixture trees', () => {
  it('Raspberry Pi 3 B on an SD card, under-voltage', async () => {
    expect(await readProfile({ root: sysroot('pi3b-sd'), paths: ['/mnt/data'] })).toEqual({
      board: 'Raspberry Pi 3 Model B Rev 1.2',
      compatible: ['raspberrypi,3-model-b', 'brcm,bcm2837'],
      raspberryPi: {
        code: 'a02082',
        type: '3B',
        revision: '1.2',
        processor: 'BCM2837',
        memory: 2 ** 30,
        manufacturer: 'Sony UK',
      },
      arch: 'arm64',
      cpu: '4× Cortex-A53',
      cores: 4,
      memTotal: 948304 * kB,
      memAvailable: 612480 * kB,
      sha2: false,
      storage: [{ path: '/mnt/data', mount: '/mnt/data', device: 'mmcblk0p8', class: 'sd' }],
      temperature: 58.5,
      throttling: {
        raw: '0x50005',
        now: ['under-voltage', 'throttled'],
        sinceBoot: ['under-voltage', 'throttled'],
      },
    });
  });

  it('Raspberry Pi 4 B on a USB SSD', async () => {
    const profile = await readProfile({ root: sysroot('pi4-usb'), paths: ['/mnt/data/docker'] });
    expect(profile).toMatchObject({
      board: 'Raspberry Pi 4 Model B Rev 1.4',
      raspberryPi: { code: 'c03114', type: '4B', memory: 4 * 2 ** 30 },
      cpu: '4× Cortex-A72',
      cores: 4,
      sha2: false,
      storage: [{ class: 'usb', device: 'sda8' }],
      temperature: 51.1,
      throttling: { raw: '0x0', now: [], sinceBoot: [] },
    });
  });

  it('Raspberry Pi 5 on NVMe: get_throttled found under its own firmware node', async () => {
    const profile = await readProfile({ root: sysroot('pi5-nvme'), paths: ['/var/lib/docker'] });
    expect(profile).toMatchObject({
      board: 'Raspberry Pi 5 Model B Rev 1.0',
      compatible: ['raspberrypi,5-model-b', 'brcm,bcm2712'],
      raspberryPi: { type: '5', processor: 'BCM2712', memory: 8 * 2 ** 30 },
      cpu: '4× Cortex-A76',
      sha2: true,
      memTotal: 8245408 * kB,
      storage: [{ class: 'nvme', device: 'nvme0n1p8' }],
      temperature: 60.8,
      throttling: { raw: '0x0' },
    });
  });

  it('RK3588 on eMMC: the hottest of its thermal zones, no Pi firmware', async () => {
    const profile = await readProfile({ root: sysroot('rk3588-emmc'), paths: ['/'] });
    expect(profile).toMatchObject({
      board: 'Radxa ROCK 5B',
      compatible: ['radxa,rock-5b', 'rockchip,rk3588'],
      raspberryPi: null,
      cpu: '4× Cortex-A55 + 4× Cortex-A76',
      cores: 8,
      sha2: true,
      storage: [{ class: 'emmc', device: 'mmcblk0p2' }],
      temperature: 47.1,
      throttling: null,
    });
  });

  it('x86 box, inside a container: DMI names it, cgroup v2 limits cores and memory', async () => {
    expect(await readProfile({ root: sysroot('x86-64-container'), paths: ['/data'] })).toEqual({
      board: 'HARDKERNEL ODROID-H3',
      compatible: [],
      raspberryPi: null,
      arch: 'x64',
      cpu: 'Intel(R) Celeron(R) N5105 @ 2.00GHz',
      // 4 processors, cpu.max "200000 100000": two cores' worth.
      cores: 2,
      // memory.max 512 MiB, of which memory.current uses 100 MiB (meminfo says 15 GiB).
      memTotal: 512 * 2 ** 20,
      memAvailable: 412 * 2 ** 20,
      sha2: true,
      storage: [{ path: '/data', mount: '/data', device: 'nvme0n1p8', class: 'nvme' }],
      temperature: 43,
      throttling: null,
    });
  });

  it('fails with IO when the root has no proc/cpuinfo', async () => {
    await expect(readProfile({ root: '/nonexistent', paths: [] })).rejects.toMatchObject({
      code: 'IO',
      message: expect.stringContaining('/nonexistent/proc/cpuinfo'),
    });
  });

  it('reads no file past 4 MiB: a sparse 3 GiB cpuinfo, or /dev/zero linked in, is BAD_DATA', async () => {
    const root = join(await mkdtemp(join(tmpdir(), 'vouch-sysroot-')), 'pi3b');
    execFileSync('cp', ['-a', sysroot('pi3b-sd'), root]);
    const cpuinfo = join(root, 'proc/cpuinfo');
    const tooLarge = {
      code: 'BAD_DATA',
      message: `${cpuinfo} is larger than ${4 * 2 ** 20} bytes`,
    };
    await truncate(cpuinfo, 3 * 2 ** 30);
    await expect(readProfile({ root, paths: [] })).rejects.toMatchObject(tooLarge);
    await rm(cpuinfo);
    await symlink('/dev/zero', cpuinfo);
    await expect(readProfile({ root, paths: [] })).rejects.toMatchObject(tooLarge);
  });
});

describe('readProfile on this machine', () => {
  it('agrees with what Node sees', async () => {
    const profile = await readProfile({ root: '/', paths: ['/'] });
    expect(profile.arch).toBe(process.arch);
    expect(profile.cores).toBeGreaterThanOrEqual(1);
    expect(profile.cores).toBeLessThanOrEqual(cpus().length);
    expect(profile.memTotal).toBeLessThanOrEqual(totalmem());
    expect(profile.memAvailable).toBeLessThanOrEqual(profile.memTotal);
    expect(profile.storage).toHaveLength(1);
  });
});

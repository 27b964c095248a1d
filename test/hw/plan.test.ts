import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planChecking, planHashing } from '../../hw/plan';
import { type HardwareProfile, readProfile } from '../../hw/profile';
import type { StorageClass } from '../../hw/storage';

const MiB = 2 ** 20;
const fixture = (board: string, path: string) =>
  readProfile({ root: join(import.meta.dirname, '../fixtures/sysroot', board), paths: [path] });

describe('planHashing on the fixture boards', () => {
  it.each([
    // The SD card (~90 MB/s) is slower than one Cortex-A53 core hashes: one worker.
    ['pi3b-sd', '/mnt/data', 1, 4],
    // USB 3 SSD ~350 MB/s over ~140 MB/s per core (no SHA-2 instructions): three of four cores.
    ['pi4-usb', '/mnt/data', 3, 12],
    // SHA-2 instructions hash ~1 GB/s per core: one worker keeps up with NVMe.
    ['pi5-nvme', '/mnt/data', 1, 4],
    ['rk3588-emmc', '/', 1, 4],
    ['x86-64-container', '/data', 1, 4],
    // The container's overlay root: storage not assumed to limit, so both (quota) cores; the
    // 512 MiB memory limit caps what is in flight (412 MiB available / 64 → 6 MiB, not 2 × 4).
    ['x86-64-container', '/usr', 2, 6],
  ])('%s hashing %s: %i workers, %i MiB in flight', async (board, path, workers, inFlight) => {
    const plan = planHashing(await fixture(board, path));
    expect(plan).toMatchObject({ workers, chunkSize: MiB, inFlightBytes: inFlight * MiB });
  });

  it('says why', async () => {
    expect(planHashing(await fixture('pi4-usb', '/mnt/data')).reasons).toEqual([
      'no SHA-2 instructions (arm64): ~140 MB/s per core',
      'USB disk (/mnt/data on sda8): reads ~350 MB/s',
      '3 workers to keep up with the storage, one of 4 cores left to the system',
      '12 MiB in flight in 1 MiB chunks (4 per worker, at most 1/64 of 3223 MiB available)',
    ]);
  });

  it('halves the workers when hot (≥ 75 °C) or throttled, never below one', async () => {
    const pi4 = await fixture('pi4-usb', '/mnt/data');
    const hot = planHashing({ ...pi4, temperature: 75 });
    expect(hot.workers).toBe(1);
    expect(hot.reasons).toContain('75 °C ≥ 75 °C: 3 → 1 worker');
    expect(planHashing({ ...pi4, temperature: 74.9 }).workers).toBe(3);
    const capped = { raw: '0x2', now: ['frequency-capped' as const], sinceBoot: [] };
    expect(planHashing({ ...pi4, throttling: capped }).workers).toBe(1);
    // Throttling in the past only (since boot) does not count.
    const past = { raw: '0x50000', now: [], sinceBoot: ['under-voltage' as const] };
    expect(planHashing({ ...pi4, throttling: past }).workers).toBe(3);

    const pi3 = planHashing(await fixture('pi3b-sd', '/mnt/data'));
    expect(pi3.workers).toBe(1);
    expect(pi3.reasons).toContain('firmware reports under-voltage, throttled: 1 → 1 worker');
  });

  it('plans for the fastest storage among several paths', async () => {
    const pi4 = await fixture('pi4-usb', '/mnt/data');
    const sd = { path: '/boot', mount: '/boot', device: 'mmcblk0p1', class: 'sd' as const };
    expect(planHashing({ ...pi4, storage: [sd, ...pi4.storage] }).workers).toBe(3);
    expect(planHashing({ ...pi4, storage: [sd] }).workers).toBe(1);
  });
});

describe('planChecking: threads for the entry checks of a sync', () => {
  it.each([
    ['pi3b-sd', 4],
    ['pi4-usb', 4],
    ['rk3588-emmc', 8],
    // Four processors listed, a cgroup v2 quota of two CPUs: two threads.
    ['x86-64-container', 2],
  ])('%s: %i threads, one per core it may use', async (board, threads) => {
    expect(planChecking(await fixture(board, '/'))).toBe(threads);
  });

  it('is one per core, at least one, at most eight', async () => {
    const pi4 = await fixture('pi4-usb', '/mnt/data');
    expect(planChecking({ ...pi4, cores: 1 })).toBe(1);
    expect(planChecking({ ...pi4, cores: 3 })).toBe(3);
    expect(planChecking({ ...pi4, cores: 64 })).toBe(8);
  });
});

describe('planHashing on any profile', () => {
  const classes: StorageClass[] = ['sd', 'emmc', 'usb', 'nvme', 'other'];
  const profiles = fc.record({
    arch: fc.constantFrom('arm64', 'arm', 'x64', 'ia32', 'unknown'),
    cores: fc.integer({ min: 1, max: 256 }),
    memAvailable: fc.integer({ min: 0, max: 2 ** 40 }),
    sha2: fc.boolean(),
    storage: fc.array(
      fc.record({
        path: fc.constant('/x'),
        mount: fc.constant('/'),
        device: fc.constant(null),
        class: fc.constantFrom(...classes),
      }),
      { maxLength: 3 },
    ),
    temperature: fc.option(fc.double({ min: -40, max: 120, noNaN: true })),
  });

  it('keeps workers within the cores and in-flight bytes within 1/64 of free memory', () => {
    fc.assert(
      fc.property(profiles, (partial) => {
        const profile: HardwareProfile = {
          board: null,
          compatible: [],
          raspberryPi: null,
          cpu: null,
          memTotal: partial.memAvailable,
          throttling: null,
          ...partial,
        };
        const plan = planHashing(profile);
        expect(plan.workers).toBeGreaterThanOrEqual(1);
        expect(plan.workers).toBeLessThanOrEqual(profile.cores);
        expect(plan.inFlightBytes % plan.chunkSize).toBe(0);
        // Two chunks (one hashed, one read) is the floor, even on a starved machine.
        expect(plan.inFlightBytes).toBeLessThanOrEqual(
          Math.max(2 * plan.chunkSize, profile.memAvailable / 64),
        );
        expect(plan.inFlightBytes).toBeGreaterThanOrEqual(2 * plan.chunkSize);
      }),
    );
  });
});

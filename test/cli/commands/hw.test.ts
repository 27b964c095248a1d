import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli';

const sysroot = (board: string) => join(import.meta.dirname, '../../fixtures/sysroot', board);
const dir = mkdtempSync(join(tmpdir(), 'vouch-hw-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('vouch hw', () => {
  it('prints the profile and the plan as JSON, with the interface field names', async () => {
    const { exitCode, stdout } = await runCli([
      'hw',
      '--sysroot',
      sysroot('pi4-usb'),
      '/mnt/data/docker',
      '-o',
      'json',
    ]);
    expect(exitCode).toBe(0);
    const data = JSON.parse(stdout);
    expect(data).toMatchObject({
      board: 'Raspberry Pi 4 Model B Rev 1.4',
      arch: 'arm64',
      cores: 4,
      memTotal: 3884512 * 1024,
      sha2: false,
      storage: [{ path: '/mnt/data/docker', class: 'usb' }],
      plan: { workers: 3, chunkSize: 2 ** 20, inFlightBytes: 12 * 2 ** 20 },
    });
    expect(data.plan.reasons).toHaveLength(4);
    expect(data).not.toHaveProperty('measured');
  });

  it('prints readable text, reasons included', async () => {
    const { exitCode, stdout } = await runCli(['hw', '--sysroot', sysroot('pi3b-sd'), '/mnt/data']);
    expect(exitCode).toBe(0);
    expect(stdout).toContain('board       Raspberry Pi 3 Model B Rev 1.2\n');
    expect(stdout).toContain('Raspberry Pi 3B rev 1.2, BCM2837, 1 GiB, made by Sony UK');
    expect(stdout).toContain('cpu         4× Cortex-A53, arm64, 4 cores, no SHA-2 instructions\n');
    expect(stdout).toContain('storage     /mnt/data: sd (mmcblk0p8, mounted on /mnt/data)\n');
    expect(stdout).toContain('throttling  now: under-voltage, throttled;');
    expect(stdout).toContain('plan        1 worker, 1 MiB chunks, 4 MiB in flight\n');
    expect(stdout).toContain('- SD card (/mnt/data on mmcblk0p8): reads ~90 MB/s\n');
  });

  it('classifies / when no path is given', async () => {
    const { stdout } = await runCli(['hw', '--sysroot', sysroot('pi5-nvme'), '-o', 'json']);
    expect(JSON.parse(stdout).storage).toEqual([
      { path: '/', mount: '/', device: 'nvme0n1p3', class: 'nvme' },
    ]);
  });

  it('reads this machine without --sysroot', async () => {
    const { exitCode, stdout } = await runCli(['hw', '-o', 'json']);
    expect(exitCode).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      arch: process.arch,
      plan: { workers: expect.any(Number) },
    });
  });

  it('--measure hashes files with the planned pool (workers from the TypeScript sources here)', async () => {
    const files = [0, 1].map((i) => {
      const path = join(dir, `f${i}`);
      const data = randomBytes(2 ** 20 + i);
      writeFileSync(path, data);
      return { path, size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
    });
    const { exitCode, stdout } = await runCli([
      'hw',
      '--measure',
      ...files.map((f) => f.path),
      '-o',
      'json',
    ]);
    expect(exitCode).toBe(0);
    expect(JSON.parse(stdout).measured).toEqual(
      files.map((f) => ({ ...f, seconds: expect.any(Number) })),
    );
  });

  it('refuses --measure without files or with --sysroot (64), and a missing sysroot is IO (74)', async () => {
    const bare = await runCli(['hw', '--measure', '-o', 'json']);
    expect(bare.exitCode).toBe(64);
    expect(JSON.parse(bare.stdout).error.code).toBe('USAGE');
    expect(
      (await runCli(['hw', '--measure', '--sysroot', sysroot('pi4-usb'), '/x'])).exitCode,
    ).toBe(64);
    const missing = await runCli(['hw', '--sysroot', join(dir, 'none')]);
    expect(missing.exitCode).toBe(74);
    expect(missing.stderr).toMatch(/^vouch: cannot read .*none\/proc\/cpuinfo/);
  });

  it('fails a missing file under --measure with IO (74)', async () => {
    const { exitCode, stderr } = await runCli(['hw', '--measure', join(dir, 'absent')]);
    expect(exitCode).toBe(74);
    expect(stderr).toMatch(/^vouch: file .*absent does not exist\n$/);
  });
});
